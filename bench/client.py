"""A lean benchmark client: raw pyzmq plus signing, so client overhead does not hide the kernel's.

It launches a kernel from a kernelspec's argv with a fresh connection file and measures it
through the shell and IOPub channels only. Connection files and ports come from the tests'
raw client (tests/support/raw.py), which every harness below jupyter_client shares; the
timing loops are this module's own, kept lean.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import zmq

from kernelkit.wire import Message, ProtocolError, Session

_SUPPORT = str(Path(__file__).resolve().parents[1] / "tests" / "support")
if _SUPPORT not in sys.path:
    sys.path.insert(0, _SUPPORT)
from raw import CHANNELS, connection_info, free_ports, write_connection_file  # noqa: E402

# A kernel that exits before answering may have lost a port to another process between
# free_ports and its bind (peers cannot be told to pick their own): start it again.
START_ATTEMPTS = 3


def kernel_command(argv: list[str], connection_file: str) -> list[str]:
    """The kernelspec's argv with {connection_file} filled in and python mapped as Jupyter does."""
    out = [a.replace("{connection_file}", connection_file) for a in argv]
    pythons = {
        "python",
        f"python{sys.version_info[0]}",
        "python{}.{}".format(*sys.version_info[:2]),
    }
    if out and out[0] in pythons:
        out[0] = sys.executable
    return out


class KernelExited(RuntimeError):
    """The kernel process ended before it answered its first request."""


@dataclass
class Running:
    """One launched kernel and a lean client connected to it."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None
    startup_s: float = 0.0
    executes: int = 0
    features: list[str] = field(default_factory=list)  # kernel_info's supported_features
    subshell_id: str | None = None  # where executes go (None: the main shell)
    _tmp: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="kk-bench-"))

    def start(self, ctx: zmq.Context[zmq.Socket[bytes]], timeout: float = 60) -> None:
        """Launch the kernel and wait for its first kernel_info reply (startup_s)."""
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self._launch(ctx, timeout)
                break
            except KernelExited:
                self._close_sockets()
                if attempt == START_ATTEMPTS:
                    raise
        # Let IOPub connect before measuring executes (a kernel never sees its first
        # subscriber otherwise and the first outputs would be lost to the client).
        self.settle_iopub(timeout)

    def _launch(self, ctx: zmq.Context[zmq.Socket[bytes]], timeout: float) -> None:
        ports = free_ports(5)
        key = os.urandom(16).hex()
        cf = Path(self._tmp) / "connection.json"
        write_connection_file(cf, connection_info(key, ports, name=self.name))
        url = {c: f"tcp://127.0.0.1:{p}" for c, p in zip(CHANNELS, ports, strict=True)}
        self.session = Session(key.encode())
        self.shell = ctx.socket(zmq.DEALER)
        self.shell.linger = 0
        # Retry the connection every 2 ms (not libzmq's 100 ms) while the kernel starts,
        # so that startup measures the kernel and not the client's back-off.
        self.shell.reconnect_ivl = 2
        self.shell.connect(url["shell"])
        self.control = ctx.socket(zmq.DEALER)
        self.control.linger = 0
        self.control.connect(url["control"])
        self.iopub = ctx.socket(zmq.SUB)
        self.iopub.linger = 0
        self.iopub.rcvhwm = 0
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")
        self.iopub.connect(url["iopub"])
        env = {**os.environ, "JPY_PARENT_PID": str(os.getpid()), **(self.env or {})}
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            kernel_command(self.argv, str(cf)),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.send(self.shell, "kernel_info_request", {})
        deadline = t0 + timeout
        # Wait in short slices, so that a kernel that exits (a port taken) is seen at once.
        while not self.shell.poll(20):
            if self.proc.poll() is not None:
                raise KernelExited(f"{self.name}: exited with {self.proc.returncode} at start-up")
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{self.name}: no kernel_info reply within {timeout} s")
        info = self.recv(self.shell)
        self.startup_s = time.perf_counter() - t0
        features = info.content.get("supported_features")
        self.features = [str(f) for f in features] if isinstance(features, list) else []

    def _close_sockets(self) -> None:
        for sock in (self.shell, self.control, self.iopub):
            sock.close(linger=0)

    def send(self, sock: zmq.Socket[bytes], msg_type: str, content: dict[str, Any]) -> str:
        header = self.session.header(msg_type)
        if self.subshell_id is not None and sock is self.shell:
            header["subshell_id"] = self.subshell_id
        sock.send_multipart(self.session.serialize(msg_type, content, header=header))
        return str(header["msg_id"])

    def recv(self, sock: zmq.Socket[bytes]) -> Message:
        frames = sock.recv_multipart()
        try:
            return self.session.deserialize(frames)
        except ProtocolError:
            # Some kernels send null where the spec wants {} (seen: xeus-python's
            # parent_header); the benchmark measures speed, not conformance.
            i = frames.index(b"<IDS|MSG>")
            parts = [json.loads(f) or {} for f in frames[i + 2 : i + 6]]
            return Message(*parts)

    def wait_reply(self, sock: zmq.Socket[bytes], timeout: float) -> Message:
        if not sock.poll(int(timeout * 1000)):
            assert self.proc is not None
            raise TimeoutError(
                f"{self.name}: no reply within {timeout} s "
                f"(process {'exited ' + str(self.proc.poll()) if self.proc.poll() is not None else 'alive'})"
            )
        return self.recv(sock)

    def create_subshell(self, timeout: float = 10) -> str | None:
        """A new subshell's id (JEP 91), or None if the kernel does not make one."""
        if "kernel subshells" not in self.features:
            return None
        msg_id = self.send(self.control, "create_subshell_request", {})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self.wait_reply(self.control, timeout)
            if reply.parent_header.get("msg_id") == msg_id:
                sid = reply.content.get("subshell_id")
                return sid if reply.content.get("status") == "ok" and isinstance(sid, str) else None
        return None

    def settle_iopub(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg_id = self.send(self.shell, "kernel_info_request", {})
            self.wait_reply(self.shell, timeout)
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                if not self.iopub.poll(100):
                    continue
                msg = self.recv(self.iopub)
                if (
                    msg.parent_header.get("msg_id") == msg_id
                    and msg.msg_type == "status"
                    and msg.content.get("execution_state") == "idle"
                ):
                    return
        raise TimeoutError(f"{self.name}: IOPub never delivered")

    def execute_request(self, code: str) -> str:
        self.executes += 1
        return self.send(
            self.shell,
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
        )

    def execute(self, code: str, timeout: float = 60) -> float:
        """One execute round trip: request sent → reply received and idle seen (seconds)."""
        t0 = time.perf_counter()
        msg_id = self.execute_request(code)
        replied = idle = False
        poller = zmq.Poller()
        poller.register(self.shell, zmq.POLLIN)
        poller.register(self.iopub, zmq.POLLIN)
        deadline = t0 + timeout
        while not (replied and idle):
            events = dict(poller.poll(int(max(0.001, deadline - time.perf_counter()) * 1000)))
            if not events:
                raise TimeoutError(f"{self.name}: execute timed out")
            if self.shell in events and self.recv(self.shell).parent_header.get("msg_id") == msg_id:
                replied = True
            if self.iopub in events:
                msg = self.recv(self.iopub)
                if (
                    msg.msg_type == "status"
                    and msg.content.get("execution_state") == "idle"
                    and msg.parent_header.get("msg_id") == msg_id
                ):
                    idle = True
        return time.perf_counter() - t0

    def pipelined(self, code: str, n: int, timeout: float = 300) -> float:
        """Executes per second with n requests sent back to back."""
        t0 = time.perf_counter()
        ids = [self.execute_request(code) for _ in range(n)]
        last = ids[-1]
        replies = 0
        idle = False
        poller = zmq.Poller()
        poller.register(self.shell, zmq.POLLIN)
        poller.register(self.iopub, zmq.POLLIN)
        while replies < n or not idle:
            events = dict(poller.poll(int(timeout * 1000)))
            if not events:
                raise TimeoutError(f"{self.name}: pipelined run stalled at {replies}/{n}")
            while self.shell.poll(0):
                self.recv(self.shell)
                replies += 1
            while self.iopub.poll(0):
                msg = self.recv(self.iopub)
                if (
                    msg.parent_header.get("msg_id") == last
                    and msg.msg_type == "status"
                    and msg.content.get("execution_state") == "idle"
                ):
                    idle = True
        return n / (time.perf_counter() - t0)

    def output(self, code: str, size: int, timeout: float = 120) -> float:
        """MB/s of output: request sent → all `size` characters of output received."""
        t0 = time.perf_counter()
        msg_id = self.execute_request(code)
        got = 0
        deadline = t0 + timeout
        while got < size:
            if not self.iopub.poll(int(max(0.001, deadline - time.perf_counter()) * 1000)):
                raise TimeoutError(f"{self.name}: output stalled at {got}/{size}")
            msg = self.recv(self.iopub)
            if msg.parent_header.get("msg_id") != msg_id:
                continue
            if msg.msg_type == "stream":
                got += len(msg.content.get("text", ""))
            elif msg.msg_type in ("execute_result", "display_data"):
                got += len(str(msg.content.get("data", {}).get("text/plain", "")))
        elapsed = time.perf_counter() - t0
        while True:  # the reply, so the next measurement starts clean
            if not self.shell.poll(int(timeout * 1000)):
                raise TimeoutError(f"{self.name}: no reply after the output")
            if self.recv(self.shell).parent_header.get("msg_id") == msg_id:
                break
        return size / elapsed / 1e6

    def rss_mb(self) -> float:
        """Resident memory of the kernel process and its children (a bridge backend)."""
        assert self.proc is not None
        p = psutil.Process(self.proc.pid)
        total = p.memory_info().rss
        for child in p.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # it may have just exited
                total += child.memory_info().rss
        return total / 1e6

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.send(self.control, "shutdown_request", {"restart": False})
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                for child in psutil.Process(self.proc.pid).children(recursive=True):
                    child.kill()
                self.proc.kill()
                self.proc.wait()
        self._close_sockets()
        shutil.rmtree(self._tmp, ignore_errors=True)
