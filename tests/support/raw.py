"""One raw client for the harnesses that must see the wire: kernel processes, sockets, signing.

The reliability scenarios, the attack suites, the Curve and hardening tests and the
benchmark all start kernels and talk to them here, below jupyter_client: with raw pyzmq
sockets and kernelkit's wire layer, so that they can send what no well-behaved client
would and count what comes back. Waits are on events (a reply, an idle status, a ZMTP
handshake, a port written back), never on a fixed sleep.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import zmq
from zmq.utils.monitor import recv_monitor_message

from kernelkit.wire import Message, ProtocolError, Session

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "tests" / "support"

CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
# A launcher between the test and the kernel, as Jupyter is: it sets JPY_PARENT_PID.
PARENT = (
    "import os, subprocess, sys\n"
    "env = dict(os.environ, JPY_PARENT_PID=str(os.getpid()))\n"
    "child = subprocess.Popen(sys.argv[1:], env=env)\n"
    "print(child.pid, flush=True)\n"
    "child.wait()\n"
)


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def peak_rss(proc: psutil.Process, during: Callable[[], Any]) -> tuple[Any, int, int]:
    """Run ``during()``, sampling proc's RSS; (its result, RSS before, peak RSS)."""
    base = proc.memory_info().rss
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                peak[0] = max(peak[0], proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = during()
    finally:
        done.set()
        sampler.join()
    return result, base, peak[0]


# -- connection files -------------------------------------------------------------------------


def connection_info(key: str, ports: list[int] | None = None, *, transport: str = "tcp",
                    ip: str = "127.0.0.1", name: str = "raw") -> dict[str, Any]:
    """A connection file's content; ``ports`` in CHANNELS order, or all 0 (the kernel picks)."""
    chosen = ports if ports is not None else [0] * len(CHANNELS)
    return {
        "transport": transport,
        "ip": ip,
        **{f"{c}_port": port for c, port in zip(CHANNELS, chosen, strict=True)},
        "key": key,
        "signature_scheme": "hmac-sha256",
        "kernel_name": name,
    }


def write_connection_file(path: Path, info: dict[str, Any]) -> None:
    """Write it readable by this user only, as jupyter_client does (it holds the key)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info, f)


# Ports handed out by free_ports in this process: never handed out twice, so two kernels
# started by one harness cannot be given the same port (as jupyter_client's port cache).
_handed_out: set[int] = set()


def free_ports(n: int) -> list[int]:
    """n ports free just now, for kernels that cannot pick their own (port 0).

    Between this check and the kernel's bind another process may take one: a caller must
    treat a kernel that exits at start-up as possibly that race and start it again on new
    ports (``bench.client.Running.start`` does). Kernels that write back the ports they
    bound, as kernelkit's do, should be given 0 instead (``KernelProcess``).
    """
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            ports.append(port)
    return ports


# -- kernel processes ------------------------------------------------------------------------


class KernelProcess:
    """A kernel started as Jupyter would, from a connection file; stderr goes to a file.

    Ports are written as 0 and the kernel picks and writes back its own, so that no
    other process can take a port between choosing and binding it.
    """

    def __init__(
        self,
        args: list[str],
        workdir: Path,
        *,
        key: str | None = None,
        transport: str = "tcp",
        curve: bool = False,
        env: dict[str, str] | None = None,
        parent: bool = False,
        module: str = "kernelkit",
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.key = os.urandom(16).hex() if key is None else key
        ip = "127.0.0.1" if transport == "tcp" else str(workdir / "kk")
        info = connection_info(self.key, transport=transport, ip=ip, name="reliability")
        self.curve_public: bytes | None = None
        if curve:
            public, secret = zmq.curve_keypair()
            self.curve_public = public
            info["curve_publickey"], info["curve_secretkey"] = public.decode(), secret.decode()
        self.cf = workdir / "connection.json"
        write_connection_file(self.cf, info)
        self.stderr_path = workdir / "kernel-stderr.txt"
        argv = [sys.executable, "-m", module, *(a.replace("{cf}", str(self.cf)) for a in args)]
        pythonpath = os.pathsep.join(p for p in (str(SUPPORT), os.environ.get("PYTHONPATH")) if p)
        full_env = {**os.environ, "PYTHONPATH": pythonpath}
        # The kernel ends with this process (a crash of the harness leaves no kernel behind);
        # with ``parent`` the launcher in between names itself instead.
        full_env["JPY_PARENT_PID"] = str(os.getpid())
        if parent:
            full_env.pop("JPY_PARENT_PID")
        full_env.update(env or {})
        if parent:  # self.proc is then the launcher, self.ps the kernel
            argv = [sys.executable, "-c", PARENT, *argv]
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stderr=err, env=full_env,
                stdout=subprocess.PIPE if parent else subprocess.DEVNULL,
            )
        if parent:
            assert self.proc.stdout is not None
            self.ps = psutil.Process(int(self.proc.stdout.readline()))
        else:
            self.ps = psutil.Process(self.proc.pid)
        self.info = self._wait_for_ports(60)

    def _wait_for_ports(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kernel exited with {self.proc.returncode}: {self.stderr()}")
            with contextlib.suppress(OSError, ValueError):
                info: dict[str, Any] = json.loads(self.cf.read_text())
                if all(info[f"{c}_port"] for c in CHANNELS):
                    return info
            time.sleep(0.02)
        raise RuntimeError(f"kernel did not write its ports within {timeout} s: {self.stderr()}")

    def url(self, channel: str) -> str:
        port = self.info[f"{channel}_port"]
        if self.info["transport"] == "ipc":
            return f"ipc://{self.info['ip']}-{port}"
        return f"tcp://127.0.0.1:{port}"

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        return not gone(self.ps)

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def resources(self) -> tuple[int, int, int]:
        """RSS (bytes), open file descriptors, threads."""
        return self.rss(), self.ps.num_fds(), self.ps.num_threads()

    def kill(self) -> None:
        with contextlib.suppress(psutil.Error):
            for child in [*self.ps.children(recursive=True), self.ps]:
                with contextlib.suppress(psutil.Error):
                    child.kill()
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> KernelProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


@contextlib.contextmanager
def zmq_context() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        yield ctx
    finally:
        ctx.destroy(linger=0)


def curve_client(sock: zmq.Socket[bytes], server_public: bytes | None) -> None:
    if server_public is not None:
        public, secret = zmq.curve_keypair()
        sock.curve_publickey, sock.curve_secretkey = public, secret
        sock.curve_serverkey = server_public


@contextlib.contextmanager
def handshake(sock: zmq.Socket[bytes], timeout: float = 30) -> Iterator[None]:
    """Wait, after the block connects ``sock``, until its ZMTP handshake is done.

    The kernel sends input_request to the stdin peer with the shell peer's identity; a
    peer it does not know yet gets nothing (ROUTER drops), so a client must be connected
    on stdin before it asks for input.
    """
    monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    try:
        yield
        if not monitor.poll(int(timeout * 1000)):
            raise TimeoutError(f"no ZMTP handshake within {timeout} s")
        recv_monitor_message(monitor)
    finally:
        sock.disable_monitor()
        monitor.close(linger=0)


class IOPub:
    """A SUB socket drained on its own thread; messages are kept by parent msg_id."""

    def __init__(
        self,
        ctx: zmq.Context[zmq.Socket[bytes]],
        kernel: KernelProcess,
        keep: bool = True,
        on_message: Callable[[Message], None] | None = None,
    ) -> None:
        self.sock = ctx.socket(zmq.SUB)
        self.sock.linger = 0
        self.sock.rcvhwm = 0
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        curve_client(self.sock, kernel.curve_public)
        self.sock.connect(kernel.url("iopub"))
        self.session = Session(kernel.key.encode())
        self.keep = keep
        self.on_message = on_message
        self.by_parent: dict[str, list[Message]] = defaultdict(list)
        self.count = 0
        self.bad = 0
        self.cond = threading.Condition()
        self.welcomed = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="iopub", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._loop()
        except zmq.ZMQError:  # the context was destroyed under us: the run is over
            pass
        finally:
            with contextlib.suppress(zmq.ZMQError):
                self.sock.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self.sock.poll(100):
                continue
            while True:
                try:
                    frames = self.sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                try:
                    msg = self.session.deserialize(frames)
                except ProtocolError:
                    self.bad += 1
                    continue
                if msg.msg_type == "iopub_welcome":
                    self.welcomed.set()
                if self.on_message is not None:
                    self.on_message(msg)
                with self.cond:
                    self.count += 1
                    if self.keep:
                        self.by_parent[str(msg.parent_header.get("msg_id"))].append(msg)
                    self.cond.notify_all()

    def messages(self, msg_id: str) -> list[Message]:
        with self.cond:
            return list(self.by_parent.get(msg_id, ()))

    def wait_idle(self, msg_id: str, timeout: float = 60) -> list[Message]:
        def idle() -> bool:
            return any(
                m.msg_type == "status" and m.content.get("execution_state") == "idle"
                for m in self.by_parent.get(msg_id, ())
            )

        with self.cond:
            if not self.cond.wait_for(idle, timeout):
                raise TimeoutError(f"no idle status for {msg_id} within {timeout} s")
            return list(self.by_parent[msg_id])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


class Client:
    """Raw DEALER sockets on shell, control and stdin, plus an IOPub collector."""

    def __init__(
        self,
        ctx: zmq.Context[zmq.Socket[bytes]],
        kernel: KernelProcess,
        channels: tuple[str, ...] = ("shell", "control", "stdin"),
        iopub: bool = True,
    ) -> None:
        self.kernel = kernel
        self.session = Session(kernel.key.encode())
        self.sockets: dict[str, zmq.Socket[bytes]] = {}
        # One routing identity on every channel: the kernel sends input_request to the
        # stdin peer whose identity sent the execute on shell (as jupyter_client does).
        identity = os.urandom(8).hex().encode()
        for channel in channels:
            sock = ctx.socket(zmq.DEALER)
            sock.linger = 0
            sock.identity = identity
            curve_client(sock, kernel.curve_public)
            with handshake(sock):
                sock.connect(kernel.url(channel))
            self.sockets[channel] = sock
        self.iopub = IOPub(ctx, kernel) if iopub else None
        # Replies that arrived while waiting for another one, by parent msg_id.
        self.replies: dict[str, list[Message]] = defaultdict(list)
        self.unparsable = 0

    def frames(
        self, msg_type: str, content: dict[str, Any], msg_id: str | None = None, **kw: Any
    ) -> tuple[str, list[bytes]]:
        header = self.session.header(msg_type)
        if msg_id is not None:
            header["msg_id"] = msg_id
        return header["msg_id"], self.session.serialize(msg_type, content, header=header, **kw)

    def send(self, channel: str, msg_type: str, content: dict[str, Any], **kw: Any) -> str:
        msg_id, frames = self.frames(msg_type, content, **kw)
        self.sockets[channel].send_multipart(frames)
        return msg_id

    def execute(self, code: str, **content: Any) -> str:
        body = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                "allow_stdin": False, **content}
        return self.send("shell", "execute_request", body)

    def recv(self, channel: str, timeout: float) -> Message | None:
        sock = self.sockets[channel]
        if not sock.poll(int(timeout * 1000)):
            return None
        frames = sock.recv_multipart()
        try:
            return self.session.deserialize(frames)
        except ProtocolError:
            self.unparsable += 1
            return None

    def reply(self, msg_id: str, channel: str = "shell", timeout: float = 60) -> Message:
        """The reply to msg_id; other replies met on the way are kept in ``replies``."""
        if self.replies.get(msg_id):
            return self.replies[msg_id].pop(0)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no reply to {msg_id} on {channel} within {timeout} s")
            if not self.kernel.alive():
                raise TimeoutError(f"no reply to {msg_id} on {channel}: the kernel exited")
            msg = self.recv(channel, min(remaining, 1.0))
            if msg is None:
                continue
            parent = str(msg.parent_header.get("msg_id"))
            if parent == msg_id:
                return msg
            self.replies[parent].append(msg)

    def drain(self, channel: str, quiet: float = 0.2) -> None:
        """Keep whatever arrives until the channel has been quiet for ``quiet`` seconds."""
        while True:
            msg = self.recv(channel, quiet)
            if msg is None:
                return
            self.replies[str(msg.parent_header.get("msg_id"))].append(msg)

    def wait_ready(self, timeout: float = 60) -> None:
        msg_id = self.send("shell", "kernel_info_request", {})
        self.reply(msg_id, "shell", timeout)
        if self.iopub is not None and not self.iopub.welcomed.wait(timeout):
            raise TimeoutError("no iopub_welcome")

    def close(self) -> None:
        if self.iopub is not None:
            self.iopub.close()
        for sock in self.sockets.values():
            sock.close(linger=0)


def heartbeat_ok(ctx: zmq.Context[zmq.Socket[bytes]], kernel: KernelProcess,
                 timeout: float = 20) -> bool:
    sock = ctx.socket(zmq.REQ)
    sock.linger = 0
    curve_client(sock, kernel.curve_public)
    sock.connect(kernel.url("hb"))
    try:
        sock.send(b"ping")
        return bool(sock.poll(int(timeout * 1000))) and sock.recv() == b"ping"
    finally:
        sock.close()


def serving(info: dict[str, Any], timeout: float = 30) -> bool:
    """Whether the kernel behind a connection file's content answers kernel_info on shell.

    The event a wait for "started and serving" stands for (a written connection file only
    says the ports are bound); works for any kernel, ipykernel included.
    """
    session = Session(str(info["key"]).encode())
    with zmq_context() as ctx:
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        if info.get("transport", "tcp") == "ipc":
            sock.connect(f"ipc://{info['ip']}-{info['shell_port']}")
        else:
            sock.connect(f"tcp://{info['ip']}:{info['shell_port']}")
        sock.send_multipart(session.serialize("kernel_info_request", {}))
        if not sock.poll(int(timeout * 1000)):
            return False
        with contextlib.suppress(ProtocolError):
            return session.deserialize(sock.recv_multipart()).msg_type == "kernel_info_reply"
        return False


def stdout_text(msgs: list[Message]) -> str:
    return "".join(
        str(m.content.get("text", "")) for m in msgs
        if m.msg_type == "stream" and m.content.get("name") == "stdout"
    )


def gone(proc: psutil.Process) -> bool:
    try:
        return bool(proc.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True
