"""The kernels driven by the real Jupyter clients users run, with no mocks in between.

* ``jupyter_kernel_test``: the community conformance suite, on the built-in Echo kernel
  and on the classic ipykernel Echo kernel text run unchanged but for its import;
* ``nbclient``: executing notebooks, as ``jupyter nbconvert --execute`` and papermill do;
* ``jupyter console``: a terminal session through a pseudo-terminal (pexpect);
* ``jupyter_client.KernelManager``: a restart, as a notebook server's "Restart kernel".
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jupyter_kernel_test as jkt  # not `from ... import KernelTests`: pytest would collect it
import nbclient
import nbformat
import pexpect
import psutil
import pytest
from jupyter_client.manager import KernelManager
from jupyter_client.provisioning import LocalProvisioner
from nbformat import NotebookNode

ECHO = "kernelkit-echo"
BANNER = "Echo kernel - as useful as a parrot"
JUPYTER = os.path.join(os.path.dirname(sys.executable), "jupyter")
TIMEOUT = 30


# -- jupyter_kernel_test ---------------------------------------------------------------------
#
# What Echo can show is run; what it cannot (stderr, errors, execute_result, display_data,
# pager, history, inspect, is_complete verdicts) stays unset and is skipped by the suite.


class EchoKernelTests(jkt.KernelTests):
    kernel_name = ECHO
    language_name = "Any text"
    file_extension = ".txt"
    # Echo publishes the code itself on stdout.
    code_hello_world = "hello, world"
    # Echo has no completions: the default hook answers a well-formed, empty match list.
    completion_samples = [{"text": "hel", "matches": []}]


class ClassicEchoKernelTests(EchoKernelTests):
    """The ipykernel documentation's Echo kernel, only its import line changed."""

    kernel_name = "kk-classic-echo"


class CommandKernelTests(jkt.KernelTests):
    """The parts of the suite Echo cannot show: stderr, errors, display_data, completions."""

    kernel_name = "kk-commands"
    language_name = "commands"
    file_extension = ".txt"
    code_hello_world = "print hello, world"
    code_stderr = "print anything"  # also writes "to stderr" on sys.stderr
    code_generate_error = "raise"
    code_display_data = [{"code": "display shown", "mime": "text/plain"}]
    completion_samples = [
        {"text": "sl", "matches": ["sleep"]},
        {"text": "print x", "matches": []},
        {"text": "", "matches": ["loop", "sleep", "raise", "input", "print", "modules"]},
    ]


class EchoIopubWelcomeTests(jkt.IopubWelcomeTests):
    kernel_name = ECHO
    support_iopub_welcome = True


class ClassicEchoIopubWelcomeTests(EchoIopubWelcomeTests):
    kernel_name = "kk-classic-echo"


# -- nbclient ---------------------------------------------------------------------------------


def notebook(kernel_name: str, sources: list[str]) -> NotebookNode:
    nb: NotebookNode = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": kernel_name,
        "display_name": kernel_name,
        "language": "text",
    }
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    return nb


def test_nbclient_executes_an_echo_notebook() -> None:
    sources = ["first cell", "second cell\nwith two lines", "third: ünïcödé ✓"]
    nb = notebook(ECHO, sources)
    nbclient.NotebookClient(nb, kernel_name=ECHO, timeout=TIMEOUT).execute()
    for n, (cell, src) in enumerate(zip(nb.cells, sources, strict=True), start=1):
        assert cell.execution_count == n
        assert cell.outputs == [{"output_type": "stream", "name": "stdout", "text": src}]
    nbformat.validate(nb)


def test_nbclient_uses_the_kernelspec_in_the_notebook() -> None:
    nb = notebook(ECHO, ["from metadata"])
    nbclient.NotebookClient(nb, timeout=TIMEOUT).execute()
    assert nb.cells[0].outputs[0]["text"] == "from metadata"


def test_nbclient_stops_at_a_failing_cell() -> None:
    nb = notebook("kk-commands", ["before", "raise", "after"])
    client = nbclient.NotebookClient(nb, kernel_name="kk-commands", timeout=TIMEOUT)
    with pytest.raises(nbclient.exceptions.CellExecutionError) as info:
        client.execute()
    assert info.value.ename == "ValueError"
    assert info.value.evalue == "boom"
    assert "ValueError" in str(info.value)
    first, failed, after = nb.cells
    assert first.outputs[0]["text"] == "before"
    assert [o["output_type"] for o in failed.outputs] == ["error"]
    assert failed.outputs[0]["ename"] == "ValueError"
    # The run stopped: the last cell was never sent.
    assert after.execution_count is None
    assert after.outputs == []


def test_nbclient_allow_errors_runs_every_cell() -> None:
    # nbclient waits for each reply and sends stop_on_error=False when errors are allowed:
    # the cell after the failure runs, and the error is recorded in the notebook.
    nb = notebook("kk-commands", ["before", "raise", "after"])
    nbclient.NotebookClient(
        nb, kernel_name="kk-commands", timeout=TIMEOUT, allow_errors=True
    ).execute()
    first, failed, after = nb.cells
    assert [c.execution_count for c in nb.cells] == [1, 2, 3]
    assert first.outputs == [{"output_type": "stream", "name": "stdout", "text": "before"}]
    (error,) = failed.outputs
    assert error["output_type"] == "error"
    assert (error["ename"], error["evalue"]) == ("ValueError", "boom")
    assert any("ValueError: boom" in line for line in error["traceback"])
    assert after.outputs == [{"output_type": "stream", "name": "stdout", "text": "after"}]
    nbformat.validate(nb)


# -- jupyter console ------------------------------------------------------------------------


def _kernel_children(pid: int) -> list[psutil.Process]:
    return [
        p
        for p in psutil.Process(pid).children(recursive=True)
        if "kernelkit" in " ".join(p.cmdline())
    ]


def _wait_iopub_connected(console: psutil.Process, kernel: psutil.Process) -> None:
    """Wait until the kernel has accepted the console's IOPub connection.

    jupyter_console, unlike jupyter_client's wait_for_ready, shows its first prompt as soon
    as kernel_info is answered, without checking IOPub. A kernel that answers within ~0.2 s
    of its launch can reply before the console's SUB socket has (re)connected: output of a
    line typed at once is then published to nobody, and the console waits forever for the
    ``idle`` status. No human types that fast; this test does, so it waits like one.
    """
    info = json.loads(Path(kernel.cmdline()[-1]).read_text())
    iopub = info["iopub_port"]
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        ours = {
            c.laddr.port
            for c in console.net_connections("tcp")
            if c.raddr and c.raddr.port == iopub and c.status == psutil.CONN_ESTABLISHED
        }
        accepted = {
            c.raddr.port
            for c in kernel.net_connections("tcp")
            if c.raddr and c.laddr.port == iopub and c.status == psutil.CONN_ESTABLISHED
        }
        if ours & accepted:
            return
        time.sleep(0.01)
    raise AssertionError("the console never connected to the kernel's IOPub port")


def _wait_gone(proc: psutil.Process, timeout: float) -> bool:
    """True once proc has exited (a zombie awaiting an absent reaper counts as exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def console() -> Iterator[pexpect.spawn]:
    child = pexpect.spawn(
        JUPYTER,
        ["console", "--simple-prompt", "--kernel", ECHO],
        env=dict(os.environ),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(24, 200),
    )
    yield child
    if child.isalive():
        child.terminate(force=True)
    child.close()


def test_jupyter_console_session(console: pexpect.spawn) -> None:
    console.expect_exact(BANNER)
    console.expect_exact("In [1]: ")
    kernels = _kernel_children(console.pid)
    assert len(kernels) == 1, kernels
    kernel = kernels[0]
    _wait_iopub_connected(psutil.Process(console.pid), kernel)

    console.sendline("polly wants a cracker")
    console.expect_exact("polly wants a cracker")  # the terminal echoes what was typed
    console.expect_exact("polly wants a cracker")  # the kernel echoes it back
    console.expect_exact("In [2]: ")
    console.sendline("again")
    console.expect_exact("again")
    console.expect_exact("again")
    console.expect_exact("In [3]: ")

    console.sendeof()
    # Ctrl-D asks for confirmation first, as in IPython.
    console.expect_exact("Do you really want to exit ([y]/n)?")
    console.sendline("y")
    console.expect_exact("Shutting down kernel")
    console.expect(pexpect.EOF)
    console.close()
    assert console.exitstatus == 0, console.before
    assert _wait_gone(kernel, TIMEOUT), f"kernel {kernel.pid} still running after the console"


# -- KernelManager restart ------------------------------------------------------------------


def _execute(km: KernelManager, code: str) -> tuple[dict[str, Any], str]:
    """Run code with a new client, as a notebook server does after a restart: reply, stdout."""
    out: list[str] = []

    def collect(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            out.append(msg["content"]["text"])

    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=TIMEOUT)
        reply: dict[str, Any] = kc.execute_interactive(code, timeout=TIMEOUT, output_hook=collect)
        return reply["content"], "".join(out)
    finally:
        kc.stop_channels()


def test_kernel_manager_restart() -> None:
    km = KernelManager(kernel_name=ECHO)
    km.start_kernel()
    try:
        assert _execute(km, "one")[0]["execution_count"] == 1
        assert _execute(km, "two")[0]["execution_count"] == 2
        assert isinstance(km.provisioner, LocalProvisioner)
        old = km.provisioner.process
        assert old is not None

        km.restart_kernel(now=False)

        # The old kernel honoured the shutdown request: it exited on its own, not killed.
        assert old.poll() == 0
        assert isinstance(km.provisioner, LocalProvisioner)
        assert km.provisioner.process is not None
        assert km.provisioner.process.pid != old.pid
        assert km.is_alive()
        reply, stdout = _execute(km, "three")
        assert reply["status"] == "ok"
        assert reply["execution_count"] == 1
        assert stdout == "three"
    finally:
        km.shutdown_kernel(now=False)
    assert not km.is_alive()
