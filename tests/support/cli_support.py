"""What the CLI tests share: the kernel modules they install, a Jupyter data and runtime
dir of each test's own (the ``data_dir`` fixture, autouse in every module that imports it),
and the ways they start and reach kernels."""

from __future__ import annotations

import json
import os
import queue
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

import psutil
import pytest
import zmq
from jupyter_client import BlockingKernelClient, KernelManager
from jupyter_client.connect import write_connection_file

from conftest import kernelkit as cli
from conftest import stdout_of

BIN = Path(sys.executable).parent
JUPYTER = str(BIN / "jupyter")
KERNELKIT_SCRIPT = str(BIN / "kernelkit")
CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
KERNELKIT = [sys.executable, "-m", "kernelkit"]

# Kernel modules written into a temporary folder and reached with ``--path``.
RAISES_AT_IMPORT = """
raise RuntimeError("the settings file is missing")
"""
NEEDS_MISSING_DEPENDENCY = """
import kk_cli_no_such_dependency  # noqa: F401
"""
IPYKERNEL_DERIVED = """
from ipykernel.kernelbase import Kernel


class OldStyleKernel(Kernel):
    implementation = "old"
"""
MYMOD = """
import os

from kernelkit import Kernel


class MyKernel(Kernel):
    implementation = "MyImpl"
    language = "mylang"

    def do_execute(self, code, silent, store_history=True, user_expressions=None,
                   allow_stdin=False):
        if not silent:
            text = f"mymod:{code} cwd={os.getcwd()}"
            self.send_response(self.iopub_socket, "stream", {"name": "stdout", "text": text})
        return {"status": "ok", "execution_count": self.execution_count, "payload": [],
                "user_expressions": {}}
"""


# -- helpers -------------------------------------------------------------------


@pytest.fixture(name="data_dir", autouse=True)
def data_dir_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Jupyter data dir and runtime dir of this test's own (children inherit them)."""
    data = tmp_path / "jupyter-data"
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(data))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))
    return data


@pytest.fixture(name="conn_file")
def conn_file_fixture(tmp_path: Path) -> Path:
    fname, _ = write_connection_file(
        str(tmp_path / "connection.json"), ip="127.0.0.1", key=b"kernelkit-test-key"
    )
    return Path(fname)


def assert_usage_error(done: subprocess.CompletedProcess[str]) -> str:
    """Exit 2 with exactly one ``kernelkit: error:`` line on stderr; returns that line."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("kernelkit: error:"), done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    return lines[0]


def run_must_fail(
    *args: str, timeout: float = 30, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m kernelkit ARGS``, which must exit; a kernel that starts fails the test."""
    with subprocess.Popen(
        [*KERNELKIT, *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"kernelkit {' '.join(args)} started instead of failing: {out}\n{err}")
        finally:
            if proc.poll() is None:
                proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@contextmanager
def spawn(args: list[str], **kwargs: Any) -> Iterator[subprocess.Popen[str]]:
    """Start a process that is killed (and reaped) however the test ends."""
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    with subprocess.Popen(args, text=True, **kwargs) as proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()


class Lines:
    """A pipe read line by line on a thread, so the test can wait with a deadline."""

    def __init__(self, pipe: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(pipe,), daemon=True).start()

    def _pump(self, pipe: IO[str]) -> None:
        with suppress(ValueError, OSError):  # closed under us when the test ends
            for line in pipe:
                self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no such line within {timeout}s; saw {self.seen!r}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"output ended without such a line; saw {self.seen!r}")
            self.seen.append(line)
            if predicate(line):
                return line


@contextmanager
def connected(connection_file: str | Path) -> Iterator[BlockingKernelClient]:
    """A client of a kernel we started ourselves, once kernel_info is answered.

    Without the heartbeat channel: jupyter_client's 1 s heartbeat deadline makes a
    standalone client think a kernel on a loaded machine died (assert_heartbeat checks it).
    """
    kc = BlockingKernelClient()
    kc.load_connection_file(str(connection_file))
    kc.start_channels(hb=False)
    try:
        kc.wait_for_ready(timeout=30)
        yield kc
    finally:
        kc.stop_channels()


@contextmanager
def managed(kernel_name: str, cwd: Path | None = None) -> Iterator[BlockingKernelClient]:
    """Start a kernelspec the way Jupyter does (KernelManager) and hand back its client."""
    km = KernelManager(kernel_name=kernel_name)
    km.start_kernel(cwd=str(cwd) if cwd else None)
    try:
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=30)
            yield kc
        finally:
            kc.stop_channels()
    finally:
        km.shutdown_kernel(now=True)


def assert_heartbeat(connection_file: str | Path) -> None:
    """The heartbeat channel echoes what it is sent."""
    info = json.loads(Path(connection_file).read_text())
    if info["transport"] == "ipc":
        url = f"ipc://{info['ip']}-{info['hb_port']}"
    else:
        url = f"tcp://{info['ip']}:{info['hb_port']}"
    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.REQ)
        sock.linger = 0
        sock.connect(url)
        sock.send(b"kernelkit-ping")
        assert sock.poll(20_000), "no heartbeat reply within 20s"
        assert sock.recv() == b"kernelkit-ping"
    finally:
        ctx.destroy(linger=0)


def assert_echo_kernel(kc: BlockingKernelClient) -> None:
    info = kc.kernel_info(reply=True, timeout=20)
    assert info["content"]["status"] == "ok"
    assert info["content"]["implementation"] == "Echo"
    assert stdout_of(kc, "hello kernelkit") == "hello kernelkit"


def jupyter_kernelspecs() -> dict[str, Any]:
    """What ``jupyter kernelspec list`` finds, by name."""
    done = subprocess.run(
        [JUPYTER, "kernelspec", "list", "--json"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    specs: dict[str, Any] = json.loads(done.stdout)["kernelspecs"]
    return specs


def kernelkit_list() -> dict[str, list[str]]:
    """The installed-kernelspec rows of ``kernelkit list``: name -> [kernel, path]."""
    done = cli("list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    start = lines.index("installed kernelkit kernelspecs:")
    rows = {}
    for line in lines[start + 1 :]:
        name, *rest = line.split()
        rows[name] = rest
    return rows


def gone(proc: psutil.Process) -> bool:
    """Exited (a zombie nobody reaped yet counts as exited)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)
