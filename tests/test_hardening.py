"""What the kernel does with traffic before authentication, piece by piece.

The attacks of tests/attacks_zmq.py run whole kernels (tests/test_attacks.py); these
test the pieces behind them: the drop log's rate limit, IOPub's welcome coalescing
and harmless topics, the connection cap, the ipc path check, the kernel's refusal of
its own messages, signals that end the kernel cleanly, and IOPub's byte bound.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import raw
import zmq

from kernelkit.droplog import DropLog
from kernelkit.iopub import IOPub, answerable
from kernelkit.server import _refuse_ipc_in_use
from kernelkit.wire import DELIMITER, ProtocolError, Session
from reliability.common import ECHO, dropped_in_all

# -- the drop log ------------------------------------------------------------------------


def test_drop_log_logs_a_burst_then_counts() -> None:
    lines: list[str] = []
    now = [0.0]
    log = DropLog(lines.append, burst=3, window=1.0, clock=lambda: now[0])
    for _ in range(1000):
        log.dropped("shell", "bad")
    log.dropped("control", "bad")
    assert len(lines) == 4  # three for shell, one for control
    now[0] = 1.5
    log.flush()
    assert lines[-1].startswith("dropped 997 more malformed messages on shell")
    assert log.totals() == {"shell": 1000, "control": 1}  # counted at each drop
    log.flush(force=True)
    assert len(lines) == 5  # nothing more to sum up
    log.log_totals()  # as the kernel closes: the one line the fuzzer reads
    assert dropped_in_all("\n".join(f"[W] {ln}" for ln in lines)) == {
        "shell": 1000, "control": 1}


def test_drop_log_sums_up_when_the_next_window_starts() -> None:
    lines: list[str] = []
    now = [0.0]
    log = DropLog(lines.append, burst=1, window=1.0, clock=lambda: now[0])
    log.dropped("stdin", "a")
    log.dropped("stdin", "b")
    now[0] = 2.0
    log.dropped("stdin", "c")
    assert lines == ["dropped a malformed message on stdin: a",
                     "dropped 1 more malformed messages on stdin (logged 1 per 1 s)",
                     "dropped a malformed message on stdin: c"]


# -- IOPub welcomes --------------------------------------------------------------------------


def test_harmless_topics() -> None:
    assert answerable(b"")
    assert answerable(b"status")
    assert not answerable(DELIMITER)
    assert not answerable(b"x" * 257)
    assert not answerable(b"\xff\xfe")


@contextlib.contextmanager
def _iopub() -> Iterator[tuple[zmq.Context[zmq.Socket[bytes]], IOPub, str]]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    xpub = ctx.socket(zmq.XPUB)
    xpub.setsockopt(zmq.XPUB_VERBOSE, 1)
    port = xpub.bind_to_random_port("tcp://127.0.0.1")
    try:
        yield ctx, IOPub(xpub, Session(b"key")), f"tcp://127.0.0.1:{port}"
    finally:
        ctx.destroy(linger=0)


def _welcomes(sock: zmq.Socket[bytes], quiet_ms: int = 300) -> list[list[bytes]]:
    got = []
    while sock.poll(quiet_ms):
        got.append(sock.recv_multipart())
    return got


def test_a_flood_of_subscriptions_gets_few_welcomes() -> None:
    with _iopub() as (ctx, iopub, url):
        listener = ctx.socket(zmq.SUB)
        listener.setsockopt(zmq.SUBSCRIBE, b"")
        listener.connect(url)
        assert raw.wait_until(lambda: iopub.welcome() or iopub.subscribed.is_set(), 5)
        assert len(_welcomes(listener)) == 1  # its own subscription, answered at once
        flood = ctx.socket(zmq.XSUB)
        flood.sndhwm = 0
        flood.connect(url)
        for _ in range(20_000):
            flood.send(b"\x01")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            iopub.welcome()
            time.sleep(0.01)
        welcomes = _welcomes(listener)
        assert iopub.subscriptions >= 20_000
        # One per interval at most: 3 s of flood are 30 intervals.
        assert 1 <= len(welcomes) <= 35


def test_welcomes_on_odd_topics_are_not_sent() -> None:
    with _iopub() as (ctx, iopub, url):
        listener = ctx.socket(zmq.SUB)
        listener.setsockopt(zmq.SUBSCRIBE, b"")
        listener.connect(url)
        assert raw.wait_until(lambda: iopub.welcome() or iopub.subscribed.is_set(), 5)
        _welcomes(listener)
        odd = ctx.socket(zmq.XSUB)
        odd.connect(url)
        odd.send(b"\x01" + DELIMITER)
        odd.send(b"\x01" + b"y" * 1000)
        odd.send(b"\x01status")
        for _ in range(50):
            iopub.welcome()
            time.sleep(0.01)
        topics = [frames[0] for frames in _welcomes(listener)]
        assert topics == [b"status"]


# -- the wire layer refuses the kernel's own messages ------------------------------------------


def test_a_session_refuses_messages_it_sent() -> None:
    kernel = Session(b"key")
    frames = kernel.serialize("status", {"execution_state": "busy"}, identities=[b"status"])
    with pytest.raises(ProtocolError, match="sent itself"):
        kernel.deserialize(frames)
    assert Session(b"key").deserialize(frames).msg_type == "status"  # anyone else reads it


# -- ipc paths ------------------------------------------------------------------------------


def test_ipc_paths_in_use_are_refused(tmp_path: Path) -> None:
    live = str(tmp_path / "live")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(live)
    server.listen()
    stale = str(tmp_path / "stale")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(stale)
    dead.close()  # the file stays, nobody listens
    regular = tmp_path / "file"
    regular.write_text("data")
    try:
        with pytest.raises(RuntimeError, match="listening"):
            _refuse_ipc_in_use(live)
        _refuse_ipc_in_use(stale)
        _refuse_ipc_in_use(str(tmp_path / "absent"))
        with pytest.raises(RuntimeError, match="other than a socket"):
            _refuse_ipc_in_use(str(regular))
    finally:
        server.close()


def test_ipc_socket_files_are_private_even_under_umask_0(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        kernel = raw.KernelProcess(ECHO, tmp_path, transport="ipc")
    finally:
        os.umask(old)
    with kernel:
        paths = [f"{kernel.info['ip']}-{kernel.info[c + '_port']}" for c in raw.CHANNELS]
        modes = {oct(os.stat(p).st_mode & 0o777) for p in paths}
        assert modes == {"0o600"}


# -- the connection cap ---------------------------------------------------------------------------


def test_connections_beyond_the_cap_are_cut(tmp_path: Path) -> None:
    kernel = raw.KernelProcess(ECHO, tmp_path,
                                       env={"KERNELKIT_MAX_CONNECTIONS": "4"})
    with kernel, raw.zmq_context() as ctx:
        client = raw.Client(ctx, kernel)  # one connection per channel
        client.wait_ready()
        extra = []
        for _ in range(10):
            s = ctx.socket(zmq.DEALER)
            s.linger = 0
            s.reconnect_ivl = 5000  # do not come back at once
            s.connect(kernel.url("shell"))
            extra.append(s)
        assert raw.wait_until(lambda: "cut a connection to shell" in kernel.stderr(), 10)
        # The client connected first is still served; so is a new one on another channel.
        msg_id = client.execute("still served")
        assert client.reply(msg_id, timeout=10).content["status"] == "ok"
        assert raw.heartbeat_ok(ctx, kernel, 10)
        shell_fds = [c for c in kernel.ps.net_connections("tcp")
                     if c.laddr.port == kernel.info["shell_port"] and c.status == "ESTABLISHED"]
        assert len(shell_fds) <= 4
        for s in extra:
            s.close()
        client.close()


# -- signals ------------------------------------------------------------------------------------


def _signalled(tmp_path: Path, send: Callable[[subprocess.Popen[bytes]], None]) -> None:
    """Start a kernel that writes its own connection file, ``send`` it signals once it
    serves, and check it exits 0, without a traceback, its connection file removed."""
    runtime = tmp_path / "runtime"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kernelkit", "run", "echo"],
        env={**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)},
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        assert raw.wait_until(lambda: any(runtime.glob("kernel-*.json")), 30)
        info = json.loads(next(runtime.glob("kernel-*.json")).read_text())
        assert raw.serving(info, 30)  # past start-up, serving
        send(proc)
        assert proc.wait(15) == 0
        assert proc.stderr is not None
        err = proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in err
    assert not list(runtime.glob("kernel-*.json"))


@pytest.mark.parametrize("signame", ["SIGHUP", "SIGUSR1", "SIGTERM"])
def test_ending_signals_clean_up(tmp_path: Path, signame: str) -> None:
    _signalled(tmp_path, lambda proc: proc.send_signal(getattr(signal, signame)))


# -- IOPub's byte bound -------------------------------------------------------------------------


def test_a_stalled_subscriber_is_cut_and_memory_stays_bounded(tmp_path: Path) -> None:
    bound = 16 << 20
    kernel = raw.KernelProcess(
        ["run", "kk_testkernels:PythonKernel", "-f", "{cf}"], tmp_path,
        env={"KERNELKIT_IOPUB_MAX_BYTES": str(bound)})
    with kernel, raw.zmq_context() as ctx:
        client = raw.Client(ctx, kernel)
        stalled = ctx.socket(zmq.SUB)
        stalled.setsockopt(zmq.RCVBUF, 4096)
        stalled.rcvhwm = 1
        stalled.reconnect_ivl = 60_000
        stalled.setsockopt(zmq.SUBSCRIBE, b"")
        stalled.connect(kernel.url("iopub"))
        client.wait_ready()
        # The kernel has taken the stalled subscriber once it has welcomed it (JEP 65).
        assert stalled.poll(30_000), "no iopub_welcome for the stalled subscriber"
        base = kernel.rss()
        size = 2 << 20
        ids = []
        for _ in range(30):  # 60 MiB: four times the bound
            msg_id = client.execute(f"print('z' * {size})")
            assert client.reply(msg_id, timeout=60).content["status"] == "ok"
            ids.append(msg_id)
        # The reading client got every output whole.
        for msg_id in ids:
            text = raw.stdout_text(client.iopub.wait_idle(msg_id, 30))  # type: ignore[union-attr]
            assert text == "z" * size + "\n"
        assert "took no output" in kernel.stderr()
        assert kernel.rss() - base < 3 * bound + (32 << 20)
        stalled.close(0)
        client.close()


def test_more_ending_signals_during_the_clean_up_do_not_cut_it_short(tmp_path: Path) -> None:
    """Regression: a SIGTERM landing while the first one's clean-up ran (the forced exit
    after a slow shutdown sends one) raised inside it: exit 1 with a traceback."""

    def storm(proc: subprocess.Popen[bytes]) -> None:
        for _ in range(40):  # across the whole clean-up
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            time.sleep(0.005)

    _signalled(tmp_path, storm)


# -- reconnecting with the same routing identity ---------------------------------------------------


@pytest.mark.parametrize("channel", ["shell", "control"])
def test_a_client_reconnecting_at_once_with_its_identity_is_answered(
        tmp_path: Path, channel: str) -> None:
    """Close and reconnect at once with the same identity, as jupyter server does with the
    browser's session id when it replaces a stale websocket: libzmq may still hold the old
    connection. Without ROUTER_HANDOVER the new one was set aside and never answered
    (8 to 46 of 200, measured); every one must be answered."""
    kernel = raw.KernelProcess(ECHO, tmp_path)
    session = Session(kernel.key.encode())
    identity = os.urandom(16).hex().encode()
    unanswered = 0
    with kernel, raw.zmq_context() as ctx:
        for _ in range(100):
            s = ctx.socket(zmq.DEALER)
            s.linger = 0
            s.identity = identity
            s.connect(kernel.url(channel))
            s.send_multipart(session.serialize("kernel_info_request", {}))
            if s.poll(5000):  # not a timing test: an unanswered request waits forever
                s.recv_multipart()
            else:
                unanswered += 1
            s.close()
    assert unanswered == 0, f"{unanswered} of 100 reconnects were not answered"
