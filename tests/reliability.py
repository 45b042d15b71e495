"""Reliability runs against live kernels: fuzzing, load and faults, with the figures they produce.

(Why ~2,000 lines in one file: it is both a library the other harnesses import —
``KernelProcess``, ``Client``, ``IOPub``, ``peak_rss`` — and the scenarios with their
figures, run as one command; the attacks of this round went to ``attacks*.py`` of their
own. Splitting the library part into a module of its own is the Layout issue's job.)

    python -m tests.reliability                  # full sizes (100,000-execute soak, ...)
    python -m tests.reliability --quick          # the sizes tests/test_reliability.py runs
    python -m tests.reliability --write-docs     # also put the figures into docs/reliability.md
    python -m tests.reliability fuzz soak        # only some scenarios (names below)

(``python tests/reliability.py …`` is the same.)

Every scenario starts its own kernel processes (``python -m kernelkit run …`` with a fresh
connection file), talks to them with raw pyzmq sockets and kernelkit's wire layer, and
returns a ``Result``: named figures plus a list of failures (empty when everything held).
The test suite calls the same functions with smaller sizes and asserts there are no failures.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import hmac
import json
import os
import platform
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil
import zmq
from zmq.utils.monitor import recv_monitor_message

from kernelkit.wire import DELIMITER, Message, ProtocolError, Session

ROOT = Path(__file__).resolve().parent.parent
SUPPORT = ROOT / "tests" / "support"
DOCS = ROOT / "docs" / "reliability.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"

# Kernels the scenarios run: arguments after ``python -m kernelkit``; {cf} is the connection file.
ECHO = ["run", "echo", "-f", "{cf}"]
COMMANDS = ["run", "kk_testkernels:CommandKernel", "-f", "{cf}"]
FAULTY_BRIDGE = ["bridge", "-f", "{cf}", "--", sys.executable, str(SUPPORT / "fault_backend.py")]

CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
# A launcher between the test and the kernel, as Jupyter is: it sets JPY_PARENT_PID.
PARENT = (
    "import os, subprocess, sys\n"
    "env = dict(os.environ, JPY_PARENT_PID=str(os.getpid()))\n"
    "child = subprocess.Popen(sys.argv[1:], env=env)\n"
    "print(child.pid, flush=True)\n"
    "child.wait()\n"
)
DROPPED = "dropped a malformed message on "
DROPPED_MORE = re.compile(r"dropped ([\d,]+) more malformed messages on (\w+)")


def logged_drops(log: str) -> Counter[str]:
    """Dropped messages per channel, as the kernel's log counts them (kernelkit.droplog)."""
    counts: Counter[str] = Counter()
    for ln in log.splitlines():
        line = ln.partition("] ")[2]
        if line.startswith(DROPPED):
            counts[line[len(DROPPED):].split(":", 1)[0]] += 1
        elif m := DROPPED_MORE.match(line):
            counts[m.group(2)] += int(m.group(1).replace(",", ""))
    return counts


# -- results -------------------------------------------------------------------------------


@dataclass
class Result:
    """What one scenario tried and what held: figures (label -> value) and failures."""

    name: str
    title: str
    figures: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def check(self, ok: bool, message: str) -> bool:
        if not ok:
            self.failures.append(message)
        return ok

    def text(self) -> str:
        verdict = "held" if not self.failures else "FAILED"
        lines = [f"{self.title} ({self.seconds:.1f} s): {verdict}"]
        for label, value in self.figures.items():
            lines.append(f"  {label}: {_fmt(value)}")
        lines += [f"  FAILURE: {f}" for f in self.failures]
        return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    return str(value)


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
        info: dict[str, Any] = {
            "transport": transport,
            "ip": "127.0.0.1" if transport == "tcp" else str(workdir / "kk"),
            **{f"{c}_port": 0 for c in CHANNELS},
            "key": self.key,
            "signature_scheme": "hmac-sha256",
            "kernel_name": "reliability",
        }
        self.curve_public: bytes | None = None
        if curve:
            public, secret = zmq.curve_keypair()
            self.curve_public = public
            info["curve_publickey"], info["curve_secretkey"] = public.decode(), secret.decode()
        self.cf = workdir / "connection.json"
        fd = os.open(self.cf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(info, f)
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
        return not _gone(self.ps)

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


def started(client: Client, msg_id: str) -> bool:
    """Whether the code of msg_id has printed "started" (so it surely runs)."""
    return client.iopub is not None and "started" in stdout_text(client.iopub.messages(msg_id))


def has_output(client: Client, msg_id: str) -> bool:
    """Whether IOPub has shown anything for msg_id (its busy status, at least)."""
    return client.iopub is not None and bool(client.iopub.messages(msg_id))


def stdout_text(msgs: list[Message]) -> str:
    return "".join(
        str(m.content.get("text", "")) for m in msgs
        if m.msg_type == "stream" and m.content.get("name") == "stdout"
    )


def run_and_check(client: Client, code: str, expect_out: str | None, result: Result,
                  timeout: float = 60, **content: Any) -> Message | None:
    """Execute code; check the reply is ok and (if given) the stdout it printed."""
    try:
        msg_id = client.execute(code, **content)
        reply = client.reply(msg_id, timeout=timeout)
        msgs = client.iopub.wait_idle(msg_id, timeout) if client.iopub else []
    except TimeoutError as exc:
        result.check(False, f"execute {code[:40]!r}: {exc}")
        return None
    result.check(reply.content.get("status") == "ok",
                 f"execute {code[:40]!r} replied {reply.content.get('status')}")
    if expect_out is not None and client.iopub is not None:
        out = stdout_text(msgs)
        result.check(out == expect_out, f"execute {code[:40]!r} printed {out[:80]!r}")
    return reply


def answered_correctly(client: Client, result: Result, timeout: float = 60) -> int:
    """A battery of valid requests on shell and control, each checked; returns how many."""
    n = 0
    checks: list[tuple[str, str, dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
        ("shell", "kernel_info_request", {}, lambda c: c.get("protocol_version") == "5.5"),
        ("control", "kernel_info_request", {}, lambda c: c.get("status") == "ok"),
        ("shell", "complete_request", {"code": "prin", "cursor_pos": 4},
         lambda c: c.get("matches") == ["print"]),
        ("shell", "inspect_request", {"code": "x", "cursor_pos": 1, "detail_level": 0},
         lambda c: c.get("status") == "ok" and c.get("found") is False),
        ("shell", "is_complete_request", {"code": "x"}, lambda c: c.get("status") == "unknown"),
        ("shell", "history_request", {"hist_access_type": "tail", "n": 3, "output": False,
                                      "raw": True}, lambda c: c.get("history") == []),
        ("shell", "comm_info_request", {}, lambda c: c.get("comms") == {}),
        ("control", "comm_info_request", {}, lambda c: c.get("comms") == {}),
    ]
    for channel, msg_type, content, ok in checks:
        try:
            msg_id = client.send(channel, msg_type, content)
            reply = client.reply(msg_id, channel, timeout)
        except TimeoutError as exc:
            result.check(False, f"{msg_type} on {channel}: {exc}")
            continue
        expected_type = msg_type.replace("_request", "_reply")
        result.check(reply.msg_type == expected_type and ok(reply.content),
                     f"{msg_type} on {channel} answered {reply.msg_type} {reply.content}")
        n += 1
    if "stdin" in client.sockets:
        n += input_round(client, "final answer", result, timeout)
    return n


def input_round(client: Client, value: str, result: Result, timeout: float = 60,
                during: Callable[[Message], None] | None = None) -> int:
    """execute ``input ?`` → input_request → (``during``) → input_reply; checks the echo."""
    try:
        msg_id = client.execute("input ?", allow_stdin=True)
        request = client.recv("stdin", timeout)
        if request is None or request.msg_type != "input_request":
            result.check(False, f"no input_request on stdin, got {request}")
            return 0
        if during is not None:
            during(request)
        client.send("stdin", "input_reply", {"value": value}, parent=request.header)
        reply = client.reply(msg_id, timeout=timeout)
        msgs = client.iopub.wait_idle(msg_id, timeout) if client.iopub else []
    except TimeoutError as exc:
        result.check(False, f"input round: {exc}")
        return 0
    result.check(reply.content.get("status") == "ok", f"input round replied {reply.content}")
    if client.iopub is not None:
        got = stdout_text(msgs)
        result.check(got == f"got:{value}", f"input round printed {got!r}, not got:{value}")
    return 1


# -- 1. the live fuzzer ------------------------------------------------------------------------


@dataclass
class Hostile:
    category: str
    frames: list[bytes]
    # drop: refused by the wire layer (logged as dropped); reply: an error reply;
    # ok: an ok reply (odd but harmless header fields); ignore: no reply, nothing runs.
    outcome: str
    msg_id: str | None = None


def _nest(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


class Fuzzer:
    """Makes hostile messages. Every execute_request in them would print PWNED if it ran."""

    STRUCTURAL = ("frame_count", "no_delimiter", "not_json", "not_object", "bad_header",
                  "invalid_utf8", "deep_nesting", "huge")
    SIGNED_ONLY = ("bad_signature", "unsigned", "replay")
    AUTHENTIC = ("unknown_type", "mistyped_content")

    def __init__(self, rng: random.Random, key: bytes, huge_max: int) -> None:
        self.rng = rng
        self.key = key
        self.session = Session(key)
        self.other = Session(b"not-" + key)
        self.huge_max = huge_max
        self.n = 0
        self.captured: list[list[bytes]] = []  # genuine messages already sent, for replays

    # helpers

    def _id(self) -> str:
        self.n += 1
        return f"hostile-{self.n}"

    def sign(self, parts: list[bytes]) -> bytes:
        if not self.key:
            return b""
        return hmac.new(self.key, b"".join(parts), hashlib.sha256).hexdigest().encode()

    def signed(self, parts: list[bytes], buffers: tuple[bytes, ...] = ()) -> list[bytes]:
        return [DELIMITER, self.sign(parts), *parts, *buffers]

    def header(self, msg_type: str = "execute_request", **extra: Any) -> dict[str, Any]:
        h: dict[str, Any] = self.session.header(msg_type)
        h["msg_id"] = self._id()
        h.update(extra)
        return h

    def payload(self) -> dict[str, Any]:
        return {"code": f"print PWNED-{self.n}", "silent": False, "store_history": True,
                "user_expressions": {}, "allow_stdin": False}

    def parts(self, header: dict[str, Any] | None = None,
              content: dict[str, Any] | None = None) -> list[bytes]:
        h = header if header is not None else self.header()
        return [json.dumps(h).encode(), b"{}", b"{}",
                json.dumps(content if content is not None else self.payload()).encode()]

    def valid(self) -> tuple[str, list[bytes]]:
        header = self.header()
        return header["msg_id"], self.signed(self.parts(header))

    # categories

    def make(self, category: str, channel: str) -> Hostile:
        maker: Callable[[str], Hostile] = getattr(self, f"_{category}")
        return maker(channel)

    def _frame_count(self, channel: str) -> Hostile:
        msg_id, frames = self.valid()
        r = self.rng.random()
        if r < 0.5:  # the delimiter and 0-4 of the frames after it
            cut = frames[: 1 + self.rng.randrange(5)]
        elif r < 0.8:  # one of the four JSON frames missing
            i = 2 + self.rng.randrange(4)
            cut = frames[:i] + frames[i + 1 :]
        else:  # routing frames but nothing after the delimiter
            cut = [os.urandom(5), DELIMITER]
        return Hostile("frame_count", cut, "drop", msg_id)

    def _no_delimiter(self, channel: str) -> Hostile:
        msg_id, frames = self.valid()
        r = self.rng.random()
        if r < 0.4:
            frames = frames[1:]
        elif r < 0.7:
            frames = [self.rng.choice([b"<IDS|MSG >", b"<ids|msg>", b"IDS|MSG", b"<IDS|MSG>\x00",
                                       b""]), *frames[1:]]
        else:
            count = self.rng.randrange(1, 9)
            frames = [os.urandom(self.rng.randrange(0, 64)) for _ in range(count)]
        return Hostile("no_delimiter", frames, "drop", msg_id)

    def _not_json(self, channel: str) -> Hostile:
        garbage = self.rng.choice([
            b"", b"{", b"}", b"{'msg_id': 'x'}", b"undefined", b'{"a":1}trailing', b'{"a":}',
            b"{\"a\": 1,}", b"NaN", b"\x00\x01\x02", b"<html>", b'{"a" 1}', b"[1, 2",
            os.urandom(self.rng.randrange(1, 200)).replace(b"{", b"(").replace(b"[", b"("),
        ])
        parts = self.parts()
        msg_id = json.loads(parts[0])["msg_id"]
        parts[self.rng.randrange(4)] = garbage
        return Hostile("not_json", self.signed(parts), "drop", msg_id)

    def _not_object(self, channel: str) -> Hostile:
        value = self.rng.choice([b"[]", b"[1, 2, 3]", b'"a string"', b"42", b"-1.5", b"true",
                                 b"null", b'[{"msg_id": "x", "msg_type": "execute_request"}]'])
        parts = self.parts()
        msg_id = json.loads(parts[0])["msg_id"]
        parts[self.rng.randrange(4)] = value
        return Hostile("not_object", self.signed(parts), "drop", msg_id)

    def _bad_header(self, channel: str) -> Hostile:
        h = self.header()
        msg_id = h["msg_id"]
        r = self.rng.randrange(12)
        bad: bytes | None = None
        outcome = "drop"
        if r == 0:
            del h["msg_id"]
        elif r == 1:
            del h["msg_type"]
        elif r == 2:
            h["msg_id"] = self.rng.choice([7, None, ["x"], {"id": "x"}, 1.5, True])
        elif r == 3:
            h["msg_type"] = self.rng.choice([7, None, ["execute_request"], {}, "", False])
        elif r == 4:
            h = {}
        elif r in (5, 6):  # numbers JSON cannot send back (the reply echoes the header)
            bad = json.dumps(h).encode()[:-1] + self.rng.choice(
                [b', "date": NaN}', b', "x": Infinity}', b', "x": -Infinity}', b', "x": 1e999}'])
        elif r == 7:
            h["x"] = json.loads(_nest(self.rng.randrange(33, 900)))
        elif r == 8:  # just too deep for the reply to encode it again, if it were accepted
            deep = _nest(self.rng.randrange(950, 995))
            bad = json.dumps(h).encode()[:-1] + b', "x": ' + deep + b"}"
        else:  # odd types in fields the kernel does not need: answered, as jupyter_client would
            h["msg_type"] = "kernel_info_request"
            field_name = self.rng.choice(["session", "username", "date", "version"])
            h[field_name] = self.rng.choice([5, None, [1], {"a": "b"}, "", "\u2603" * 100])
            outcome = "ok"
        parts = self.parts(h)
        if bad is not None:
            parts[0] = bad
        if channel == "stdin" and outcome == "ok":
            outcome = "ignore"  # a kernel_info_request on stdin is only logged
        return Hostile("bad_header", self.signed(parts), outcome, msg_id)

    def _invalid_utf8(self, channel: str) -> Hostile:
        seq = self.rng.choice([b"\xff", b"\xfe\xff", b"\xc0\x80", b"\xc3\x28", b"\x80",
                               b"\xe2\x82", b"\xf8\x88\x80\x80\x80", b"\xa0\xa1"])
        h = self.header()
        parts = self.parts(h)
        i = self.rng.randrange(4)
        if i == 0:
            parts[0] = json.dumps(h).encode()[:-1] + b', "u": "' + seq + b'"}'
        elif i == 3:
            parts[3] = b'{"code": "print PWNED ' + seq + b'", "silent": false}'
        else:
            parts[i] = b'{"s": "' + seq + b'"}'
        return Hostile("invalid_utf8", self.signed(parts), "drop", h["msg_id"])

    def _deep_nesting(self, channel: str) -> Hostile:
        h = self.header()
        parts = self.parts(h)
        depth = self.rng.choice([2_000, 20_000, 200_000])
        i = self.rng.randrange(4)
        if i == 0:
            parts[0] = json.dumps(h).encode()[:-1] + b', "x": ' + _nest(depth) + b"}"
        else:
            parts[i] = b'{"x": ' + _nest(depth) + b"}"
        return Hostile("deep_nesting", self.signed(parts), "drop", h["msg_id"])

    def _huge(self, channel: str) -> Hostile:
        size = self.rng.randrange(1 << 20, self.huge_max + 1)
        h = self.header()
        r = self.rng.randrange(4)
        if r == 0:  # a huge garbage frame where a signature should be checked
            frames = [DELIMITER, b"0" * 64, os.urandom(size), b"{}", b"{}", b"{}"]
        elif r == 1:  # signed, huge non-JSON content
            parts = self.parts(h)
            parts[3] = b"{" + b"x" * size
            frames = self.signed(parts)
        elif r == 2:  # signed, huge JSON that is not an object
            parts = self.parts(h)
            parts[3] = b'["' + b"y" * size + b'"]'
            frames = self.signed(parts)
        else:  # no delimiter at all, just a lot of bytes
            frames = [b"z" * size]
        return Hostile("huge", frames, "drop", h["msg_id"])

    def _bad_signature(self, channel: str) -> Hostile:
        msg_id, frames = self.valid()
        good = frames[1]
        r = self.rng.randrange(7)
        if r == 0:
            sig = os.urandom(32).hex().encode()
        elif r == 1:  # one hex digit changed
            i = self.rng.randrange(len(good))
            sig = good[:i] + (b"0" if good[i : i + 1] != b"0" else b"1") + good[i + 1 :]
        elif r == 2:
            sig = self.other.signer.sign(frames[2:6])
        elif r == 3:
            sig = hmac.new(self.key, b"".join(frames[2:6]), hashlib.sha512).hexdigest().encode()
        elif r == 4:
            sig = good.upper()
        elif r == 5:  # the signature of another genuine message
            sig = self.valid()[1][1]
        else:
            sig = good + b" "
        return Hostile("bad_signature", [DELIMITER, sig, *frames[2:]], "drop", msg_id)

    def _unsigned(self, channel: str) -> Hostile:
        msg_id, frames = self.valid()
        return Hostile("unsigned", [DELIMITER, b"", *frames[2:]], "drop", msg_id)

    def _replay(self, channel: str) -> Hostile:
        frames = self.rng.choice(self.captured)
        i = frames.index(DELIMITER)
        msg_id = json.loads(frames[i + 2])["msg_id"]
        return Hostile("replay", list(frames), "drop", f"replay:{msg_id}")

    def _unknown_type(self, channel: str) -> Hostile:
        r = self.rng.random()
        if r < 0.5:
            name = "".join(self.rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(
                self.rng.randrange(1, 24))) + "_request"
        elif r < 0.6:
            name = self.rng.choice(["\u00fcber_request", "\u2603" * 50, "x" * 5000 + "_request"])
        else:
            name = self.rng.choice(["execute_reply", "status", "stream", "execute_result",
                                    "iopub_welcome", "input_request", "shutdown_reply",
                                    "comm_close", "display_data", "error", "debug_event",
                                    "kernel_info_reply", "input_reply_", "frobnicate"])
        h = self.header(name)
        frames = self.signed(self.parts(h))
        if channel == "stdin":
            outcome = "ignore"
        else:
            outcome = "reply" if name.endswith("_request") else "ignore"
        return Hostile("unknown_type", frames, outcome, h["msg_id"])

    def _mistyped_content(self, channel: str) -> Hostile:
        msg_type = self.rng.choice(["execute_request", "execute_request", "complete_request",
                                    "inspect_request", "is_complete_request"])
        code = self.rng.choice([7, None, ["print PWNED"], {"code": "print PWNED"}, 1.5, True])
        content = {**self.payload(), "code": code, "cursor_pos": self.rng.choice([3, "3", None])}
        h = self.header(msg_type)
        outcome = "ignore" if channel == "stdin" else "reply"
        return Hostile("mistyped_content", self.signed(self.parts(h, content)), outcome,
                       h["msg_id"])

    def misdirected_input_reply(self) -> Hostile:
        """Signed input_reply answering a request that was never made (stdin only)."""
        h = self.header("input_reply")
        parent = self.header("input_request")
        parts = [json.dumps(h).encode(), json.dumps(parent).encode(), b"{}",
                 json.dumps({"value": "PWNED"}).encode()]
        return Hostile("misdirected_input", self.signed(parts), "silent", h["msg_id"])


def fuzz(total: int = 10_000, seed: int = 5, huge_max: int = 16 << 20,
         signed: bool = True, transport: str = "tcp") -> Result:
    """Send ``total`` hostile messages over shell, control and stdin of a live kernel.

    Checks: no hostile message runs anything (execution_count and every IOPub message are
    accounted for, and no output says PWNED), every message the wire layer must refuse is
    logged as dropped exactly once, the others get exactly the reply the spec asks for,
    the kernel stays up, and genuine requests interleaved with and sent after the hostile
    ones are all answered correctly.
    """
    title = "Live fuzzer" if signed else "Live fuzzer, unsigned kernel (key '')"
    if transport != "tcp":
        title += f" over {transport}"
    result = Result("fuzz" if signed else "fuzz_unsigned", title)
    t0 = time.monotonic()
    rng = random.Random(seed)
    categories = list(Fuzzer.STRUCTURAL) + (list(Fuzzer.SIGNED_ONLY) if signed else [])
    categories += list(Fuzzer.AUTHENTIC)
    weights = {c: 1.0 for c in categories}
    weights["huge"] = 0.04
    weights["deep_nesting"] = 0.3
    channel_weights = {"shell": 0.45, "control": 0.35, "stdin": 0.20}
    with tempfile.TemporaryDirectory(prefix="kk-fuzz-") as tmp, zmq_context() as ctx:
        key = os.urandom(16).hex() if signed else ""
        kernel = KernelProcess(COMMANDS, Path(tmp), key=key, transport=transport)
        client = Client(ctx, kernel)
        try:
            _fuzz_run(result, kernel, client, rng, total, categories, weights, channel_weights,
                      huge_max, signed)
        finally:
            client.close()
            kernel.kill()
    result.seconds = time.monotonic() - t0
    return result


def _fuzz_run(result: Result, kernel: KernelProcess, client: Client, rng: random.Random,
              total: int, categories: list[str], weights: dict[str, float],
              channel_weights: dict[str, float], huge_max: int, signed: bool) -> None:
    client.wait_ready()
    fz = Fuzzer(rng, kernel.key.encode(), huge_max)
    genuine_executes = 0

    # Genuine traffic first, captured for replays.
    def capture(channel: str, msg_type: str, content: dict[str, Any]) -> None:
        msg_id, frames = client.frames(msg_type, content)
        client.sockets[channel].send_multipart(frames)
        fz.captured.append(frames)
        client.reply(msg_id, channel)

    capture("shell", "execute_request", {"code": "print captured", "silent": False})
    genuine_executes += 1
    capture("shell", "kernel_info_request", {})
    capture("control", "kernel_info_request", {})
    capture("shell", "complete_request", {"code": "pr", "cursor_pos": 2})

    msg_id = client.execute("input ?", allow_stdin=True)
    request = client.recv("stdin", 60)
    assert request is not None
    _, input_frames = client.frames("input_reply", {"value": "captured"}, parent=request.header)
    client.sockets["stdin"].send_multipart(input_frames)
    fz.captured.append(input_frames)
    client.reply(msg_id)
    genuine_executes += 1
    captured_ids = [json.loads(f[f.index(DELIMITER) + 2])["msg_id"] for f in fz.captured]

    plan = [
        (rng.choices(list(channel_weights), list(channel_weights.values()))[0],
         rng.choices(categories, [weights[c] for c in categories])[0])
        for _ in range(total)
    ]
    sent: list[tuple[str, Hostile]] = []
    stdin_batch: list[Hostile] = []
    genuine = 0
    chunk = 200

    def flush_stdin() -> None:
        nonlocal genuine, genuine_executes
        if not stdin_batch:
            return
        batch = list(stdin_batch)
        stdin_batch.clear()
        if signed:  # answers to input requests nobody made: must not be taken as the answer
            batch += [fz.misdirected_input_reply() for _ in range(max(1, len(batch) // 20))]
            rng.shuffle(batch)

        def during(request: Message) -> None:
            for h in batch:
                client.sockets["stdin"].send_multipart(h.frames)
                h.frames = []  # sent: only what it was is kept
                sent.append(("stdin", h))

        genuine += input_round(client, f"answer-{genuine}", result, during=during)
        genuine_executes += 1

    for start in range(0, len(plan), chunk):
        for channel, category in plan[start : start + chunk]:
            h = fz.make(category, channel)
            if channel == "stdin":
                stdin_batch.append(h)
                continue
            client.sockets[channel].send_multipart(h.frames)
            h.frames = []
            sent.append((channel, h))
        # Genuine requests behind the hostile ones, on the same sockets: answered correctly?
        genuine_executes += 1
        code = f"genuine-{genuine_executes}"
        reply = run_and_check(client, code, code, result)
        if reply is not None:
            count = reply.content.get("execution_count")
            result.check(count == genuine_executes,
                         f"execution_count {count} after {genuine_executes} genuine executes")
            genuine += 1
        msg_id = client.send("control", "kernel_info_request", {})
        try:
            info = client.reply(msg_id, "control")
            result.check(info.content.get("implementation") == "commands",
                         f"control kernel_info: {info.content}")
            genuine += 1
        except TimeoutError as exc:
            result.check(False, f"control probe: {exc}")
        if len(stdin_batch) >= chunk // 2 or start + chunk >= len(plan):
            flush_stdin()
        if not result.check(kernel.alive(), f"kernel died: {kernel.stderr()[-3000:]}"):
            return

    # After everything: a battery of valid requests, and the execution count.
    genuine += answered_correctly(client, result)
    genuine_executes += 2  # the battery's input round, and count itself
    genuine += 1
    reply = run_and_check(client, "count", str(genuine_executes), result)
    result.check(reply is not None, "count did not answer")
    client.drain("shell")
    client.drain("control")
    result.check(heartbeat_ok(zmq.Context.instance(), kernel), "heartbeat did not answer")
    result.check(kernel.alive(), "kernel is not running at the end")
    _fuzz_verdict(result, kernel, client, sent, genuine, captured_ids)


def _fuzz_verdict(result: Result, kernel: KernelProcess, client: Client,
                  sent: list[tuple[str, Hostile]], genuine: int, captured: list[str]) -> None:
    assert client.iopub is not None
    # The genuine messages that were replayed were answered once and ran once.
    for msg_id in captured:
        again = client.replies.get(msg_id, [])
        result.check(not again, f"replayed {msg_id} was answered again")
        states = [m for m in client.iopub.messages(msg_id) if m.msg_type == "status"]
        result.check(len(states) in (0, 2), f"replayed {msg_id} ran again: {len(states)} statuses")
    by_cat: Counter[str] = Counter()
    by_channel: Counter[str] = Counter()
    expected_drops: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for channel, h in sent:
        by_cat[h.category] += 1
        by_channel[channel] += 1
        outcomes[h.outcome] += 1
        if h.outcome == "drop":
            expected_drops[channel] += 1
        mid = h.msg_id or ""
        replies = client.replies.get(mid, [])
        iopub = client.iopub.messages(mid)
        if h.outcome in ("reply", "ok"):
            status = "ok" if h.outcome == "ok" else "error"
            result.check(len(replies) == 1 and replies[0].content.get("status") == status,
                         f"{h.category} on {channel} ({mid}) expected one {status} reply, got "
                         f"{[r.content for r in replies]}")
        else:
            result.check(not replies, f"{h.category} on {channel} ({mid}) was answered: "
                                      f"{[r.content for r in replies]}")
        if h.outcome in ("drop", "silent") or channel == "stdin":
            result.check(not iopub, f"{h.category} on {channel} ({mid}) caused IOPub "
                                    f"{[m.msg_type for m in iopub]}")
        else:  # accepted: busy and idle around it, and never an execute_input or output
            kinds = [m.msg_type for m in iopub]
            result.check(kinds.count("status") == 2 and "execute_input" not in kinds
                         and "stream" not in kinds,
                         f"{h.category} on {channel} ({mid}) caused IOPub {kinds}")
    # Nothing hostile ever ran: no output anywhere says PWNED.
    with client.iopub.cond:
        every = [m for msgs in client.iopub.by_parent.values() for m in msgs]
    pwned = [m for m in every if "PWNED" in json.dumps(m.content)]
    result.check(not pwned, f"hostile code ran: {[m.content for m in pwned[:3]]}")
    # Every refused message was logged as dropped, once, on its own channel: one by one
    # up to a rate, the rest counted in a summary line when each second is over.
    def drops_logged() -> Counter[str]:
        return logged_drops(kernel.stderr())

    wanted = {c: expected_drops[c] for c in ("shell", "control", "stdin")}
    wait_until(lambda: all(drops_logged()[c] == n for c, n in wanted.items()), 5)
    log = kernel.stderr()
    logged = logged_drops(log)
    for channel in ("shell", "control", "stdin"):
        result.check(logged[channel] == expected_drops[channel],
                     f"{channel}: {expected_drops[channel]} messages should have been dropped, "
                     f"the kernel logged {logged[channel]}")
    for bad in ("Traceback", "internal error", "could not be parsed"):
        result.check(bad not in log, f"kernel stderr has {bad!r}: {log[-2000:]}")
    result.check(client.unparsable == 0 and client.iopub.bad == 0,
                 "the kernel sent messages the client could not authenticate")
    result.figures["hostile messages sent"] = len(sent)
    result.figures["by channel"] = dict(sorted(by_channel.items()))
    result.figures["by kind"] = dict(sorted(by_cat.items(), key=lambda kv: -kv[1]))
    result.figures["refused by the wire layer (logged as dropped)"] = sum(logged.values())
    result.figures["answered with an error reply (authentic, unknown or mistyped)"] = (
        outcomes["reply"])
    result.figures["answered ok (authentic, odd header fields)"] = outcomes["ok"]
    result.figures["accepted and ignored (authentic, not requests)"] = (
        outcomes["ignore"] + outcomes["silent"])
    result.figures["hostile messages that ran anything"] = len(pwned)
    result.figures["genuine requests among and after them, all answered correctly"] = genuine
    result.figures["kernel still up"] = kernel.alive()


# -- 2. load ------------------------------------------------------------------------------------


# The replay guard keeps the signatures of the last REPLAY_MEMORY (65,536) messages by
# design, as jupyter_client does, so the kernel's memory grows until it is full. The dict
# holding them takes its final size at the first resize after that, when insertions and
# deletions have used up its table: about 87,400 messages. From then on memory is flat, and
# the soak measures growth from a warm-up past that point (RSS is shown all along).
SOAK_WARMUP = 100_000


def soak(n: int = 100_000, window: int = 8, warmup: int = SOAK_WARMUP,
         samples: int = 20) -> Result:
    """n executes on the Echo kernel, ``window`` in flight; memory, fds and threads sampled.

    Every reply and every IOPub message is checked: status ok, execution_count in order,
    the echoed text, busy/idle. Growth is measured from after a warm-up.
    """
    result = Result("soak", f"Soak: {n:,} executes")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kk-soak-") as tmp, zmq_context() as ctx:
        kernel = KernelProcess(ECHO, Path(tmp))
        try:
            _soak_run(result, ctx, kernel, n, window, warmup, samples)
        finally:
            kernel.kill()
    result.seconds = time.monotonic() - t0
    return result


@dataclass
class _SoakRequest:
    """One execute in flight in the soak, and what has come back for it."""

    count: int  # the execution_count its reply must carry
    code: str  # what it prints, which its stream must carry
    replied: bool = False
    statuses: int = 0  # busy and idle seen
    stream_ok: bool = False


def _soak_run(result: Result, ctx: zmq.Context[zmq.Socket[bytes]], kernel: KernelProcess,
              n: int, window: int, warmup: int, samples: int) -> None:
    session = Session(kernel.key.encode())
    shell = ctx.socket(zmq.DEALER)
    shell.linger = 0
    shell.connect(kernel.url("shell"))
    iopub = ctx.socket(zmq.SUB)
    iopub.linger = 0
    iopub.rcvhwm = 0
    iopub.setsockopt(zmq.SUBSCRIBE, b"")
    iopub.connect(kernel.url("iopub"))
    poller = zmq.Poller()
    poller.register(shell, zmq.POLLIN)
    poller.register(iopub, zmq.POLLIN)
    pending: dict[str, _SoakRequest] = {}
    problems: Counter[str] = Counter()
    counts = {"replies": 0, "iopub": 0, "done": 0}
    sent = 0
    series: list[tuple[int, int, int, int]] = []

    def send_one() -> None:
        nonlocal sent
        sent += 1
        code = f"soak {sent} " + "x" * (sent % 50)
        header = session.header("execute_request")
        frames = session.serialize(
            "execute_request",
            {"code": code, "silent": False, "store_history": True, "user_expressions": {},
             "allow_stdin": False},
            header=header,
        )
        pending[header["msg_id"]] = _SoakRequest(count=sent, code=code)
        shell.send_multipart(frames)

    def finish(msg_id: str) -> None:
        entry = pending[msg_id]
        if entry.replied and entry.statuses == 2:
            if not entry.stream_ok:
                problems["stream missing or wrong"] += 1
            del pending[msg_id]
            counts["done"] += 1

    def pump(limit: int) -> None:
        while sent < limit or pending:
            while sent < limit and len(pending) < window:
                send_one()
            events = dict(poller.poll(60_000))
            if not events:
                raise TimeoutError(f"nothing from the kernel for 60 s; {len(pending)} pending")
            if shell in events:
                while True:
                    try:
                        frames = shell.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    msg = session.deserialize(frames)
                    counts["replies"] += 1
                    mid = str(msg.parent_header.get("msg_id"))
                    entry = pending.get(mid)
                    if entry is None or entry.replied:
                        problems["reply to an unknown or answered request"] += 1
                        continue
                    entry.replied = True
                    if msg.content.get("status") != "ok":
                        problems["reply not ok"] += 1
                    if msg.content.get("execution_count") != entry.count:
                        problems["execution_count out of order"] += 1
                    finish(mid)
            if iopub in events:
                while True:
                    try:
                        frames = iopub.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    msg = session.deserialize(frames)
                    counts["iopub"] += 1
                    mid = str(msg.parent_header.get("msg_id"))
                    entry = pending.get(mid)
                    if entry is None:
                        if msg.msg_type != "iopub_welcome":
                            problems["IOPub message for an unknown request"] += 1
                        continue
                    if msg.msg_type == "status":
                        entry.statuses += 1
                        if entry.statuses == 2:
                            finish(mid)
                    elif msg.msg_type == "stream":
                        entry.stream_ok = msg.content.get("text") == entry.code

    trace = [(0, kernel.rss())]
    step = max(1, (warmup + n) // samples)
    while sent < warmup:
        pump(min(warmup, sent + step))
        trace.append((sent, kernel.rss()))
    rss0, fds0, threads0 = kernel.resources()
    series.append((0, rss0, fds0, threads0))
    started = time.monotonic()
    done_measured = 0
    while done_measured < n:
        done_measured = min(n, done_measured + step)
        pump(warmup + done_measured)
        rss, fds, threads = kernel.resources()
        series.append((done_measured, rss, fds, threads))
        trace.append((warmup + done_measured, rss))
    elapsed = time.monotonic() - started
    shell.close()
    iopub.close()
    rss1, fds1, threads1 = series[-1][1:]
    growth = 100.0 * (rss1 - rss0) / rss0
    peak = max(s[1] for s in series)
    result.check(growth < 5.0, f"RSS grew {growth:.2f} % ({rss0} -> {rss1} bytes)")
    result.check(fds1 <= fds0, f"open file descriptors grew {fds0} -> {fds1}")
    result.check(threads1 <= threads0, f"threads grew {threads0} -> {threads1}")
    result.check(not problems, f"problems: {dict(problems)}")
    result.check(counts["done"] == warmup + n,
                 f"{counts['done']} of {warmup + n} executes completed")
    result.check(kernel.alive(), "kernel died")
    result.figures[f"executes (after a warm-up of {warmup:,})"] = n
    result.figures["in flight at once"] = window
    result.figures["rate (executes/s)"] = round(n / elapsed)
    result.figures["replies checked"] = counts["replies"]
    result.figures["IOPub messages checked"] = counts["iopub"]
    result.figures["RSS after warm-up / at end / peak (MiB)"] = (
        f"{rss0 / 2**20:.1f} / {rss1 / 2**20:.1f} / {peak / 2**20:.1f}")
    result.figures["RSS growth (%)"] = round(growth, 2)
    result.figures["open fds after warm-up / at end"] = f"{fds0} / {fds1}"
    result.figures["threads after warm-up / at end"] = f"{threads0} / {threads1}"
    result.figures["problems"] = sum(problems.values())
    result.figures["RSS (MiB) after N executes, warm-up included"] = ", ".join(
        f"{k // 1000}k: {v / 2**20:.1f}" for k, v in trace)


def many_clients(clients: int = 8, each: int = 500, window: int = 4) -> Result:
    """``clients`` clients at once, each with its own shell and IOPub sockets, on one kernel.

    Each client must get exactly its own replies, and see on IOPub the busy, execute_input,
    stream and idle of each of its requests; execution counts across all clients must be
    exactly 1..N with no gaps or repeats.
    """
    result = Result("clients", f"{clients} clients at once")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kk-clients-") as tmp, zmq_context() as ctx:
        kernel = KernelProcess(ECHO, Path(tmp))
        try:
            reports: list[dict[str, Any]] = [{} for _ in range(clients)]
            ready = threading.Barrier(clients)
            threads = [
                threading.Thread(target=_one_client,
                                 args=(ctx, kernel, i, each, window, ready, reports[i]))
                for i in range(clients)
            ]
            started = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join(600)
            elapsed = time.monotonic() - started
            counts: list[int] = []
            for i, rep in enumerate(reports):
                result.check(not rep.get("problems"), f"client {i}: {rep.get('problems')}")
                result.check(rep.get("replies") == each,
                             f"client {i} got {rep.get('replies')} of {each} replies")
                counts += rep.get("counts", [])
            total = clients * each
            result.check(sorted(counts) == list(range(1, total + 1)),
                         "execution counts across clients are not exactly 1..N")
            result.check(kernel.alive(), "kernel died")
            result.figures["clients"] = clients
            result.figures["executes per client"] = each
            result.figures["replies, each on its own client"] = sum(
                r.get("replies", 0) for r in reports)
            result.figures["IOPub messages seen (all clients)"] = sum(
                r.get("iopub", 0) for r in reports)
            result.figures["rate (executes/s, all clients)"] = round(total / elapsed)
        finally:
            kernel.kill()
    result.seconds = time.monotonic() - t0
    return result


def _one_client(ctx: zmq.Context[zmq.Socket[bytes]], kernel: KernelProcess, index: int,
                each: int, window: int, ready: threading.Barrier, rep: dict[str, Any]) -> None:
    problems: list[str] = []
    rep["problems"] = problems
    try:
        session = Session(kernel.key.encode())
        shell = ctx.socket(zmq.DEALER)
        shell.linger = 0
        shell.connect(kernel.url("shell"))
        iopub = ctx.socket(zmq.SUB)
        iopub.linger = 0
        iopub.rcvhwm = 0
        iopub.setsockopt(zmq.SUBSCRIBE, b"")
        iopub.connect(kernel.url("iopub"))
        deadline = time.monotonic() + 60
        while not iopub.poll(100):  # the welcome: subscribed
            if time.monotonic() > deadline:
                problems.append("no iopub_welcome")
                return
        ready.wait(60)
        mine: dict[str, str] = {}
        seen: dict[str, list[str]] = defaultdict(list)
        idles = 0
        replies = 0
        iopub_count = 0
        counts: list[int] = []
        sent = 0
        outstanding = 0
        poller = zmq.Poller()
        poller.register(shell, zmq.POLLIN)
        poller.register(iopub, zmq.POLLIN)
        while replies < each or idles < each:
            while sent < each and outstanding < window:
                code = f"client {index} request {sent}"
                header = session.header("execute_request")
                shell.send_multipart(session.serialize(
                    "execute_request", {"code": code, "silent": False, "store_history": True,
                                        "user_expressions": {}, "allow_stdin": False},
                    header=header))
                mine[header["msg_id"]] = code
                sent += 1
                outstanding += 1
            events = dict(poller.poll(60_000))
            if not events:
                problems.append(f"stalled with {outstanding} outstanding")
                return
            if shell in events:
                while True:
                    try:
                        msg = session.deserialize(shell.recv_multipart(zmq.NOBLOCK))
                    except zmq.Again:
                        break
                    parent = str(msg.parent_header.get("msg_id"))
                    if parent not in mine:
                        problems.append(f"got someone else's reply {parent}")
                        continue
                    replies += 1
                    outstanding -= 1
                    if msg.content.get("status") != "ok":
                        problems.append(f"reply {msg.content}")
                    counts.append(int(msg.content.get("execution_count", -1)))
            if iopub in events:
                while True:
                    try:
                        msg = session.deserialize(iopub.recv_multipart(zmq.NOBLOCK))
                    except zmq.Again:
                        break
                    iopub_count += 1
                    parent = str(msg.parent_header.get("msg_id"))
                    if parent not in mine:
                        continue  # another client's output: IOPub is a broadcast
                    if msg.msg_type == "status":
                        state = str(msg.content.get("execution_state"))
                        seen[parent].append(state)
                        idles += state == "idle"
                    elif msg.msg_type == "stream":
                        seen[parent].append("stream")
                        if msg.content.get("text") != mine[parent]:
                            problems.append(f"stream {msg.content} for {mine[parent]!r}")
                    elif msg.msg_type == "execute_input":
                        seen[parent].append("execute_input")
        for msg_id in mine:
            if seen[msg_id] != ["busy", "execute_input", "stream", "idle"]:
                problems.append(f"IOPub for {mine[msg_id]!r}: {seen[msg_id]}")
                break
        rep.update(replies=replies, iopub=iopub_count, counts=counts)
        shell.close()
        iopub.close()
    except Exception as exc:
        problems.append(f"{type(exc).__name__}: {exc}")


def big_messages(size: int = 10 * 1024 * 1024) -> Result:
    """A ``size`` message in (execute code) and ``size`` of output out: Python and bridge."""
    result = Result("big", f"{size / 2**20:g} MiB in and out")
    t0 = time.monotonic()
    block = "0123456789abcdef" * 64 + "\n"
    code = (block * (size // len(block) + 1))[:size]
    with tempfile.TemporaryDirectory(prefix="kk-big-") as tmp, zmq_context() as ctx:
        for label, args in (("Python Echo", ECHO), ("bridge (Python backend)", FAULTY_BRIDGE)):
            kernel = KernelProcess(args, Path(tmp) / label.split()[0])
            client = Client(ctx, kernel, ("shell",))
            try:
                client.wait_ready()
                start = time.monotonic()
                reply = run_and_check(client, code, code, result, timeout=180)
                took = time.monotonic() - start
                result.check(reply is not None, f"{label}: no reply")
                # and the kernel is still fine afterwards
                run_and_check(client, "after", "after", result)
                result.figures[f"{label}: {size:,} bytes in, echoed out, round trip (s)"] = (
                    round(took, 2))
                result.check(kernel.alive(), f"{label}: kernel died")
            finally:
                client.close()
                kernel.kill()
    result.seconds = time.monotonic() - t0
    return result


# -- 3. faults -----------------------------------------------------------------------------------


def vanishing_clients(rounds: int = 20, queued: int = 20) -> Result:
    """Clients that disappear mid-request, mid-input and mid-handshake; raw TCP garbage."""
    result = Result("vanish", "Clients that vanish")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kk-vanish-") as tmp, zmq_context() as ctx:
        kernel = KernelProcess(COMMANDS, Path(tmp))
        survivor = Client(ctx, kernel)
        try:
            survivor.wait_ready()
            executes = 0
            # 1. sends a slow execute and a queue behind it, and is gone while the kernel
            #    runs the first: every reply goes to a peer that no longer exists.
            assert survivor.iopub is not None
            for i in range(rounds):
                own = zmq.Context()
                gone = Client(own, kernel, ("shell", "control"), iopub=False)
                first = gone.execute("sleep 0.1")
                for j in range(queued):
                    gone.execute(f"queued {i} {j}")
                gone.send("control", "kernel_info_request", {})
                result.check(wait_until(functools.partial(has_output, survivor, first), 30),
                             "the vanishing client's execute never started")
                for sock in gone.sockets.values():
                    sock.close(linger=5000)  # what was sent reaches the kernel; then it is gone
                own.term()
                executes += 1 + queued
            # Counts are global: once the kernel has worked through what they left, count
            # says so (another client's requests may be served in between: fair queueing).
            deadline = time.monotonic() + 120
            counted = ""
            while time.monotonic() < deadline:
                msg_id = survivor.execute("count")
                survivor.reply(msg_id)
                executes += 1
                counted = stdout_text(survivor.iopub.wait_idle(msg_id))
                if counted == str(executes):
                    break
                time.sleep(0.1)
            result.check(counted == str(executes),
                         f"count says {counted} after {executes} executes")
            # 2. asked for input, then gone: an interrupt frees the kernel.
            own = zmq.Context()
            gone = Client(own, kernel, ("shell", "stdin"), iopub=False)
            asked = gone.execute("input who?", allow_stdin=True)
            request = gone.recv("stdin", 60)
            result.check(request is not None and request.msg_type == "input_request",
                         "no input_request for the client that then vanished")
            gone.close()
            own.destroy(linger=0)
            os.kill(kernel.proc.pid, signal.SIGINT)
            executes += 1
            assert survivor.iopub is not None
            survivor.iopub.wait_idle(asked)  # its error reply went nowhere; the kernel is free
            run_and_check(survivor, "after input", "after input", result)
            executes += 1
            # 3. raw TCP connections that send garbage, half a greeting, or nothing, then reset.
            garbage = 0
            for channel in CHANNELS:
                port = kernel.info[f"{channel}_port"]
                for k in range(30):
                    s = socket.create_connection(("127.0.0.1", port), timeout=5)
                    payload = [b"", os.urandom(64), b"\xff" + b"\x00" * 8 + b"\x7f",
                               b"GET / HTTP/1.1\r\n\r\n", b"\xff" * 10_000][k % 5]
                    with contextlib.suppress(OSError):
                        s.sendall(payload)
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.close()
                    garbage += 1
            run_and_check(survivor, "after garbage", "after garbage", result)
            result.check(heartbeat_ok(ctx, kernel), "heartbeat silent after raw TCP garbage")
            answered_correctly(survivor, result)
            result.check(kernel.alive(), "kernel died")
            result.figures["clients that vanished with requests queued"] = rounds
            result.figures["requests they left behind"] = rounds * (queued + 2)
            result.figures["client that vanished while asked for input"] = 1
            result.figures["raw TCP connections with garbage, reset (5 ports)"] = garbage
            result.figures["kernel still up and answering"] = kernel.alive()
        finally:
            survivor.close()
            kernel.kill()
    result.seconds = time.monotonic() - t0
    return result


def slow_subscribers(executes: int = 2_000, out_bytes: int = 20_000) -> Result:
    """IOPub subscribers that never read (high-water marks) or none at all: shell never blocks."""
    result = Result("slow_iopub", "Slow and absent IOPub subscribers")
    t0 = time.monotonic()
    code = "x" * out_bytes
    with tempfile.TemporaryDirectory(prefix="kk-slow-") as tmp, zmq_context() as ctx:
        # a. Nobody subscribed at all.
        kernel = KernelProcess(ECHO, Path(tmp) / "absent")
        client = Client(ctx, kernel, ("shell",), iopub=False)
        try:
            client.wait_ready()
            start = time.monotonic()
            first = client.execute("first")
            client.reply(first, timeout=30)
            first_s = time.monotonic() - start
            start = time.monotonic()
            ids = [client.execute(code) for _ in range(executes // 4)]
            for mid in ids:
                client.reply(mid, timeout=60)
            result.figures["no subscriber: first execute answered in (s)"] = round(first_s, 2)
            result.figures["no subscriber: executes answered"] = len(ids) + 1
            result.figures["no subscriber: rate (executes/s)"] = round(
                len(ids) / (time.monotonic() - start))
            result.check(first_s < 5, f"first execute without subscriber took {first_s:.1f} s")
        except TimeoutError as exc:
            result.check(False, f"no subscriber: {exc}")
        finally:
            client.close()
            kernel.kill()
        # b. Subscribers that never read: one zmq SUB and one raw TCP peer that stalls.
        kernel = KernelProcess(ECHO, Path(tmp) / "slow")
        client = Client(ctx, kernel, ("shell",), iopub=True)
        stalled = ctx.socket(zmq.SUB)
        stalled.rcvhwm = 1
        stalled.setsockopt(zmq.RCVBUF, 4096)
        stalled.setsockopt(zmq.SUBSCRIBE, b"")
        stalled.connect(kernel.url("iopub"))
        try:
            client.wait_ready()
            wait_until(lambda: client.iopub is not None and client.iopub.count >= 2, 10)
            start = time.monotonic()
            worst = 0.0
            window: list[tuple[str, float]] = []
            done = 0
            for _ in range(executes):
                window.append((client.execute(code), time.monotonic()))
                if len(window) >= 8:
                    mid, sent_at = window.pop(0)
                    client.reply(mid, timeout=60)
                    worst = max(worst, time.monotonic() - sent_at)
                    done += 1
            for mid, sent_at in window:
                client.reply(mid, timeout=60)
                worst = max(worst, time.monotonic() - sent_at)
                done += 1
            elapsed = time.monotonic() - start
            got = 0
            while stalled.poll(200):
                stalled.recv_multipart()
                got += 1
            published = 4 * executes
            result.check(done == executes, f"{done} of {executes} answered")
            result.check(got < published, "the stalled subscriber got everything (HWM not hit?)")
            result.check(kernel.alive(), "kernel died")
            result.figures["stalled subscriber: executes answered"] = done
            result.figures["stalled subscriber: IOPub published (MiB)"] = round(
                2 * executes * out_bytes / 2**20, 1)
            result.figures["stalled subscriber: messages it could take before the HWM"] = got
            result.figures["stalled subscriber: slowest reply (s)"] = round(worst, 3)
            result.figures["stalled subscriber: rate (executes/s)"] = round(executes / elapsed)
        except TimeoutError as exc:
            result.check(False, f"stalled subscriber: {exc}")
        finally:
            stalled.close(linger=0)
            client.close()
            kernel.kill()
    result.seconds = time.monotonic() - t0
    return result


def sigterm_under_load(rounds: int = 3) -> Result:
    """SIGTERM while requests are queued, output is flowing or input is awaited: exit 0, fast."""
    result = Result("sigterm", "SIGTERM under load")
    t0 = time.monotonic()
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="kk-term-") as tmp, zmq_context() as ctx:
        cases = [("queued executes", COMMANDS), ("waiting for input", COMMANDS),
                 ("bridge, backend busy", FAULTY_BRIDGE)]
        for r in range(rounds):
            for label, args in cases:
                kernel = KernelProcess(args, Path(tmp) / f"{r}-{len(times)}")
                client = Client(ctx, kernel, ("shell", "stdin"))
                try:
                    client.wait_ready()
                    backend: psutil.Process | None = None
                    if label == "queued executes":
                        for i in range(200):
                            client.execute(f"print {'y' * 1000} {i}")
                        time.sleep(0.05)
                    elif label == "waiting for input":
                        client.execute("input ?", allow_stdin=True)
                        result.check(client.recv("stdin", 30) is not None, "no input_request")
                    else:  # the backend is stuck in a loop that never reads its stdin
                        hang = client.execute("hang")
                        result.check(wait_until(functools.partial(started, client, hang), 30),
                                     "hang did not start")
                        backend = kernel.ps.children()[0]
                    start = time.monotonic()
                    kernel.proc.send_signal(signal.SIGTERM)
                    try:
                        code = kernel.proc.wait(20)
                    except subprocess.TimeoutExpired:
                        code = None
                    took = time.monotonic() - start
                    times.append(took)
                    result.check(code == 0, f"{label}: exit code {code}")
                    err = kernel.stderr()
                    result.check("Traceback" not in err, f"{label}: traceback {err[-1500:]}")
                    if backend is not None:
                        result.check(wait_until(functools.partial(_gone, backend), 10),
                                     f"{label}: backend {backend.pid} outlived the kernel")
                finally:
                    client.close()
                    kernel.kill()
    result.figures["SIGTERMs (queued executes / awaiting input / busy bridge)"] = len(times)
    result.figures["clean exits (code 0)"] = len(times) - sum(
        1 for f in result.failures if "exit code" in f)
    result.figures["slowest exit (s)"] = round(max(times), 2) if times else None
    result.seconds = time.monotonic() - t0
    return result


def _gone(proc: psutil.Process) -> bool:
    try:
        return bool(proc.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def interrupt_storm(signals: int = 2_000, executes: int = 300, messages: int = 1_000,
                    seed: int = 7) -> Result:
    """SIGINTs by the thousand (signal mode) and interrupt_requests (message mode) while
    executes run: every request gets exactly one reply, the kernel stays up."""
    result = Result("interrupts", "Interrupt storm")
    t0 = time.monotonic()
    rng = random.Random(seed)
    codes = ["sleep 0.01", "print hello", "loop", "count", "x"]
    with tempfile.TemporaryDirectory(prefix="kk-storm-") as tmp, zmq_context() as ctx:
        kernel = KernelProcess(COMMANDS, Path(tmp) / "signal")
        client = Client(ctx, kernel, ("shell", "control"))
        try:
            client.wait_ready()
            idle_signals = signals // 4
            for _ in range(idle_signals):
                os.kill(kernel.proc.pid, signal.SIGINT)
            run_and_check(client, "idle storm survived", "idle storm survived", result)
            busy_signals = 0
            stop = threading.Event()

            def storm() -> None:
                nonlocal busy_signals
                # At least signals - idle_signals, and on until every request is answered.
                while not stop.is_set() or busy_signals < signals - idle_signals:
                    os.kill(kernel.proc.pid, signal.SIGINT)
                    busy_signals += 1
                    time.sleep(rng.random() * 0.004)

            ids = []
            control_ids = []
            thread = threading.Thread(target=storm)
            thread.start()
            try:
                for i in range(executes):
                    ids.append(client.execute(codes[i % len(codes)], stop_on_error=False))
                    if i % 10 == 0:
                        control_ids.append(client.send("control", "kernel_info_request", {}))
                outcomes = _collect_replies(
                    client, ids, result, "signal",
                    lambda: os.kill(kernel.proc.pid, signal.SIGINT))
            finally:
                stop.set()
                thread.join(120)
            answered = _count_replies(client, control_ids, "control")
            result.check(answered == len(control_ids),
                         f"{answered} of {len(control_ids)} control requests answered in the storm")
            run_and_check(client, "after the storm", "after the storm", result)
            result.check(kernel.alive(), "kernel died in the signal storm")
            result.figures["SIGINTs while idle"] = idle_signals
            result.figures["SIGINTs while executing"] = busy_signals
            result.figures["executes in the storm, each answered exactly once"] = len(ids)
            result.figures["  of which ok / interrupted"] = (
                f"{outcomes['ok']} / {outcomes['KeyboardInterrupt']}")
            result.figures["control requests in the storm, each answered"] = answered
        finally:
            client.close()
            kernel.kill()

        kernel = KernelProcess(COMMANDS, Path(tmp) / "message")
        client = Client(ctx, kernel, ("shell", "control"))
        stormer = Client(ctx, kernel, ("control",), iopub=False)
        try:
            client.wait_ready()
            interrupt_ids: list[str] = []
            stop = threading.Event()

            def message_storm() -> None:  # its own socket: sockets stay on one thread
                while not stop.is_set() or len(interrupt_ids) < messages:
                    interrupt_ids.append(stormer.send("control", "interrupt_request", {}))
                    time.sleep(rng.random() * 0.008)

            ids = []
            thread = threading.Thread(target=message_storm)
            thread.start()
            try:
                for i in range(executes):
                    ids.append(client.execute(codes[i % len(codes)], stop_on_error=False))
                outcomes = _collect_replies(
                    client, ids, result, "message",
                    lambda: client.send("control", "interrupt_request", {}))
            finally:
                stop.set()
                thread.join(120)
            answered = _count_replies(stormer, interrupt_ids, "control", "interrupt_reply")
            result.check(answered == len(interrupt_ids),
                         f"{answered} of {len(interrupt_ids)} interrupt_requests answered")
            run_and_check(client, "after the messages", "after the messages", result)
            result.check(kernel.alive(), "kernel died in the interrupt_request storm")
            result.figures["interrupt_requests sent, each answered exactly once"] = answered
            result.figures["executes among them, each answered exactly once"] = len(ids)
            result.figures["  of which ok / interrupted "] = (
                f"{outcomes['ok']} / {outcomes['KeyboardInterrupt']}")
        finally:
            stormer.close()
            client.close()
            kernel.kill()
    result.seconds = time.monotonic() - t0
    return result


def _count_replies(client: Client, ids: list[str], channel: str,
                   msg_type: str | None = None) -> int:
    """How many of ids got exactly one reply (of msg_type, status ok) on channel."""
    answered = 0
    for mid in ids:
        try:
            reply = client.reply(mid, channel, 30)
        except TimeoutError:
            continue
        answered += reply.content.get("status") == "ok" and (
            msg_type is None or reply.msg_type == msg_type)
    client.drain(channel)
    return answered - sum(1 for mid in ids if client.replies.get(mid))


def _collect_replies(client: Client, ids: list[str], result: Result, label: str,
                     unstick: Callable[[], object], timeout: float = 60) -> Counter[str]:
    """Exactly one reply per id; a loop that outlived the storm gets another interrupt."""
    outcomes: Counter[str] = Counter()
    for mid in ids:
        deadline = time.monotonic() + timeout
        reply: Message | None = None
        while reply is None and time.monotonic() < deadline and client.kernel.alive():
            try:
                reply = client.reply(mid, timeout=1)
            except TimeoutError:
                if client.kernel.alive():
                    unstick()
        if reply is None:
            result.check(False, f"{label}: no reply to {mid} within {timeout} s "
                                f"{'' if client.kernel.alive() else '(the kernel died)'}: "
                                f"{client.kernel.stderr()[-3000:]}")
            break
        status = reply.content.get("status")
        outcomes["ok" if status == "ok" else str(reply.content.get("ename"))] += 1
        if status != "ok":
            result.check(reply.content.get("ename") == "KeyboardInterrupt",
                         f"{label}: unexpected reply {reply.content}")
    client.drain("shell")
    extra = [m for mid in ids for m in client.replies.get(mid, [])]
    result.check(not extra, f"{label}: {len(extra)} requests were answered twice")
    if client.iopub is not None:
        for mid in ids:
            try:
                states = [m.content.get("execution_state") for m in client.iopub.wait_idle(mid, 30)
                          if m.msg_type == "status"]
            except TimeoutError:
                states = []
            if states != ["busy", "idle"]:
                result.check(False, f"{label}: status sequence {states}")
                break
    return outcomes


def parent_death(rounds: int = 2) -> Result:
    """The process that launched the kernel (JPY_PARENT_PID) is killed while the kernel is
    idle, busy in a loop, or (bridge) waiting on a backend stuck in a loop: the kernel exits,
    and no backend outlives it."""
    result = Result("parent", "Parent death")
    t0 = time.monotonic()
    times: list[float] = []
    cases = [("idle", COMMANDS, None), ("busy in a loop", COMMANDS, "loop"),
             ("bridge, backend stuck", FAULTY_BRIDGE, "hang")]
    with tempfile.TemporaryDirectory(prefix="kk-parent-") as tmp, zmq_context() as ctx:
        for r in range(rounds):
            for label, args, code in cases:
                kernel = KernelProcess(args, Path(tmp) / f"{r}-{len(times)}", parent=True)
                client = Client(ctx, kernel, ("shell",))
                try:
                    client.wait_ready()
                    backends = kernel.ps.children()
                    if code is not None:
                        msg_id = client.execute(code)
                        result.check(wait_until(functools.partial(started, client, msg_id), 30),
                                     f"{label}: {code} did not start")
                    start = time.monotonic()
                    kernel.proc.kill()  # the launcher
                    kernel.proc.wait(10)
                    exited = wait_until(functools.partial(_gone, kernel.ps), 20)
                    times.append(time.monotonic() - start)
                    result.check(exited, f"{label}: kernel still running 20 s after its parent "
                                         f"died: {kernel.stderr()[-1000:]}")
                    for b in backends:
                        result.check(wait_until(functools.partial(_gone, b), 5),
                                     f"{label}: backend {b.pid} outlived the kernel")
                finally:
                    client.close()
                    kernel.kill()
    result.figures["parents killed (kernel idle / busy / bridge backend stuck)"] = len(times)
    result.figures["kernels that exited"] = sum(
        1 for _ in times) - sum(1 for f in result.failures if "still running" in f)
    result.figures["orphaned backends"] = sum(1 for f in result.failures if "outlived" in f)
    result.figures["slowest exit (s)"] = round(max(times), 2) if times else None
    result.seconds = time.monotonic() - t0
    return result


def bridge_sigkill(executes: int = 300, min_kills: int = 30, seed: int = 11) -> Result:
    """Kill the bridge backend with SIGKILL at random moments during runs of executes.

    Runs of ``executes`` repeat until at least ``min_kills`` kills have landed, so that
    a fast machine (a short run) still sees as many as a slow one.
    """
    result = Result("bridge_kill", "Bridge backend killed at random")
    t0 = time.monotonic()
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="kk-kill-") as tmp, zmq_context() as ctx:
        kernel = KernelProcess(FAULTY_BRIDGE, Path(tmp))
        client = Client(ctx, kernel, ("shell",))
        kills = 0
        stop = threading.Event()
        pids: set[int] = set()

        def killer() -> None:
            nonlocal kills
            while not stop.is_set():
                time.sleep(rng.random() * 0.05)
                with contextlib.suppress(psutil.Error):
                    for child in kernel.ps.children():
                        pids.add(child.pid)
                        child.send_signal(signal.SIGKILL)
                        kills += 1

        try:
            client.wait_ready()
            thread = threading.Thread(target=killer)
            thread.start()
            ids: dict[str, str] = {}
            outcomes: Counter[str] = Counter()
            try:
                while len(ids) == 0 or (kills < min_kills and time.monotonic() - t0 < 300):
                    batch: dict[str, str] = {}
                    for i in range(len(ids), len(ids) + executes):
                        code = f"echo {i}" if i % 7 else f"big {rng.randrange(1, 200_000)}"
                        batch[client.execute(code, stop_on_error=False)] = code
                    ids.update(batch)
                    for mid, code in batch.items():
                        try:
                            reply = client.reply(mid, timeout=60)
                        except TimeoutError as exc:
                            result.check(False, str(exc))
                            continue
                        status = reply.content.get("status")
                        outcomes["ok" if status == "ok" else str(reply.content.get("ename"))] += 1
                        if status == "ok" and not code.startswith("big"):
                            msgs = client.iopub.wait_idle(mid) if client.iopub else []
                            out = stdout_text(msgs)
                            result.check(out == code, f"{code!r} printed {out[:80]!r}")
            finally:
                stop.set()
                thread.join()
            client.drain("shell")
            extra = sum(len(client.replies.get(mid, [])) for mid in ids)
            result.check(extra == 0, f"{extra} executes answered twice")
            result.check(set(outcomes) <= {"ok", "BackendDied", "BackendStartError"},
                         f"unexpected outcomes {dict(outcomes)}")
            reply = run_and_check(client, "after the kills", "after the kills", result)
            result.check(reply is not None, "no reply after the kills")
            result.check(kernel.alive(), "kernel died")
            orphans = [p for p in pids if psutil.pid_exists(p) and not _gone(psutil.Process(p))]
            result.check(not orphans, f"backends left running: {orphans}")
            result.check(kills >= min_kills, f"only {kills} kills landed in 300 s")
            result.figures["executes"] = len(ids)
            result.figures["SIGKILLs sent to the backend"] = kills
            result.figures["backend processes started"] = len(pids)
            result.figures["replies: exactly one per execute"] = sum(outcomes.values())
            result.figures["  ok / BackendDied / BackendStartError"] = (
                f"{outcomes['ok']} / {outcomes['BackendDied']} / {outcomes['BackendStartError']}")
        finally:
            client.close()
            kernel.kill()
    result.seconds = time.monotonic() - t0
    return result


# -- running them -------------------------------------------------------------------------------


SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "fuzz": {"total": 100_000},
        "fuzz_unsigned": {"total": 20_000, "signed": False},
        "soak": {"n": 100_000},
        "clients": {"clients": 8, "each": 2_500},
        "big": {},
        "vanish": {"rounds": 50},
        "slow_iopub": {"executes": 5_000},
        "sigterm": {"rounds": 3},
        "parent": {"rounds": 3},
        "interrupts": {"signals": 10_000, "executes": 1_000, "messages": 3_000},
        "bridge_kill": {"executes": 1_000, "min_kills": 300},
    },
    "quick": {
        "fuzz": {"total": 10_000, "huge_max": 8 << 20},
        "fuzz_unsigned": {"total": 2_000, "signed": False, "huge_max": 4 << 20},
        "soak": {"n": 10_000},
        "clients": {"clients": 8, "each": 250},
        "big": {},
        "vanish": {"rounds": 10},
        "slow_iopub": {"executes": 1_000},
        "sigterm": {"rounds": 1},
        "parent": {"rounds": 1},
        "interrupts": {"signals": 1_000, "executes": 150, "messages": 150},
        "bridge_kill": {"executes": 150, "min_kills": 30},
    },
}

SCENARIOS: dict[str, Callable[..., Result]] = {
    "fuzz": fuzz,
    "fuzz_unsigned": fuzz,
    "soak": soak,
    "clients": many_clients,
    "big": big_messages,
    "vanish": vanishing_clients,
    "slow_iopub": slow_subscribers,
    "sigterm": sigterm_under_load,
    "parent": parent_death,
    "interrupts": interrupt_storm,
    "bridge_kill": bridge_sigkill,
}


def run(names: list[str], size: str) -> list[Result]:
    results = []
    for name in names:
        print(f"-- {name} ...", flush=True)
        try:
            result = SCENARIOS[name](**SIZES[size][name])
        except Exception as exc:  # a harness failure is a failure, not a crash of the run
            result = Result(name, name, failures=[f"{type(exc).__name__}: {exc}"])
        print(result.text(), flush=True)
        results.append(result)
    return results


def markdown(results: list[Result], command: str) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Latest run: {when}, `{command}`, on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"pyzmq {zmq.__version__} (libzmq {zmq.zmq_version()}).",
        "",
    ]
    for r in results:
        verdict = "held" if not r.failures else "**FAILED**"
        lines += [f"**{r.title}** — {verdict} ({r.seconds:.0f} s)", ""]
        lines += ["| | |", "|---|---|"]
        for label, value in r.figures.items():
            lines.append(f"| {label.strip()} | {_fmt(value)} |")
        for f in r.failures:
            lines.append(f"| failure | {f} |")
        lines.append("")
    return "\n".join(lines)


def write_docs(results: list[Result], command: str) -> None:
    text = DOCS.read_text()
    start, end = text.index(START) + len(START), text.index(END)
    DOCS.write_text(text[:start] + "\n" + markdown(results, command) + "\n" + text[end:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", choices=[[], *SCENARIOS], metavar="SCENARIO",
                        help=f"some of: {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="the test suite's sizes")
    parser.add_argument("--write-docs", action="store_true",
                        help=f"write the figures into {DOCS.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    names = args.scenarios or list(SCENARIOS)
    results = run(names, "quick" if args.quick else "full")
    if args.write_docs:
        shown = " ".join(["python -m tests.reliability", *(["--quick"] if args.quick else []),
                          *args.scenarios])
        write_docs(results, shown)
    failed = [r.name for r in results if r.failures]
    print("all held" if not failed else f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
