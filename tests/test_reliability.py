"""Reliability (issue 5): hostile input, load, faults and transport security.

The live scenarios are in the ``tests/reliability/`` package, which ``python -m tests.reliability``
also runs at full size and which writes the figures into docs/reliability.md; here they
run at the ``--quick`` sizes. Each prints what it tried and what held (``pytest -s``).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import raw
import zmq
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jupyter_client import BlockingKernelClient
from jupyter_client.manager import KernelManager
from jupyter_client.session import Session as JCSession

import reliability
from conftest import stdout_of
from kernelkit.bridge.jsonrpc import Codec
from kernelkit.connection import ConnectionFileError, ConnectionInfo
from kernelkit.kernelspec import make_spec
from kernelkit.wire import DELIMITER, REPLAY_MEMORY, Message, ProtocolError, Session
from reliability.common import COMMANDS, ECHO

KEY = b"5e3b2c1a-reliability-key"
QUICK = reliability.SIZES["quick"]


def run_scenario(name: str) -> reliability.Result:
    result = reliability.SCENARIOS[name](**QUICK[name])
    print(result.text())
    assert not result.failures, "\n".join(result.failures)
    return result


# -- 1. fuzzing: the wire layer, property-based -------------------------------------------

json_leaf = (st.none() | st.booleans() | st.integers() | st.text(max_size=20)
             | st.floats(allow_nan=False, allow_infinity=False))
json_values = st.recursive(
    json_leaf,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
header_values = st.one_of(st.text(max_size=12), json_values)


@st.composite
def headers(draw: st.DrawFn) -> bytes:
    """Header frames: plausible, broken in one field, or not JSON at all."""
    kind = draw(st.sampled_from(["plausible", "field", "raw", "deep", "constant"]))
    header: dict[str, Any] = {"msg_id": draw(st.text(max_size=10)),
                              "msg_type": draw(st.sampled_from(["execute_request", "x", ""])),
                              "session": "s", "username": "u", "date": "d", "version": "5.5"}
    if kind == "field":
        name = draw(st.sampled_from(sorted(header)))
        if draw(st.booleans()):
            del header[name]
        else:
            header[name] = draw(header_values)
    elif kind == "raw":
        return draw(st.binary(max_size=80))
    elif kind == "deep":
        depth = draw(st.sampled_from([31, 32, 33, 500, 980, 990, 1000, 5000, 100_000]))
        return json.dumps(header).encode()[:-1] + b', "x": ' + b"[" * depth + b"]" * depth + b"}"
    elif kind == "constant":
        const = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999"]))
        return json.dumps(header).encode()[:-1] + b', "x": ' + const + b"}"
    return json.dumps(header).encode()


dict_frames = st.one_of(
    st.builds(lambda v: json.dumps(v).encode(), json_values),
    st.binary(max_size=60),
    st.sampled_from([b"{}", b"[]", b"\xff\xfe{}", b'{"a": "\xc3\x28"}', b"[" * 50_000]),
)


def _sign(key: bytes, parts: list[bytes]) -> bytes:
    return hmac.new(key, b"".join(parts), hashlib.sha256).hexdigest().encode() if key else b""


def _deep_call(depth: int, fn: Any) -> Any:
    """Call fn with ``depth`` more frames on the stack (replies are encoded deep down)."""
    return fn() if depth == 0 else _deep_call(depth - 1, fn)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from([KEY, b""]), header=headers(), rest=st.lists(dict_frames,
       min_size=3, max_size=3), buffers=st.lists(st.binary(max_size=8), max_size=2))
def test_authentic_frames_parse_or_raise_protocol_error(
    key: bytes, header: bytes, rest: list[bytes], buffers: list[bytes]
) -> None:
    """Whatever an authentic peer sends: a Message or ProtocolError, and never anything else.

    An accepted header can always be sent back as a parent_header, even deep in the stack.
    """
    parts = [header, *rest]
    try:
        msg = Session(key).deserialize([b"id", DELIMITER, _sign(key, parts), *parts, *buffers])
    except ProtocolError:
        return
    assert isinstance(msg, Message)
    assert isinstance(msg.msg_type, str) and msg.msg_type
    assert isinstance(msg.msg_id, str)
    assert msg.buffers == buffers and msg.identities == [b"id"]
    frames = _deep_call(60, lambda: Session(key).serialize("status", {}, parent=msg.header))
    assert frames[frames.index(DELIMITER) + 3] == json.dumps(
        msg.header, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from([KEY, b""]), frames=st.lists(
    st.one_of(st.binary(max_size=40), st.just(DELIMITER), st.just(b"{}")), max_size=10))
def test_any_frames_parse_or_raise_protocol_error(key: bytes, frames: list[bytes]) -> None:
    with contextlib.suppress(ProtocolError):
        Session(key).deserialize(frames)


@settings(max_examples=300, deadline=None)
@given(content=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
       target=st.integers(1, 5), position=st.integers(0, 10_000), byte=st.integers(0, 255),
       how=st.sampled_from(["change", "truncate", "append", "empty"]))
def test_any_change_to_a_signed_message_is_refused(
    content: dict[str, Any], target: int, position: int, byte: int, how: str
) -> None:
    """Signature and the four signed frames: any change at all means ProtocolError."""
    frames = Session(KEY).serialize("execute_request", content, identities=[b"peer"])
    i = frames.index(DELIMITER) + target
    original = frames[i]
    if how == "change" and original:
        p = position % len(original)
        changed = original[:p] + bytes([byte]) + original[p + 1 :]
    elif how == "truncate":
        changed = original[: position % max(1, len(original))]
    elif how == "append":
        changed = original + bytes([byte])
    else:
        changed = b""
    assume(changed != original)
    frames[i] = changed
    with pytest.raises(ProtocolError):
        Session(KEY).deserialize(frames)


@settings(max_examples=100, deadline=None)
@given(contents=st.lists(st.dictionaries(st.text(max_size=5), json_values, max_size=3),
                         min_size=1, max_size=20), pick=st.integers(0, 19))
def test_every_accepted_message_is_refused_when_replayed(
    contents: list[dict[str, Any]], pick: int
) -> None:
    client, kernel = Session(KEY), Session(KEY)
    sent = [client.serialize("execute_request", c) for c in contents]
    for frames in sent:
        kernel.deserialize(frames)
    with pytest.raises(ProtocolError, match="replayed"):
        kernel.deserialize(sent[pick % len(sent)])


def test_replay_guard_memory_is_bounded() -> None:
    session = Session(KEY)
    first = Session(KEY).serialize("x", {})  # a client's: a session refuses its own
    session.deserialize(first)
    for i in range(REPLAY_MEMORY):
        session.replay_guard.check(b"%d" % i)
    assert len(session.replay_guard._seen) == REPLAY_MEMORY
    session.deserialize(first)  # forgotten only after REPLAY_MEMORY newer messages


@settings(max_examples=300, deadline=None)
@given(line=st.one_of(
    st.binary(max_size=200),
    st.builds(lambda v: json.dumps({"jsonrpc": "2.0", **v}).encode() if isinstance(v, dict)
              else json.dumps(v).encode(), json_values),
    st.sampled_from([b'{"jsonrpc": "2.0", "id": 1, "result": ' + b"[" * 100_000,
                     b'{"jsonrpc": "2.0", "method": "stream", "params": {"x": NaN}}',
                     b"{" * 5000]),
))
def test_bridge_codec_never_raises(line: bytes) -> None:
    Codec.parse(line)


@settings(max_examples=300, deadline=None)
@given(data=st.dictionaries(
    st.sampled_from(["transport", "ip", "shell_port", "iopub_port", "stdin_port",
                     "control_port", "hb_port", "key", "signature_scheme", "curve_publickey",
                     "curve_secretkey", "other"]),
    st.one_of(json_values, st.integers(-5, 70_000), st.sampled_from(["tcp", "ipc"]),
              st.just(float("inf"))), max_size=8))
def test_connection_files_are_valid_or_refused_clearly(data: dict[str, Any]) -> None:
    try:
        info = ConnectionInfo.from_dict(data)
    except ConnectionFileError:
        return
    assert all(0 <= p <= 65535 for p in info.ports())
    assert isinstance(info.key, str) and isinstance(info.signature_scheme, str)


# -- 1. fuzzing: a live kernel --------------------------------------------------------------


@pytest.mark.timeout(600)
def test_live_fuzzer() -> None:
    """10,000 hostile messages over shell, control and stdin: nothing runs, all is answered."""
    result = run_scenario("fuzz")
    assert result.figures["hostile messages sent"] >= 10_000
    assert result.figures["hostile messages that ran anything"] == 0


@pytest.mark.timeout(300)
def test_live_fuzzer_against_an_unsigned_kernel() -> None:
    """With no key anyone may send: malformed frames still never crash or hang the kernel."""
    run_scenario("fuzz_unsigned")


@pytest.mark.timeout(300)
def test_live_fuzzer_over_ipc() -> None:
    result = reliability.fuzz(total=1_000, huge_max=2 << 20, transport="ipc")
    print(result.text())
    assert not result.failures, "\n".join(result.failures)


# -- 2. load -----------------------------------------------------------------------------------


@pytest.mark.timeout(600)
def test_soak() -> None:
    """Executes past the replay guard's fill, then more: memory, fds and threads stay flat."""
    run_scenario("soak")


@pytest.mark.timeout(300)
def test_eight_clients_at_once() -> None:
    run_scenario("clients")


@pytest.mark.timeout(300)
def test_ten_megabytes_in_and_out() -> None:
    run_scenario("big")


# -- 3. faults ---------------------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_clients_that_vanish() -> None:
    run_scenario("vanish")


@pytest.mark.timeout(300)
def test_slow_and_absent_iopub_subscribers_never_block_the_shell() -> None:
    run_scenario("slow_iopub")


@pytest.mark.timeout(300)
def test_sigterm_under_load_exits_cleanly() -> None:
    run_scenario("sigterm")


@pytest.mark.timeout(300)
def test_parent_death_leaves_nothing_running() -> None:
    run_scenario("parent")


@pytest.mark.timeout(300)
def test_interrupt_storm() -> None:
    run_scenario("interrupts")


@pytest.mark.timeout(120)
def test_signals_at_any_point_leave_the_interrupt_state_consistent() -> None:
    """SIGINTs at random moments around a hook: outside it the kernel is always idle again.

    An interrupt that lands while the block is being left must not skip the restore of
    the state (then later SIGINTs would raise between requests and could cost a reply).
    """
    import random
    import signal

    from kernelkit.interrupts import IDLE
    from kernelkit.server import Server

    server = Server(ConnectionInfo(key="k"), Session(b"k"))
    previous = signal.signal(signal.SIGINT, server._on_sigint)
    main = threading.get_ident()
    stop = threading.Event()

    def storm() -> None:
        rng = random.Random(7)
        while not stop.is_set():
            signal.pthread_kill(main, signal.SIGINT)
            time.sleep(rng.uniform(0, 0.0003))

    sender = threading.Thread(target=storm, daemon=True)
    interrupted = left_armed = rounds = 0
    sender.start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            rounds += 1
            try:
                with server.interruptible():
                    sum(range(50))
            except KeyboardInterrupt:
                interrupted += 1
                # Checked here, while the exception lives: the dispatcher sends the error
                # reply at this point, and another SIGINT must not cut that short.
                armed = server.main_gate.state is not IDLE
            else:
                armed = server.main_gate.state is not IDLE
            if armed:
                left_armed += 1
                server.main_gate.state = IDLE
    finally:
        stop.set()
        sender.join()
        signal.signal(signal.SIGINT, previous)
        # Never run(): close what its threads would have closed, then the rest.
        server.control.close()
        server._wake_control_rx.close()
        server._close(term=True)
        server.hb.close()
        server._hb_ctx.term()
    assert interrupted > 100, (interrupted, rounds)
    assert left_armed == 0, f"{left_armed} of {rounds} blocks left the kernel armed"


@pytest.mark.timeout(300)
def test_bridge_backend_killed_at_random_points() -> None:
    run_scenario("bridge_kill")


# -- 4. security: files, binding ---------------------------------------------------------------


def test_connection_files_are_written_0600(tmp_path: Path) -> None:
    path = tmp_path / "kernel.json"
    path.write_text("{}")
    path.chmod(0o644)  # an existing file keeps no wider mode
    old = os.umask(0)
    try:
        ConnectionInfo(key="k").write(path)
        ConnectionInfo(key="k").write(tmp_path / "new.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o600
    # A kernel that writes back the ports it chose (given as 0) keeps the file 0600.
    with raw.KernelProcess(ECHO, tmp_path / "k") as kernel:
        assert stat.S_IMODE(kernel.cf.stat().st_mode) == 0o600
        assert json.loads(kernel.cf.read_text())["key"] == kernel.key


def test_loopback_by_default(tmp_path: Path) -> None:
    assert ConnectionInfo().ip == "127.0.0.1"
    assert "curve_secretkey" not in ConnectionInfo().to_dict()
    with raw.KernelProcess(ECHO, tmp_path) as kernel:
        listening = [c.laddr for c in kernel.ps.net_connections(kind="inet")
                     if c.status == "LISTEN"]
        assert {a.ip for a in listening} == {"127.0.0.1"}
        assert len(listening) == 5


# -- 4. security: CurveZMQ as jupyter_client >= 8.9 provisions it --------------------------------


@contextlib.contextmanager
def managed(kernel_name: str, **kw: Any) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    km = KernelManager(kernel_name=kernel_name, **kw)
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_kernelspecs_declare_curve_support() -> None:
    assert zmq.has("curve")
    assert make_spec("echo", "Echo", "no-op")["metadata"]["supported_encryption"] == ["curve"]
    packaged = raw.ROOT / "share/jupyter/kernels/kernelkit-echo/kernel.json"
    assert json.loads(packaged.read_text())["metadata"]["supported_encryption"] == ["curve"]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_curve_required_by_kernel_manager(transport: str) -> None:
    """KernelManager(transport_encryption="required") provisions keys; everything works."""
    with managed("kk-commands", transport_encryption="required", transport=transport) as (km, kc):
        info = json.loads(Path(km.connection_file).read_text())
        assert info["transport"] == transport
        assert len(info["curve_publickey"]) == len(info["curve_secretkey"]) == 40
        assert stat.S_IMODE(Path(km.connection_file).stat().st_mode) == 0o600
        assert kc.curve_publickey is not None
        assert stdout_of(kc, "encrypted hello") == "encrypted hello"
        # stdin, control, interrupts and the heartbeat all work encrypted
        msg_id = kc.execute("input Who? ", allow_stdin=True)
        assert kc.get_stdin_msg(timeout=30)["content"]["prompt"] == "Who?"
        kc.input("curve")
        assert kc.get_shell_msg(timeout=30)["parent_header"]["msg_id"] == msg_id
        assert kc.kernel_info(reply=True, timeout=30)["content"]["implementation"] == "commands"
        control = kc.session.msg("kernel_info_request", {})
        kc.control_channel.send(control)
        assert kc.control_channel.get_msg(timeout=30)["msg_type"] == "kernel_info_reply"
        msg_id = kc.execute("loop")
        deadline = time.monotonic() + 30
        while True:  # until the loop is surely running
            msg = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                break
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=30)
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert _wait(lambda: kc.hb_channel.is_beating(), 20)
        assert km.is_alive()


@pytest.mark.timeout(300)
def test_curve_auto_and_bridge_kernels() -> None:
    with managed("kk-python-echo", transport_encryption="auto") as (km, kc):
        assert "curve_secretkey" in json.loads(Path(km.connection_file).read_text())
        assert stdout_of(kc, "bridged and encrypted") == "bridged and encrypted"


def _wait(condition: Any, timeout: float) -> bool:
    return raw.wait_until(condition, timeout, step=0.1)


@pytest.mark.timeout(300)
def test_curve_kernel_ignores_clients_without_the_server_key(tmp_path: Path) -> None:
    with raw.KernelProcess(COMMANDS, tmp_path, curve=True) as kernel, \
            raw.zmq_context() as ctx:
        client = raw.Client(ctx, kernel, ("shell",), iopub=False)
        client.wait_ready()  # the right key: answered
        client.close()
        session = Session(kernel.key.encode())
        wrong_public, _ = zmq.curve_keypair()
        for server_key in (None, wrong_public):  # plain ZeroMQ, and Curve with a wrong key
            sock = ctx.socket(zmq.DEALER)
            sock.linger = 0
            raw.curve_client(sock, server_key)
            sock.connect(kernel.url("shell"))
            sock.send_multipart(session.serialize("kernel_info_request", {}))
            assert not sock.poll(2000), "the kernel answered a client without the server key"
            sock.close()
            hb = ctx.socket(zmq.REQ)
            hb.linger = 0
            raw.curve_client(hb, server_key)
            hb.connect(kernel.url("hb"))
            hb.send(b"ping")
            assert not hb.poll(1000), "the heartbeat answered a client without the server key"
            hb.close()
        assert kernel.alive()
        assert raw.heartbeat_ok(ctx, kernel)


class Relay:
    """A TCP relay in front of one port that records every byte passing in both directions."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.seen = bytearray()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self.target))
                for a, b in ((conn, upstream), (upstream, conn)):
                    threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                with self.lock:
                    self.seen += data
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("encryption", ["disabled", "required"])
def test_curve_encrypts_what_travels(encryption: str) -> None:
    """Bytes on the shell channel, as a relay in the middle sees them: plain, or ciphertext."""
    marker = "kernelkit-marker-" + os.urandom(6).hex()
    with managed("kk-commands", transport_encryption=encryption) as (km, _):
        relay = Relay(km.shell_port)
        # A client of its own session: two clients sharing one (km.client() twice) share a
        # routing identity, and only the one connected last is served.
        own = JCSession(key=km.session.key, signature_scheme=km.session.signature_scheme)
        kc = km.client(shell_port=relay.port, session=own)
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            assert stdout_of(kc, marker) == marker
        finally:
            kc.stop_channels()
            relay.close()
        with relay.lock:
            seen = bytes(relay.seen)
        assert len(seen) > 1000
        if encryption == "required":
            assert marker.encode() not in seen and b"execute_request" not in seen
        else:
            assert marker.encode() in seen and b"execute_request" in seen


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"curve_secretkey": None}, "must both be given"),
        ({"curve_publickey": "short"}, "40-character"),
        ({"curve_publickey": zmq.curve_keypair()[0].decode()}, "not the public key"),
    ],
)
def test_bad_curve_keys_stop_the_start_with_a_reason(
    tmp_path: Path, change: dict[str, Any], expected: str
) -> None:
    public, secret = zmq.curve_keypair()
    info = {"transport": "tcp", "ip": "127.0.0.1", "key": "k", "signature_scheme": "hmac-sha256",
            **{f"{c}_port": 0 for c in raw.CHANNELS},
            "curve_publickey": public.decode(), "curve_secretkey": secret.decode(), **change}
    info = {k: v for k, v in info.items() if v is not None}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(info))
    done = subprocess.run([sys.executable, "-m", "kernelkit", "run", "echo", "-f", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert expected in done.stderr and "Traceback" not in done.stderr


# -- replies that cannot be encoded -------------------------------------------------------------

NAN_BACKEND = r"""
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("method") == "initialize":
        result = {"implementation": "nan", "language_info": {"name": "nan"}}
    elif msg.get("method") == "execute" and msg["params"]["code"] == "nan":
        sys.stdout.write('{"jsonrpc": "2.0", "id": %d, "result": {"status": "ok", "v": NaN}}\n'
                         % msg["id"])
        sys.stdout.flush()
        continue
    else:
        result = {"status": "ok"}
    print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}), flush=True)
"""


@pytest.mark.timeout(300)
def test_a_reply_json_cannot_encode_becomes_an_error_reply(tmp_path: Path) -> None:
    """A backend's result with NaN in it: the client still gets its one reply."""
    args = ["bridge", "-f", "{cf}", "--", sys.executable, "-c", NAN_BACKEND]
    with raw.KernelProcess(args, tmp_path) as kernel, \
            raw.zmq_context() as ctx:
        client = raw.Client(ctx, kernel, ("shell",))
        client.wait_ready()
        msg_id = client.execute("nan")
        reply = client.reply(msg_id, timeout=30)
        assert reply.content["status"] == "error"
        assert "could not be encoded as JSON" in reply.content["evalue"]
        assert reply.content["execution_count"] == 1
        states = [m.content["execution_state"] for m in client.iopub.wait_idle(msg_id)
                  if m.msg_type == "status"] if client.iopub else []
        assert states == ["busy", "idle"]
        assert client.reply(client.execute("fine"), timeout=30).content["status"] == "ok"
        client.close()
