"""``kernelkit check``: the conformance suite, against good kernels and deliberately broken ones.

kernelkit's own kernels (the Echo kernel, the command test kernel in both interrupt
modes, the Deno Echo bridge) must pass everything they have samples for; each
kernel of tests/support/kk_broken_kernels.py and each defect flag of
tests/support/kk_raw_kernel.py must make its specific check fail.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kk_broken_kernels import DEFECTS

from conftest import ROOT, SUPPORT
from kernelkit.check import registry, runner, samples, schema
from kernelkit.check.command import add_parser
from kernelkit.check.command import run as run_command
from kernelkit.check.report import PlainProgress, as_json, plain_table

COMMANDS = SUPPORT / "commands_samples.toml"
ECHO = SUPPORT / "echo_samples.toml"
# Raw kernel kernelspec name -> its flags.
RAW = {
    "kk-raw": [],
    "kk-raw-no-verify": ["--no-verify"],
    "kk-raw-no-replay-guard": ["--no-replay-guard"],
    "kk-raw-no-idle": ["--no-idle"],
    "kk-raw-no-heartbeat": ["--no-heartbeat"],
    "kk-raw-ignore-shutdown": ["--ignore-shutdown"],
    "kk-raw-claims-5-5": ["--claim", "5.5"],
    # kernelkit itself now fills language_info.name, so only a raw kernel can omit it.
    "kk-raw-nameless": ["--nameless"],
}


def broken_name(cls: str) -> str:
    return "kk-broken-" + cls.removesuffix("Kernel").lower()


@pytest.fixture(scope="module", autouse=True)
def broken_kernelspecs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Kernelspecs for the broken kernels, in a folder put first on JUPYTER_PATH."""
    root = tmp_path_factory.mktemp("broken-kernelspecs")
    specs: dict[str, list[str]] = {
        broken_name(cls): [sys.executable, "-m", "kernelkit", "run",
                           f"kk_broken_kernels:{cls}", "-f", "{connection_file}"]
        for cls in DEFECTS
    }
    for name, flags in RAW.items():
        specs[name] = [sys.executable, str(SUPPORT / "kk_raw_kernel.py"),
                       "-f", "{connection_file}", *flags]
    for name, argv in specs.items():
        folder = root / "kernels" / name
        folder.mkdir(parents=True)
        spec = {"argv": argv, "display_name": name, "language": "commands",
                "interrupt_mode": "signal"}
        (folder / "kernel.json").write_text(json.dumps(spec))
    saved = os.environ["JUPYTER_PATH"]
    os.environ["JUPYTER_PATH"] = os.pathsep.join((str(root), saved))
    yield
    os.environ["JUPYTER_PATH"] = saved


def run_check(kernel: str, sample_file: Path | None = None, only: tuple[str, ...] = (),
              timeout: float = 10.0) -> dict[str, registry.Result]:
    """Run the checks in this process and return the results by check name."""
    found = samples.builtin(kernel)
    if sample_file is not None:
        found = found.merged(samples.load(sample_file))
    progress = PlainProgress(io.StringIO())
    report = runner.run(kernel, found, runner.select(only), progress, timeout=timeout,
                        startup_timeout=60)
    # The report renders in every format.
    assert report.kernel in plain_table(report)
    json.dumps(as_json(report))
    return {r.name: r for r in report.results}


def failures(results: dict[str, registry.Result]) -> dict[str, str]:
    return {name: r.reason for name, r in results.items() if r.result == "fail"}


def assert_passed(results: dict[str, registry.Result], *names: str) -> None:
    for name in names:
        assert results[name].result == "pass", (name, results[name].reason)


# -- kernelkit's own kernels: everything passes ------------------------------------------


def test_kernelkit_echo_passes_every_check_it_has_samples_for() -> None:
    results = run_check("kernelkit-echo")
    assert not failures(results)
    assert len(results) == len(runner.all_checks()) + 1
    assert_passed(results, "lifecycle.start", "kernel_info.shell", "kernel_info.control",
                  "lifecycle.iopub_welcome", "execute.ok", "execute.silent",
                  "heartbeat.idle", "security.bad_signature", "security.unsigned",
                  "security.replay", "lifecycle.restart", "lifecycle.shutdown")
    # Echo cannot fail, loop or ask for input: those checks say why they skip.
    assert results["execute.error"].reason == "no sample: error"
    assert results["interrupt.running"].reason == "no sample: long_running"
    assert results["stdin.input"].reason == "no sample: input"


def test_command_kernel_passes_every_check_it_has_samples_for() -> None:
    results = run_check("kk-commands", COMMANDS)
    assert failures(results) == {}
    assert_passed(results, "execute.error", "execute.no_stop_on_error",
                  "introspection.complete", "stdin.input", "stdin.not_allowed",
                  "interrupt.running", "interrupt.idle", "control.while_busy",
                  "heartbeat.while_busy", "security.replay", "lifecycle.restart")
    assert "signal interrupt" in results["interrupt.running"].reason


def test_message_mode_interrupts_pass() -> None:
    results = run_check("kk-commands-message", COMMANDS, only=("interrupt", "control"))
    assert not failures(results)
    assert "message interrupt" in results["interrupt.running"].reason


def test_deno_echo_bridge_passes_every_check_it_has_samples_for() -> None:
    results = run_check("kk-deno-echo", ECHO)
    assert not failures(results)
    assert_passed(results, "execute.ok", "execute.silent", "security.replay",
                  "lifecycle.restart", "lifecycle.shutdown")


@pytest.mark.parametrize(("kernel", "sample_file"), [("kk-commands", COMMANDS),
                                                    ("kk-concurrent", COMMANDS),
                                                    ("kernelkit-echo", ECHO)])
def test_subshell_group_passes_on_kernelkit_kernels(kernel: str, sample_file: Path) -> None:
    results = run_check(kernel, sample_file, only=("subshells",))
    assert not failures(results)
    assert_passed(results, "subshells.lifecycle", "subshells.execute", "subshells.unknown")
    if kernel != "kernelkit-echo":  # Echo has no long-running sample
        assert_passed(results, "subshells.while_busy")


def test_subshell_group_on_a_bridge_backend_with_subshells() -> None:
    results = run_check("kk-js-subshells", COMMANDS, only=("subshells",))
    assert_passed(results, "subshells.lifecycle", "subshells.execute", "subshells.unknown")


def test_subshell_group_skips_kernels_without_subshells() -> None:
    results = run_check("kk-deno-echo", ECHO, only=("subshells",))
    assert {r.result for n, r in results.items() if n.startswith("subshells.")} == {"skip"}


# -- each defect is caught -----------------------------------------------------------------


@pytest.mark.parametrize("cls", sorted(DEFECTS))
def test_kernel_api_defect_is_caught(cls: str) -> None:
    expected, why = DEFECTS[cls]
    results = run_check(broken_name(cls), COMMANDS, only=(expected,), timeout=5)
    assert results[expected].result == "fail", results[expected].reason
    assert why in results[expected].reason


def test_raw_kernel_without_defects_passes_security() -> None:
    results = run_check("kk-raw", COMMANDS, timeout=10,
                        only=("security", "kernel_info", "execute.ok", "heartbeat.idle",
                              "interrupt.running", "lifecycle.shutdown"))
    assert not failures(results)


@pytest.mark.parametrize(
    ("kernel", "expected", "why"),
    [
        ("kk-raw-no-verify", ("security.bad_signature", "security.unsigned"), "was executed"),
        ("kk-raw-no-replay-guard", ("security.replay",), "executed again"),
        ("kk-raw-no-idle", ("kernel_info.shell",), "no status idle"),
        ("kk-raw-no-heartbeat", ("heartbeat.idle",), "no heartbeat echo"),
        ("kk-raw-ignore-shutdown", ("lifecycle.shutdown",), "still runs"),
        ("kk-raw-claims-5-5", ("lifecycle.iopub_welcome",), "no iopub_welcome"),
        ("kk-raw-nameless", ("kernel_info.shell",), "'language_info' 'name' is missing"),
        # Single-threaded: nothing answers while an execution runs.
        ("kk-raw", ("control.while_busy", "heartbeat.while_busy"), "within"),
    ],
)
def test_raw_kernel_defect_is_caught(kernel: str, expected: tuple[str, ...], why: str) -> None:
    results = run_check(kernel, COMMANDS, only=expected, timeout=5)
    for name in expected:
        assert results[name].result == "fail", (name, results[name].reason)
        assert why in results[name].reason


# -- the command line ----------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kernelkit.check", *args], capture_output=True,
                          text=True, timeout=100)


def test_cli_json_and_exit_codes() -> None:
    done = cli("kernelkit-echo", "--json", "--only", "kernel_info,heartbeat")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["summary"]["fail"] == 0
    assert data["implementation"] == "Echo"
    assert {r["check"] for r in data["results"]} >= {"kernel_info.shell", "heartbeat.idle"}
    assert "pass kernel_info.shell" in done.stderr  # progress while it runs
    broken = cli(broken_name("BadStatusKernel"), "--samples", str(COMMANDS),
                 "--only", "execute.ok")
    assert broken.returncode == 1
    assert "execute.ok" in broken.stdout and "fail" in broken.stdout
    assert "1 failed" in broken.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-kernel"], "no kernelspec named 'no-such-kernel'"),
        (["kernelkit-echo", "--only", "bogus"], "unknown check or group 'bogus'"),
        (["kernelkit-echo", "--samples", "/nonexistent.toml"], "cannot read samples file"),
        ([], "KERNEL_NAME is required"),
    ],
)
def test_cli_usage_errors(args: list[str], message: str) -> None:
    done = cli(*args)
    assert done.returncode == 2
    assert message in done.stderr


def test_cli_without_rich_prints_plain_text() -> None:
    code = ("import sys; sys.modules['rich'] = None; from kernelkit.check.command import main; "
            "sys.exit(main(['kernelkit-echo', '--only', 'heartbeat.idle']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=100)
    assert done.returncode == 0, done.stderr
    assert "heartbeat.idle" in done.stdout and "pass" in done.stdout
    assert "kernelkit-echo: 2 passed, 0 failed, 0 skipped" in done.stdout
    assert "[ 2/2] pass heartbeat.idle" in done.stderr


def test_cli_lists_checks() -> None:
    done = cli("--list")
    assert done.returncode == 0
    assert [line.split()[0] for line in done.stdout.splitlines()] == [
        c.name for c in runner.all_checks()]


def test_checks_run_in_the_registry_order_and_each_is_listed_once() -> None:
    assert len(set(registry.ORDER)) == len(registry.ORDER)
    assert [c.name for c in runner.all_checks()] == list(registry.ORDER)
    assert registry.ORDER[-2:] == ("lifecycle.restart", "lifecycle.shutdown")
    with pytest.raises(ValueError, match="ORDER"):
        registry.check("execute.not_in_order", "a check ORDER does not list")(lambda h: None)
    with pytest.raises(ValueError, match="ORDER"):
        registry.check("execute.ok", "a second definition of a check")(lambda h: None)


def test_add_parser_plugs_into_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="kernelkit")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["check", "kernelkit-echo", "--json", "--only", "heartbeat.idle"])
    assert run_command(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["check"] for r in data["results"]] == ["lifecycle.start", "heartbeat.idle"]


def test_the_checker_stays_out_of_the_kernel() -> None:
    """Only the command imports jupyter_client and rich, and nothing imports kernelkit's core."""
    code = ("import sys, kernelkit.check.command, kernelkit.check.runner; "
            "print(sorted(m for m in ('jupyter_client', 'rich') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "[]", done.stderr
    for path in (ROOT / "src" / "kernelkit" / "check").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level <= 1, (path.name, node.module)  # only kernelkit.check itself
                assert not (node.module or "").startswith("kernelkit"), (path.name, node.module)


# -- schema and samples, without a kernel --------------------------------------------------


def message(msg_type: str, content: dict[str, Any], **header: Any) -> dict[str, Any]:
    return {
        "header": {"msg_id": "1", "msg_type": msg_type, "username": "k", "session": "s",
                   "date": "2024-05-01T12:00:00.123456Z", "version": "5.3", **header},
        "parent_header": {}, "metadata": {}, "content": content,
    }


@pytest.mark.parametrize(
    ("channel", "msg", "problem"),
    [
        ("iopub", message("status", {"execution_state": "busy"}), None),
        ("iopub", message("status", {"execution_state": "thinking"}), "not one of"),
        ("iopub", message("stream", {"name": "stdout", "text": 3}), "'text' is an integer"),
        ("iopub", message("display_data", {"data": {"plain": "x"}, "metadata": {}}),
         "not a mimetype"),
        ("iopub", message("execute_result", {"data": {}, "metadata": {}}),
         "'execution_count' is missing"),
        ("shell", message("execute_reply", {"status": "ok", "execution_count": 1,
                                            "user_expressions": {}}), None),
        ("shell", message("execute_reply", {"status": "ok", "execution_count": True,
                                            "user_expressions": {}}), "is a boolean"),
        ("shell", message("execute_reply", {"status": "error", "execution_count": 1,
                                            "ename": "E", "evalue": "v"}),
         "'traceback' is missing"),
        ("shell", message("execute_reply", {"status": "aborted"}), None),
        ("shell", message("complete_reply", {"status": "ok", "matches": ["a", 1],
                                             "cursor_start": 0, "cursor_end": 1,
                                             "metadata": {}}), "item 1 is an integer"),
        ("shell", message("is_complete_reply", {"status": "incomplete"}), "'indent' is missing"),
        ("shell", message("kernel_info_reply", {"status": "ok", "protocol_version": "5",
                                                "implementation": "x",
                                                "implementation_version": "1",
                                                "language_info": {"name": "x"},
                                                "banner": ""}), "not a version"),
        ("shell", message("history_reply", {"status": "ok", "history": [[1, 2, ["a", "b"]]]}),
         None),
        ("stdin", message("input_request", {"prompt": "?"}), "'password' is missing"),
        ("iopub", message("status", {"execution_state": "idle"}, date="yesterday"),
         "not an ISO 8601 date"),
        ("iopub", {**message("iopub_welcome", {"subscription": ""}), "parent_header": None},
         "parent_header is null"),
        ("shell", message("some_new_reply", {"anything": 1}), "'status' is missing"),
        ("iopub", message("some_new_message", {"anything": 1}), None),
    ],
)
def test_schema(channel: str, msg: dict[str, Any], problem: str | None) -> None:
    problems = schema.validate(channel, msg)
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


def test_samples_files(tmp_path: Path) -> None:
    assert samples.load(COMMANDS).get("long_running") == {"code": "loop", "started": "started"}
    assert samples.builtin("python3").source == "built-in (python3)"
    assert samples.builtin("my-python", "Python").get("error") is not None
    assert samples.builtin("unknown-kernel").tables == {}
    merged = samples.builtin("python3").merged(samples.load(ECHO))
    assert merged.get("hello") == {"code": "hello, world", "output": "hello, world"}
    assert merged.get("error") == samples.PYTHON["error"]
    bad = {
        "[nope]\ncode = 'x'\n": "unknown sample [nope]",
        "[hello]\noutput = 'x'\n": "needs 'code'",
        "[hello]\ncode = 3\n": "must be a string",
        "[hello]\ncode = 'x'\ncolour = 'red'\n": "unknown key 'colour'",
        "[hello\n": "not valid TOML",
    }
    for text, message_part in bad.items():
        path = tmp_path / "bad.toml"
        path.write_text(text)
        with pytest.raises(samples.SamplesError, match=message_part.replace("[", r"\[")):
            samples.load(path)
