"""The sans-IO wire layer, checked against jupyter_client's own Session in both directions."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jupyter_client.session import Session as JCSession

from kernelkit.wire import (
    DELIMITER,
    JOIN_BELOW,
    PROTOCOL_VERSION,
    ProtocolError,
    ReplayGuard,
    Session,
)

KEY = b"a0436f6c-1916-498b-8eb9-e81ab9368e84"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
contents = st.dictionaries(st.text(max_size=10), json_values, max_size=5)


@pytest.mark.parametrize("scheme", ["hmac-sha256", "hmac-sha512", "hmac-md5"])
def test_jupyter_client_reads_ours(scheme: str) -> None:
    ours = Session(KEY, scheme)
    theirs = JCSession(key=KEY, signature_scheme=scheme)
    parent = theirs.msg("execute_request", {"code": "1"})
    frames = ours.serialize("stream", {"name": "stdout", "text": "hé"}, parent["header"],
                            identities=[b"client-id"], buffers=[b"\x00\x01"])
    idents, rest = theirs.feed_identities(frames)
    msg = theirs.deserialize(rest)
    assert idents == [b"client-id"]
    assert msg["content"] == {"name": "stdout", "text": "hé"}
    assert msg["parent_header"]["msg_id"] == parent["header"]["msg_id"]
    assert msg["header"]["version"] == PROTOCOL_VERSION
    assert msg["header"]["session"] == ours.session_id
    assert [bytes(b) for b in msg["buffers"]] == [b"\x00\x01"]


@pytest.mark.parametrize("scheme", ["hmac-sha256", "hmac-sha1"])
def test_we_read_jupyter_client(scheme: str) -> None:
    theirs = JCSession(key=KEY, signature_scheme=scheme)
    ours = Session(KEY, scheme)
    msg = theirs.msg("execute_request", {"code": "print(1)", "silent": False}, metadata={"a": 1})
    frames = theirs.serialize(msg, ident=[b"id1", b"id2"])
    parsed = ours.deserialize(frames)
    assert parsed.identities == [b"id1", b"id2"]
    assert parsed.msg_type == "execute_request"
    assert parsed.msg_id == msg["header"]["msg_id"]
    assert parsed.content == {"code": "print(1)", "silent": False}
    assert parsed.metadata == {"a": 1}


@pytest.mark.parametrize("size", [JOIN_BELOW - 64, JOIN_BELOW, 3 * JOIN_BELOW])
def test_signatures_agree_with_jupyter_client_on_both_sides_of_the_join_size(size: int) -> None:
    """Signing hashes a big content part by part and a small message joined: the same HMAC."""
    ours, theirs = Session(KEY), JCSession(key=KEY)
    frames = ours.serialize("stream", {"name": "stdout", "text": "é" * (size // 2)})
    assert theirs.deserialize(theirs.feed_identities(frames)[1])["content"]["text"]
    msg = theirs.msg("execute_request", {"code": "x" * size, "silent": False})
    assert ours.deserialize(theirs.serialize(msg)).content["code"] == "x" * size


@given(content=contents, metadata=contents)
def test_round_trip_any_json(content: dict, metadata: dict) -> None:
    ours = Session(KEY)
    theirs = JCSession(key=KEY)
    frames = ours.serialize("custom", content, metadata=metadata)
    back = theirs.deserialize(theirs.feed_identities(frames)[1])
    assert back["content"] == content and back["metadata"] == metadata
    again = ours.deserialize(theirs.serialize(theirs.msg("custom", content, metadata=metadata)))
    assert again.content == content and again.metadata == metadata


def test_signature_is_hmac_of_the_four_frames() -> None:
    frames = Session(KEY).serialize("status", {"execution_state": "idle"})
    i = frames.index(DELIMITER)
    expected = hmac.new(KEY, b"".join(frames[i + 2 : i + 6]), hashlib.sha256).hexdigest()
    assert frames[i + 1] == expected.encode()


def test_unsigned_session_sends_empty_signature_and_accepts_unsigned() -> None:
    s = Session(b"")
    frames = s.serialize("status", {})
    assert frames[frames.index(DELIMITER) + 1] == b""
    unsigned = JCSession(key=b"")
    assert s.deserialize(unsigned.serialize(unsigned.msg("x", {}))).msg_type == "x"


def _valid(session: JCSession | None = None) -> list[bytes]:
    s = session or JCSession(key=KEY)
    return s.serialize(s.msg("execute_request", {"code": "x"}))


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda f: f[1:], "delimiter"),
        (lambda f: f[:4], "frames after the delimiter"),
        (lambda f: [f[0], b"0" * 64, *f[2:]], "invalid signature"),
        (lambda f: [f[0], b"", *f[2:]], "unsigned"),
        (lambda f: [*f[:2], b"{not json", *f[3:]], "invalid signature"),
    ],
)
def test_bad_frames_raise_protocol_error(mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProtocolError, match=reason):
        Session(KEY).deserialize(mutate(_valid()))


def _signed(parts: list[bytes]) -> list[bytes]:
    sig = hmac.new(KEY, b"".join(parts), hashlib.sha256).hexdigest().encode()
    return [DELIMITER, sig, *parts]


@pytest.mark.parametrize(
    ("parts", "reason"),
    [
        ([b"[1]", b"{}", b"{}", b"{}"], "not an object"),
        ([b"\xff\xfe", b"{}", b"{}", b"{}"], "UTF-8|JSON"),
        ([b"{}", b"{}", b"{}", b"{}"], "msg_type"),
        ([json.dumps({"msg_type": "x"}).encode(), b"{}", b"{}", b"{}"], "msg_id"),
        ([json.dumps({"msg_type": 3, "msg_id": "a"}).encode(), b"{}", b"{}", b"{}"], "msg_type"),
        ([json.dumps({"msg_type": "x", "msg_id": "a"}).encode(), b"{}", b"{}", b"nan"], "content"),
    ],
)
def test_authentic_but_malformed_messages(parts: list[bytes], reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        Session(KEY).deserialize(_signed(parts))


def test_replayed_message_is_refused() -> None:
    ours = Session(KEY)
    frames = _valid()
    ours.deserialize(frames)
    with pytest.raises(ProtocolError, match="replayed"):
        ours.deserialize(frames)


def test_replay_guard_forgets_only_the_oldest() -> None:
    guard = ReplayGuard(memory=3)
    for sig in (b"a", b"b", b"c", b"d"):
        guard.check(sig)
    guard.check(b"a")  # forgotten: the oldest beyond the memory
    with pytest.raises(ProtocolError):
        guard.check(b"d")


class _SlowSeen(dict[bytes, None]):
    """A guard's memory whose membership test lets the other thread run in between, which
    forces the interleaving a replay sent on shell and control at once would need."""

    def __init__(self, both_looked: threading.Barrier) -> None:
        super().__init__()
        self.both_looked = both_looked

    def __contains__(self, key: object) -> bool:
        found = super().__contains__(key)
        with contextlib.suppress(threading.BrokenBarrierError):
            self.both_looked.wait(0.5)  # with the lock held, the other never arrives
        return found


def _race(guard: ReplayGuard) -> list[str]:
    outcomes: list[str] = []

    def check() -> None:
        try:
            guard.check(b"the same signature")
            outcomes.append("accepted")
        except ProtocolError:
            outcomes.append("refused")

    threads = [threading.Thread(target=check) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    return sorted(outcomes)


def test_replay_guard_with_a_lock_accepts_a_message_sent_on_two_threads_at_once_once() -> None:
    unlocked = ReplayGuard()
    unlocked._seen = _SlowSeen(threading.Barrier(2))
    assert _race(unlocked) == ["accepted", "accepted"]  # the race the lock exists for
    locked = ReplayGuard()
    locked.lock = threading.Lock()  # as the server sets it
    locked._seen = _SlowSeen(threading.Barrier(2))
    assert _race(locked) == ["accepted", "refused"]


def test_the_server_gives_its_session_a_real_replay_guard_lock() -> None:
    from kernelkit.connection import ConnectionInfo
    from kernelkit.server import Server

    session = Session(KEY)
    server = Server(ConnectionInfo(key=KEY.decode()), session)
    try:
        assert isinstance(session.replay_guard.lock, type(threading.Lock()))
    finally:  # (never started: no threads to stop, only its sockets and contexts)
        server._close(term=False)
        server._ctx.destroy(linger=0)
        server._hb_ctx.destroy(linger=0)


def test_unknown_signature_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="signature_scheme"):
        Session(KEY, "hmac-nosuchhash")
    with pytest.raises(ValueError, match="signature_scheme"):
        Session(KEY, "rsa-sha256")


def test_headers_are_unique_and_dated() -> None:
    s = Session(KEY)
    a, b = s.header("status"), s.header("status")
    assert a["msg_id"] != b["msg_id"]
    assert a["date"].endswith("Z") and "T" in a["date"]
    assert {"msg_id", "msg_type", "username", "session", "date", "version"} <= a.keys()


@given(st.lists(st.floats(0, 4_102_444_800, allow_nan=False), min_size=1, max_size=6))
def test_header_dates_are_what_datetime_writes(times: list[float]) -> None:
    # utcnow_iso keeps the formatted second between calls: across seconds, in any order,
    # it must still write what datetime does (microseconds truncated, as datetime's are).
    from datetime import datetime, timezone
    from unittest import mock

    from kernelkit import wire

    for t in times:
        with mock.patch.object(wire.time, "time", return_value=t):
            got = wire.utcnow_iso()
        whole = int(t)
        want = datetime.fromtimestamp(whole, timezone.utc).replace(
            microsecond=int((t - whole) * 1_000_000)
        )
        assert got == want.isoformat(timespec="microseconds").replace("+00:00", "Z")
        assert datetime.fromisoformat(got.replace("Z", "+00:00")) == want


def test_nan_is_refused_when_sending() -> None:
    with pytest.raises(ValueError):
        Session(KEY).serialize("x", {"v": float("nan")})
