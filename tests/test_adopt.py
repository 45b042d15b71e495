"""Real ipykernel wrapper kernels from PyPI, adopted unchanged (``kernelkit adopt``).

Each kernel is installed with its own installer, as its README says, then adopted;
both kernelspecs are started through jupyter_client and must give the same output.
zsh and gnuplot come from Debian (.ci/install-system.sh). ``kernelkit check`` runs on
both, with the built-in samples for the kernel's language: every check a kernel passes
on ipykernel must pass adopted.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from wrapper_kernels import KERNELS, install

from conftest import kernelkit


@pytest.fixture(scope="module")
def prefix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The kernels installed by their own installers, then adopted, in one prefix."""
    root = tmp_path_factory.mktemp("adopt")
    share = root / "share" / "jupyter"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", os.pathsep.join([str(share), os.environ["JUPYTER_PATH"]]))
        # metakernel keeps each language's history in IPython's folder: not the user's.
        mp.setenv("IPYTHONDIR", str(root / "ipython"))
        for name in KERNELS:
            install(name, root, ["--prefix", str(root)])
            done = kernelkit("adopt", name, "--prefix", str(root), timeout=180)
            assert done.returncode == 0, (name, done.stderr)
        yield root


def test_adopt_list_says_what_can_be_adopted_and_why_not(prefix: Path) -> None:
    done = kernelkit("adopt", "--list", timeout=300)
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    for name, kernel in KERNELS.items():
        assert lines[name].endswith(f"can be adopted: {kernel.target}"), lines[name]
        assert "already" in lines[f"{name}-kernelkit"]
    assert "ipykernel's own IPython kernel" in lines["python3"]
    assert "kernelkit kernel already" in lines["kk-commands"]


def test_the_adopted_kernelspec_keeps_the_original_and_runs_it_under_kernelkit(
    prefix: Path,
) -> None:
    kernels = prefix / "share" / "jupyter" / "kernels"
    original = json.loads((kernels / "calysto_scheme" / "kernel.json").read_text())
    adopted = json.loads((kernels / "calysto_scheme-kernelkit" / "kernel.json").read_text())
    assert adopted["argv"] == [original["argv"][0], "-m", "kernelkit", "run", "--ipykernel-compat",
                               "-m", "calysto_scheme", "--", *original["argv"][3:]]
    assert adopted["display_name"] == f"{original['display_name']} (kernelkit)"
    assert adopted["language"] == original["language"]
    assert adopted["metadata"]["kernelkit"] == {"adopted": "calysto_scheme",
                                               "kernel": "calysto_scheme.kernel:CalystoScheme"}
    logos = sorted(p.name for p in (kernels / "calysto_scheme").iterdir())
    assert sorted(p.name for p in (kernels / "calysto_scheme-kernelkit").iterdir()) == logos


def _run(name: str, code: str) -> tuple[dict[str, Any], list[tuple[str, Any]], dict[str, Any]]:
    """(kernel_info, [(msg_type, content)] of the execute's output, its reply) from a new kernel."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name=name, startup_timeout=60)
    try:
        info = kc.kernel_info(reply=True, timeout=30)["content"]
        msg_id = kc.execute(code)
        reply = kc.get_shell_msg(timeout=60)["content"]
        out: list[tuple[str, Any]] = []
        deadline = time.monotonic() + 60
        while True:
            msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content["execution_state"] == "idle":
                break
            if kind not in ("status", "execute_input"):
                out.append((kind, content))
        return info, out, reply
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)


def _text(out: list[tuple[str, Any]]) -> str:
    return "".join(c.get("text", "") if kind == "stream" else
                   c.get("data", {}).get("text/plain", "") for kind, c in out)


@pytest.mark.parametrize("name", list(KERNELS))
def test_an_adopted_kernel_gives_the_same_output_as_on_ipykernel(prefix: Path, name: str) -> None:
    code, expected = KERNELS[name].code, KERNELS[name].output
    ours_info, ours, ours_reply = _run(f"{name}-kernelkit", code)
    theirs_info, theirs, theirs_reply = _run(name, code)
    assert expected in _text(theirs)  # the sample does what it says on ipykernel...
    assert _text(ours) == _text(theirs)  # ...and the same on kernelkit
    assert ours_reply["status"] == theirs_reply["status"] == "ok"
    assert ours_info["implementation"] == theirs_info["implementation"]
    assert ours_info["language_info"]["name"] == theirs_info["language_info"]["name"]
    assert "version" in ours_info["language_info"]  # which strict clients require
    assert "kernel subshells" in ours_info["supported_features"]


def test_a_widget_from_a_metakernel_cell_opens_its_comms_and_takes_frontend_changes(
    prefix: Path,
) -> None:
    """gnuplot_kernel (metakernel): ipywidgets from its %%python magic, as on ipykernel."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="gnuplot-kernelkit", startup_timeout=60)
    try:
        msg_id = kc.execute("%%python\nimport ipywidgets\nw = ipywidgets.IntSlider(value=3)\n"
                            "kernel.Display(w)")
        assert kc.get_shell_msg(timeout=60)["content"]["status"] == "ok"
        seen: list[dict[str, Any]] = []
        while True:
            msg = kc.get_iopub_msg(timeout=30)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            if msg["msg_type"] in ("comm_open", "display_data"):
                seen.append(msg)
        kinds = [m["msg_type"] for m in seen]
        assert kinds == ["comm_open", "comm_open", "comm_open", "display_data"], kinds
        models = [m["content"]["data"]["state"]["_model_name"] for m in seen[:3]]
        assert models == ["LayoutModel", "SliderStyleModel", "IntSliderModel"]
        slider = seen[2]["content"]["comm_id"]
        view = seen[3]["content"]["data"]["application/vnd.jupyter.widget-view+json"]
        assert view["model_id"] == slider
        # The frontend moves the slider: the kernel's widget follows.
        update = kc.session.msg("comm_msg", {"comm_id": slider, "data": {
            "method": "update", "state": {"value": 8}, "buffer_paths": []}})
        kc.shell_channel.send(update)
        reply = kc.execute("%%python\nretval = None\nprint('value', w.value)", reply=True,
                           timeout=60)
        assert reply["content"]["status"] == "ok"
        from conftest import stdout_until_idle

        assert "value 8" in stdout_until_idle(kc, reply["parent_header"]["msg_id"])
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)


def test_a_metakernel_kernel_installs_itself_under_kernelkit(tmp_path: Path) -> None:
    """MetaKernelApp's `install` subcommand works through kernelkit's IPKernelApp."""
    done = kernelkit("run", "--ipykernel-compat", "-m", "gnuplot_kernel", "--",
                     "install", "--prefix", str(tmp_path), timeout=120)
    assert done.returncode == 0, done.stderr
    spec = json.loads((tmp_path / "share/jupyter/kernels/gnuplot/kernel.json").read_text())
    assert spec["argv"][1:3] == ["-m", "gnuplot_kernel"]


def test_adopt_with_a_given_class_and_env(prefix: Path) -> None:
    done = kernelkit("adopt", "echo", "--kernel", "echo_kernel.kernel:EchoKernel", "--name",
                     "echo-given", "--display-name", "Echo given", "--env", "KK_MARK=1",
                     "--prefix", str(prefix))
    assert done.returncode == 0, done.stderr
    spec = json.loads((prefix / "share/jupyter/kernels/echo-given/kernel.json").read_text())
    assert spec["argv"][2:] == ["kernelkit", "run", "--ipykernel-compat",
                                "echo_kernel.kernel:EchoKernel", "-f", "{connection_file}"]
    assert spec["env"] == {"KK_MARK": "1"}
    assert spec["display_name"] == "Echo given"
    info, out, reply = _run("echo-given", "given")
    assert _text(out) == "given" and reply["status"] == "ok"
    assert info["implementation"] == "Echo"


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--ipykernel-compat"], "needs -m MODULE or module:Class"),
        (["--ipykernel-compat", "-m", "kk_no_such_module"], "no module named 'kk_no_such_module'"),
        (["--ipykernel-compat", "-m", "kk_launches_nothing", "--path", "{tmp}"],
         "ended without starting a kernel"),
        (["-m", "echo_kernel"], "are for --ipykernel-compat"),
    ],
)
def test_ipykernel_compat_mistakes_say_why(args: list[str], why: str, tmp_path: Path) -> None:
    (tmp_path / "kk_launches_nothing.py").write_text("VALUE = 1\n")
    done = kernelkit("run", *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert done.returncode in (1, 2), done.stderr
    assert why in done.stderr.splitlines()[-1]


def test_what_cannot_be_adopted_says_why(prefix: Path) -> None:
    for name, why in [("python3", "ipykernel's own IPython kernel"),
                      ("kk-commands", "kernelkit kernel already"),
                      ("nosuch", "no kernelspec named 'nosuch'")]:
        done = kernelkit("adopt", name, "--prefix", str(prefix))
        assert done.returncode == 2, done.stderr
        assert why in done.stderr


def _check(name: str, root: Path) -> dict[str, str]:
    # From the same state on both engines: metakernel reads its history back from
    # IPython's folder, written there by whichever kernel ended before.
    env = {**os.environ, "IPYTHONDIR": str(root / "ipython" / name)}
    done = kernelkit("check", name, "--json", timeout=600, env=env)
    assert done.returncode in (0, 1), done.stderr
    return {c["check"]: f"{c['result']}: {c['reason']}" for c in json.loads(done.stdout)["results"]}


@pytest.mark.parametrize("name", list(KERNELS))
def test_every_check_passed_on_ipykernel_passes_adopted(prefix: Path, name: str) -> None:
    theirs, ours = _check(name, prefix), _check(f"{name}-kernelkit", prefix)
    passed = [check for check, result in theirs.items() if result.startswith("pass")]
    assert passed, theirs  # the samples for its language did run
    lost = {check: (theirs[check], ours.get(check)) for check in passed
            if not ours.get(check, "").startswith("pass")}
    assert not lost, lost


def test_a_kernel_whose_python_lacks_kernelkit_is_not_adoptable(prefix: Path,
                                                                tmp_path: Path) -> None:
    import venv

    bare = tmp_path / "bare"
    venv.create(bare, with_pip=False)
    folder = prefix / "share" / "jupyter" / "kernels" / "kk-bare-echo"
    folder.mkdir()
    python = str(bare / "bin" / "python")
    (folder / "kernel.json").write_text(json.dumps({
        "argv": [python, "-m", "echo_kernel", "-f", "{connection_file}"],
        "display_name": "bare", "language": "text"}))
    try:
        done = kernelkit("adopt", "kk-bare-echo", "--prefix", str(tmp_path))
        assert done.returncode == 2
        assert f"kernelkit is not installed in {python}" in done.stderr
    finally:
        import shutil

        shutil.rmtree(folder)


def test_a_kernel_of_another_engine_is_not_run_to_find_its_class(prefix: Path) -> None:
    """A module that names nothing of ipykernel's launch (another engine's kernel would
    start serving) is refused from its source alone."""
    folder = prefix / "share" / "jupyter" / "kernels" / "kk-other-engine"
    folder.mkdir()
    (folder / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "http.server", "-f", "{connection_file}"],
        "display_name": "other", "language": "text"}))
    try:
        done = kernelkit("adopt", "kk-other-engine", "--prefix", str(prefix))
        assert done.returncode == 2
        assert "python -m http.server does not launch through ipykernel's IPKernelApp" in (
            done.stderr)
    finally:
        import shutil

        shutil.rmtree(folder)
