"""Bridge kernels for the hardening tests and attacks: started by jupyter_client, as Jupyter does.

Each ``Bridge`` writes its own kernelspec into a fresh folder (so that it can set the
backend command and environment), starts the kernel with jupyter_client's
``KernelManager`` (own session, forced shutdown by process-group kill), keeps the
kernel's stderr, where it logs, in a file, and talks to it with a blocking client.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

SUPPORT = Path(__file__).resolve().parent
ROOT = SUPPORT.parent.parent
DENO = str(Path(sys.executable).parent / "deno")
NODE = shutil.which("node") or "node"

# Backend commands.
PY = [sys.executable, str(SUPPORT / "hardening_backend.py")]
PY_SUBSHELLS = [*PY, "--subshells"]
NODE_JS = [NODE, str(SUPPORT / "hardening_backend.mjs")]
DENO_JS = [DENO, "run", str(SUPPORT / "hardening_backend.mjs")]
FAULT = [sys.executable, str(SUPPORT / "fault_backend.py")]


class Bridge:
    """A bridge kernel process started by jupyter_client, with a blocking client."""

    def __init__(
        self, backend: list[str], env: dict[str, str] | None = None, interrupt_mode: str = "signal"
    ) -> None:
        from jupyter_client.kernelspec import KernelSpecManager
        from jupyter_client.manager import KernelManager

        self.dir = Path(tempfile.mkdtemp(prefix="kk-hardening-"))
        spec = self.dir / "kernels" / "kk-hardening"
        spec.mkdir(parents=True)
        argv = [sys.executable, "-m", "kernelkit", "bridge", "-f", "{connection_file}", "--",
                *backend]
        (spec / "kernel.json").write_text(json.dumps({
            "argv": argv, "display_name": "hardening", "language": "hardening",
            "interrupt_mode": interrupt_mode,
        }))
        self.log_path = self.dir / "kernel-stderr.txt"
        ksm = KernelSpecManager(kernel_dirs=[str(self.dir / "kernels")])
        self.km = KernelManager(kernel_name="kk-hardening", kernel_spec_manager=ksm)
        full_env = {**os.environ, **(env or {})}
        full_env.pop("JPY_PARENT_PID", None)
        with open(self.log_path, "wb") as err:
            self.km.start_kernel(stderr=err, env=full_env)
        self.kc = self.km.client()
        self.kc.start_channels()
        try:
            self.kc.wait_for_ready(timeout=60)
        except Exception:
            self.close()
            raise
        self.host = psutil.Process(self.km.provisioner.pid)  # type: ignore[union-attr]

    # -- talking to it -----------------------------------------------------------------

    def send(self, msg_type: str, content: dict[str, Any] | None = None,
             channel: str = "shell", subshell_id: str | None = None) -> str:
        msg = self.kc.session.msg(msg_type, content or {})
        if subshell_id is not None:
            msg["header"]["subshell_id"] = subshell_id
        getattr(self.kc, f"{channel}_channel").send(msg)
        return str(msg["header"]["msg_id"])

    def start(self, code: str, subshell_id: str | None = None, **content: Any) -> str:
        body = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                "allow_stdin": False, **content}
        return self.send("execute_request", body, subshell_id=subshell_id)

    def reply(self, msg_id: str, channel: str = "shell", timeout: float = 30) -> dict[str, Any]:
        chan = getattr(self.kc, f"{channel}_channel")
        deadline = time.monotonic() + timeout
        while True:
            msg = chan.get_msg(timeout=max(0.01, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg["content"]  # type: ignore[no-any-return]

    def until_idle(self, msg_id: str, timeout: float = 30) -> list[dict[str, Any]]:
        out = []
        deadline = time.monotonic() + timeout
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            out.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return out

    def execute(self, code: str, timeout: float = 30, subshell_id: str | None = None,
                **content: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        msg_id = self.start(code, subshell_id=subshell_id, **content)
        reply = self.reply(msg_id, timeout=timeout)
        return reply, self.until_idle(msg_id, timeout=timeout)

    def wait_started(self, msg_id: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
            if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream"
                    and "started" in msg["content"]["text"]):
                return

    def control(self, msg_type: str, content: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.reply(self.send(msg_type, content, channel="control"), channel="control")

    # -- looking at it -----------------------------------------------------------------

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_logged(self, *texts: str, timeout: float = 20) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if all(t in log for t in texts):
                return True
            time.sleep(0.02)
        return False

    def family(self) -> list[psutil.Process]:
        """The host's descendants now: backend, its keeper, and whatever the backend started."""
        try:
            return list(self.host.children(recursive=True))
        except psutil.Error:
            return []

    def backend(self) -> psutil.Process:
        return next(p for p in self.host.children() if p.name() != "sh")

    def close(self) -> None:
        left = self.family()
        with contextlib.suppress(Exception):
            self.kc.stop_channels()
        with contextlib.suppress(Exception):
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=True)
        for proc in left:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def streams(msgs: list[dict[str, Any]], name: str) -> str:
    return "".join(m["content"]["text"] for m in msgs
                   if m["msg_type"] == "stream" and m["content"]["name"] == name)


def alive(pids: list[int]) -> list[int]:
    """Which of these processes still run (zombies count as gone)."""
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def wait_gone(pids: list[int], timeout: float = 15) -> tuple[list[int], float]:
    """Wait until none of ``pids`` runs; (those still running, seconds waited)."""
    t0 = time.monotonic()
    while True:
        left = alive(pids)
        waited = time.monotonic() - t0
        if not left or waited > timeout:
            return left, waited
        time.sleep(0.02)


def kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, 9)
