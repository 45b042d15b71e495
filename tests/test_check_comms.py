"""``kernelkit check``'s comms group: kernelkit kernels with an echoing target pass it, each
defect of tests/support/kk_comm_kernels.py fails its check, kernels that ignore comms fail
without hanging, and ipykernel passes with the built-in Python samples.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kk_comm_kernels import DEFECTS

from conftest import SUPPORT, kernelkit
from kernelkit.check import registry, runner, samples
from kernelkit.check.groups.comms import _holds
from kernelkit.check.report import PlainProgress, as_json, plain_table

COMMANDS = SUPPORT / "commands_samples.toml"
COMM = SUPPORT / "comm_samples.toml"
ECHO = SUPPORT / "echo_samples.toml"
COMM_CHECKS = ("comms.unknown_target", "comms.info", "comms.round_trip", "comms.info_open",
               "comms.buffers")
# Checks that need the [comm] sample.
WITH_SAMPLE = ("comms.round_trip", "comms.info_open", "comms.buffers")


def spec_name(cls: str) -> str:
    return "kk-comm-" + cls.removesuffix("Kernel").lower()


@pytest.fixture(scope="module", autouse=True)
def comm_kernelspecs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Kernelspecs for the comm kernels, and the raw kernel that knows nothing of comms."""
    root = tmp_path_factory.mktemp("comm-kernelspecs")
    specs: dict[str, list[str]] = {
        spec_name(cls): [sys.executable, "-m", "kernelkit", "run", f"kk_comm_kernels:{cls}",
                         "-f", "{connection_file}"]
        for cls in ["EchoCommKernel", *DEFECTS]
    }
    raw = [sys.executable, str(SUPPORT / "kk_raw_kernel.py"), "-f", "{connection_file}"]
    specs["kk-comm-raw"] = raw
    specs["kk-comm-raw-no-idle"] = [*raw, "--no-idle"]
    for name, argv in specs.items():
        folder = root / "kernels" / name
        folder.mkdir(parents=True)
        spec = {"argv": argv, "display_name": name, "language": "commands",
                "interrupt_mode": "signal"}
        (folder / "kernel.json").write_text(json.dumps(spec))
    # The Python SDK's comms test backend, behind the bridge host.
    prefix = root / "prefix"
    done = kernelkit("install", "--name", "kk-comm-py-sdk", "--prefix", str(prefix), "--",
                     sys.executable, str(SUPPORT / "comms_backend.py"))
    assert done.returncode == 0, done.stderr
    saved = os.environ["JUPYTER_PATH"]
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        (str(root), str(prefix / "share" / "jupyter"), saved))
    yield
    os.environ["JUPYTER_PATH"] = saved


def run_comms(kernel: str, *sample_files: Path, timeout: float = 10.0, language: str = "",
              only: tuple[str, ...] = ("comms",)) -> dict[str, registry.Result]:
    """The comms group (or ``only``) against ``kernel``, in this process, by check name."""
    found = samples.builtin(kernel, language)
    for path in sample_files:
        found = found.merged(samples.load(path))
    report = runner.run(kernel, found, runner.select(only), PlainProgress(io.StringIO()),
                        timeout=timeout, startup_timeout=60)
    assert report.kernel in plain_table(report)
    json.dumps(as_json(report))
    return {r.name: r for r in report.results}


def outcome(results: dict[str, registry.Result]) -> dict[str, tuple[str, str]]:
    return {name: (r.result, r.reason) for name, r in results.items()}


# -- kernels that do it right ----------------------------------------------------------


def test_a_kernelkit_kernel_with_an_echo_target_passes_the_comms_group() -> None:
    results = run_comms(spec_name("EchoCommKernel"), COMMANDS, COMM)
    assert {results[n].result for n in COMM_CHECKS} == {"pass"}, outcome(results)
    # The target answers the open with a comm_msg of its own: allowed, and said.
    assert "answered with 1 comm_msg" in results["comms.round_trip"].reason
    assert "2 buffers" in results["comms.buffers"].reason


def test_without_a_comm_sample_the_echo_checks_are_skipped() -> None:
    results = run_comms(spec_name("EchoCommKernel"), COMMANDS)
    assert results["comms.unknown_target"].result == "pass", outcome(results)
    assert results["comms.info"].result == "pass", outcome(results)
    for name in WITH_SAMPLE:
        assert (results[name].result, results[name].reason) == ("skip", "no sample: comm")


def test_a_target_that_does_not_echo_buffers_skips_the_buffers_check(tmp_path: Path) -> None:
    no_buffers = tmp_path / "comm_samples.toml"
    no_buffers.write_text('[comm]\ntarget = "echo"\nbuffers = false\n')
    results = run_comms(spec_name("EchoCommKernel"), COMMANDS, no_buffers,
                        only=("comms.buffers", "comms.round_trip"))
    assert results["comms.round_trip"].result == "pass", outcome(results)
    assert results["comms.buffers"].result == "skip"
    assert "buffers = true" in results["comms.buffers"].reason


def test_ipykernel_passes_the_comms_group_with_the_built_in_samples() -> None:
    """The built-in Python [comm] sample registers its target through the comm package."""
    results = run_comms("python3")
    assert {results[n].result for n in COMM_CHECKS} == {"pass"}, outcome(results)


def test_a_kernelkit_python_kernel_passes_with_the_built_in_samples() -> None:
    """kk-python's language is Python: the same setup code, through kernelkit's comm hook."""
    results = run_comms("kk-python", language="python")
    assert {results[n].result for n in COMM_CHECKS} == {"pass"}, outcome(results)


@pytest.mark.parametrize("kernel", ["kk-raw-comms", "kk-js-comms", "kk-node-comms",
                                    "kk-comm-py-sdk"])
def test_bridge_backends_with_an_echo_target_pass_the_comms_group(kernel: str) -> None:
    """The host alone (protocol lines by hand), the JS SDK in Deno and Node, the Python SDK:
    each test backend's target "echo" answers {"echo": data} with the same buffers."""
    results = run_comms(kernel, COMM)
    assert {results[n].result for n in COMM_CHECKS} == {"pass"}, outcome(results)


def test_a_target_the_setup_does_not_register_fails_clearly(tmp_path: Path) -> None:
    elsewhere = tmp_path / "comm_samples.toml"
    elsewhere.write_text('[comm]\ntarget = "not-echo"\n')
    results = run_comms(spec_name("EchoCommKernel"), COMMANDS, elsewhere,
                        only=("comms.round_trip",))
    assert results["comms.round_trip"].result == "fail"
    assert "closed the comm to 'not-echo' at once" in results["comms.round_trip"].reason


def test_setup_code_that_fails_says_so(tmp_path: Path) -> None:
    failing = tmp_path / "comm_samples.toml"
    failing.write_text('[comm]\ntarget = "echo"\nsetup = "raise nope"\n')
    results = run_comms(spec_name("EchoCommKernel"), COMMANDS, failing,
                        only=("comms.round_trip",))
    assert results["comms.round_trip"].result == "fail"
    assert "setup code failed" in results["comms.round_trip"].reason
    assert "ValueError" in results["comms.round_trip"].reason


# -- each defect is caught -------------------------------------------------------------


@pytest.mark.parametrize("cls", sorted(DEFECTS))
def test_comm_defect_is_caught(cls: str) -> None:
    expected, why = DEFECTS[cls]
    results = run_comms(spec_name(cls), COMMANDS, COMM, only=(expected,), timeout=5)
    assert results[expected].result == "fail", results[expected].reason
    assert why in results[expected].reason


def test_kernels_that_ignore_comms_fail_without_hanging() -> None:
    """The raw kernel answers comm messages with busy/idle and nothing else."""
    results = run_comms("kk-comm-raw", COMMANDS, COMM, timeout=3)
    assert results["comms.unknown_target"].result == "fail"
    assert "without closing the comm" in results["comms.unknown_target"].reason
    assert results["comms.round_trip"].result == "fail"
    assert "no echo" in results["comms.round_trip"].reason
    # No comm_info_reply at all: not implemented.
    assert results["comms.info"].result == "skip"
    assert "not implemented" in results["comms.info"].reason
    # Generous: each waits a few timeouts at most, never forever.
    assert all(r.seconds < 30 for r in results.values()), outcome(results)


def test_a_kernel_that_never_goes_idle_fails_on_the_timeout() -> None:
    results = run_comms("kk-comm-raw-no-idle", COMMANDS, COMM, timeout=3,
                        only=("comms.unknown_target", "comms.round_trip"))
    reason = results["comms.unknown_target"].reason
    assert results["comms.unknown_target"].result == "fail"
    assert "no status idle within 3s for comm_open" in reason
    assert results["comms.round_trip"].result == "fail"
    assert "no status idle within 3s" in results["comms.round_trip"].reason
    assert all(r.seconds < 30 for r in results.values()), outcome(results)


# -- samples and the echo rule, without a kernel ------------------------------------------


def test_comm_samples_are_checked(tmp_path: Path) -> None:
    assert samples.load(COMM).get("comm") == {"target": "echo", "buffers": "true"}
    assert samples.builtin("python3").get("comm") is not None
    assert samples.builtin("deno").get("comm") is None  # Deno's kernel has no comm targets
    bad = {
        "[comm]\nbuffers = true\n": "needs 'target'",
        "[comm]\ntarget = 'echo'\nbuffers = 'yes'\n": "buffers must be true or false",
        "[comm]\ntarget = 'echo'\necho = true\n": "unknown key 'echo'",
    }
    for text, message_part in bad.items():
        path = tmp_path / "bad.toml"
        path.write_text(text)
        with pytest.raises(samples.SamplesError, match=message_part):
            samples.load(path)


@pytest.mark.parametrize(
    ("value", "sent", "holds"),
    [
        ({"a": 1}, {"a": 1}, True),
        ({"echo": {"a": 1}}, {"a": 1}, True),
        ({"x": [{"deep": {"a": 1}}]}, {"a": 1}, True),
        ({"a": 1, "b": 2}, {"a": 1}, False),  # more than was sent is not the data sent
        ({"echo": {"a": 2}}, {"a": 1}, False),
        ({}, {"a": 1}, False),
    ],
)
def test_what_counts_as_an_echo(value: object, sent: object, holds: bool) -> None:
    assert _holds(value, sent) is holds
