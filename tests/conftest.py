"""Shared fixtures: an isolated Jupyter environment, test kernelspecs, and client helpers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SUPPORT = Path(__file__).parent / "support"
ROOT = Path(__file__).resolve().parent.parent
DENO = str(Path(sys.executable).parent / "deno")
NODE = shutil.which("node") or "node"

# Isolate every Jupyter path from the machine's own before jupyter_client is imported.
_JUPYTER_HOME = Path(tempfile.mkdtemp(prefix="kernelkit-tests-"))
os.environ["JUPYTER_DATA_DIR"] = str(_JUPYTER_HOME / "data")
os.environ["JUPYTER_RUNTIME_DIR"] = str(_JUPYTER_HOME / "runtime")
os.environ["JUPYTER_CONFIG_DIR"] = str(_JUPYTER_HOME / "config")
os.environ["JUPYTER_PATH"] = str(_JUPYTER_HOME / "path")
os.environ["JUPYTER_PLATFORM_DIRS"] = "1"
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(SUPPORT), os.environ.get("PYTHONPATH", "")) if p
)
sys.path.insert(0, str(SUPPORT))

TEST_SPECS = {
    # name: (kernel, interrupt mode)
    "kk-commands": ("kk_testkernels:CommandKernel", "signal"),
    "kk-commands-message": ("kk_testkernels:CommandKernel", "message"),
    "kk-async": ("kk_testkernels:AsyncKernel", "signal"),
    "kk-concurrent": ("kk_testkernels:ConcurrentKernel", "signal"),
    "kk-concurrent-message": ("kk_testkernels:ConcurrentKernel", "message"),
    "kk-classic-echo": ("classic_echo:EchoKernel", "signal"),
    "kk-python": ("kk_testkernels:PythonKernel", "signal"),
}


# Bridge kernels: name → (backend command, interrupt mode).
BRIDGE_SPECS = {
    "kk-deno-echo": ([DENO, "run", str(ROOT / "examples/deno/echo.ts")], "signal"),
    "kk-deno-echo-message": ([DENO, "run", str(ROOT / "examples/deno/echo.ts")], "message"),
    # The JS SDK with serve({ syncStdin: true }) (as echo.ts), a request that waits.
    "kk-deno-sync": ([DENO, "run", "--allow-env=CONFORMANCE_SUBSHELLS",
                      str(SUPPORT / "conformance_backend.mjs"), "sync"], "signal"),
    "kk-node-echo": ([NODE, str(ROOT / "examples/node/echo.mjs")], "signal"),
    "kk-python-echo": ([sys.executable, str(ROOT / "examples/python/echo_backend.py")], "signal"),
    "kk-deno-js": ([DENO, "run", str(ROOT / "examples/deno/javascript.ts")], "signal"),
    "kk-faulty": ([sys.executable, str(SUPPORT / "fault_backend.py")], "signal"),
    # Backends that opt in to subshells (bridge protocol 1.1).
    "kk-js-subshells": ([DENO, "run", str(SUPPORT / "concurrent_backend.mjs")], "signal"),
    "kk-py-subshells": ([sys.executable, str(SUPPORT / "concurrent_backend.py")], "signal"),
    "kk-faulty-message": ([sys.executable, str(SUPPORT / "fault_backend.py")], "message"),
    # Comms through the host (bridge protocol 1.2), with protocol lines written by hand.
    "kk-raw-comms": ([sys.executable, str(SUPPORT / "raw_comm_backend.py")], "signal"),
    "kk-raw-comms-subshells": ([sys.executable, str(SUPPORT / "raw_comm_backend.py"),
                                "--subshells"], "signal"),
    # The JS SDK's comms and widgets (tests/test_js_comms.py, tests/test_js_widgets.py).
    "kk-js-comms": ([DENO, "run", str(SUPPORT / "comms_backend.mjs")], "signal"),
    "kk-node-comms": ([NODE, str(SUPPORT / "comms_backend.mjs")], "signal"),
    "kk-js-widgets": ([DENO, "run", str(ROOT / "examples/deno/widgets.ts")], "signal"),
}
os.environ.setdefault("DENO_NO_UPDATE_CHECK", "1")


def stdout_of(kc: Any, code: str, timeout: float = 30, **kw: Any) -> str:
    """Run code through a jupyter_client client; what the kernel streamed to stdout for it."""
    reply = kc.execute(code, reply=True, timeout=timeout, **kw)
    assert reply["content"]["status"] == "ok", reply["content"]
    return stdout_until_idle(kc, reply["parent_header"]["msg_id"], timeout)


def stdout_until_idle(kc: Any, msg_id: str, timeout: float = 30,
                      check: Any = None) -> str:
    """What the kernel streamed to stdout for msg_id, through its idle; ``check`` sees
    every IOPub message read (a schema validator, say)."""
    text = []
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        if check is not None:
            check(msg)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            text.append(msg["content"]["text"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(text)


def kernelkit(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run the kernelkit CLI as a user would, in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "kernelkit", *args],
        capture_output=True,
        text=True,
        timeout=kwargs.pop("timeout", 60),
        **kwargs,
    )


def pytest_configure(config: pytest.Config) -> None:
    prefix = _JUPYTER_HOME / "prefix"
    for name, (kernel, mode) in TEST_SPECS.items():
        done = kernelkit("install", kernel, "--name", name, "--prefix", str(prefix),
                         "--interrupt-mode", mode, cwd=SUPPORT)
        assert done.returncode == 0, done.stderr
    for name, (command, mode) in BRIDGE_SPECS.items():
        done = kernelkit("install", "--name", name, "--prefix", str(prefix),
                         "--interrupt-mode", mode, "--", *command)
        assert done.returncode == 0, done.stderr
    os.environ["JUPYTER_PATH"] = str(prefix / "share" / "jupyter")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_JUPYTER_HOME, ignore_errors=True)


class Kernel:
    """A started kernel with a blocking client, and helpers to run code and read IOPub."""

    def __init__(self, name: str) -> None:
        from jupyter_client.manager import start_new_kernel

        self.km, self.kc = start_new_kernel(kernel_name=name, startup_timeout=30)

    def request(self, msg_type: str, content: dict[str, Any] | None = None,
                channel: str = "shell") -> str:
        msg = self.kc.session.msg(msg_type, content or {})
        getattr(self.kc, f"{channel}_channel").send(msg)
        return str(msg["header"]["msg_id"])

    def reply(self, msg_id: str, channel: str = "shell", timeout: float = 20) -> dict[str, Any]:
        chan = getattr(self.kc, f"{channel}_channel")
        deadline = time.monotonic() + timeout
        while True:
            msg = chan.get_msg(timeout=max(0.01, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg  # type: ignore[no-any-return]

    def iopub_until_idle(self, msg_id: str, timeout: float = 20) -> list[dict[str, Any]]:
        """IOPub messages whose parent is msg_id, through its idle status."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            msg = self.kc.iopub_channel.get_msg(timeout=max(0.01, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            out.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return out

    def wait_started(self, msg_id: str, timeout: float = 20) -> None:
        """Wait until the code of msg_id prints "started" (so it is surely running)."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.kc.iopub_channel.get_msg(timeout=max(0.01, deadline - time.monotonic()))
            if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream"
                    and "started" in msg["content"]["text"]):
                return

    def execute(self, code: str, timeout: float = 20, **kw: Any) -> tuple[dict[str, Any],
                                                                        list[dict[str, Any]]]:
        msg_id = self.kc.execute(code, **kw)
        reply = self.reply(msg_id, timeout=timeout)
        return reply, self.iopub_until_idle(msg_id, timeout=timeout)

    def stdout(self, code: str, **kw: Any) -> str:
        reply, msgs = self.execute(code, **kw)
        assert reply["content"]["status"] == "ok", reply["content"]
        return "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream"
                       and m["content"]["name"] == "stdout")

    def close(self) -> None:
        self.kc.stop_channels()
        if self.km.has_kernel:
            self.km.shutdown_kernel(now=True)


@pytest.fixture
def start_kernel() -> Iterator[Any]:
    started: list[Kernel] = []

    def start(name: str = "kk-commands") -> Kernel:
        k = Kernel(name)
        started.append(k)
        return k

    yield start
    for k in started:
        k.close()


from kernelkit.bridge.kernel import BridgeKernel  # noqa: E402 (after the paths above)


class UnservedBridge(BridgeKernel):
    """A bridge kernel driven directly, without a server: output is kept, not published."""

    def __init__(self, argv: list[str], **kwargs: Any) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []
        super().__init__(argv, **kwargs)

    def _publish(self, msg_type: str, content: dict[str, Any], parent: Any = None,
                 metadata: Any = None, buffers: Any = None) -> None:
        self.published.append((msg_type, content))
