"""Launching kernels the ipykernel way, and ending them with signals."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

from conftest import stdout_of

SUPPORT = Path(__file__).parent / "support"


@pytest.fixture
def launched(tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []
    clients: list[BlockingKernelClient] = []

    def launch(*argv: str) -> tuple[subprocess.Popen[bytes], BlockingKernelClient]:
        cf, _ = write_connection_file(str(tmp_path / f"k{len(procs)}.json"))
        proc = subprocess.Popen([sys.executable, *argv, "-f", cf])
        procs.append(proc)
        kc = BlockingKernelClient(connection_file=cf)
        kc.load_connection_file()
        kc.start_channels()
        clients.append(kc)
        kc.wait_for_ready(timeout=30)
        return proc, kc

    yield launch
    for kc in clients:
        kc.stop_channels()
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_script_launched_with_ipkernelapp_shim(launched: Any) -> None:
    _proc, kc = launched(str(SUPPORT / "script_kernel.py"))
    assert stdout_of(kc, "quiet") == "QUIET"
    assert kc.kernel_info(reply=True, timeout=10)["content"]["implementation"] == "shout"


@pytest.mark.parametrize("busy", [False, True])
def test_sigterm_exits_cleanly(launched: Any, busy: bool) -> None:
    proc, kc = launched("-m", "kernelkit", "run", "kk_testkernels:CommandKernel")
    assert stdout_of(kc, "ok") == "ok"
    if busy:
        kc.execute("loop")
        time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
