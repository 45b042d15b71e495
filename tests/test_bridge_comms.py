"""Comms through the bridge host (protocol 1.2), against a backend that writes raw protocol lines.

The backend (tests/support/raw_comm_backend.py) uses no SDK, so these tests pin what the
host does: forwarding the frontend's comm messages as requests, publishing the
backend's comm notifications whenever they come, comm_info from the host's table,
closing unknown targets, and closing every comm when the backend ends.
"""

from __future__ import annotations

import json
import queue
import time
import uuid
from typing import Any

import pytest

Msg = dict[str, Any]


def send(k: Any, msg_type: str, content: Msg, buffers: list[bytes] | None = None,
         subshell_id: str | None = None) -> str:
    msg = k.kc.session.msg(msg_type, content)
    if subshell_id is not None:
        msg["header"]["subshell_id"] = subshell_id
    k.kc.session.send(k.kc.shell_channel.socket, msg, buffers=buffers or [])
    return str(msg["header"]["msg_id"])


def until_idle(k: Any, msg_id: str, timeout: float = 20) -> list[Msg]:
    return k.iopub_until_idle(msg_id, timeout=timeout)  # type: ignore[no-any-return]


def comm_info(k: Any, target: str | None = None) -> dict[str, Msg]:
    content = {} if target is None else {"target_name": target}
    reply = k.reply(k.request("comm_info_request", content))
    assert reply["content"]["status"] == "ok"
    return reply["content"]["comms"]  # type: ignore[no-any-return]


def comm_msgs(msgs: list[Msg], msg_type: str = "comm_msg") -> list[Msg]:
    return [m for m in msgs if m["msg_type"] == msg_type]


def stdout(msgs: list[Msg]) -> str:
    return "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream")


def received(k: Any) -> list[Msg]:
    """What the backend was sent, by its own account."""
    return json.loads(k.stdout("got"))  # type: ignore[no-any-return]


def iopub_where(k: Any, pred: Any, timeout: float = 10) -> Msg:
    deadline = time.monotonic() + timeout
    while True:
        msg = k.kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        if pred(msg):
            return msg  # type: ignore[no-any-return]


@pytest.fixture
def raw(start_kernel: Any) -> Any:
    return start_kernel("kk-raw-comms")


def test_a_frontend_comm_to_a_backend_target_round_trips(raw: Any) -> None:
    opened = send(raw, "comm_open", {"comm_id": "c1", "target_name": "echo", "data": {"a": 1}})
    msgs = until_idle(raw, opened)
    assert not comm_msgs(msgs, "comm_close"), "a registered target was closed"
    assert comm_info(raw) == {"c1": {"target_name": "echo"}}
    assert comm_info(raw, "echo") == {"c1": {"target_name": "echo"}}
    assert comm_info(raw, "other") == {}

    sent = send(raw, "comm_msg", {"comm_id": "c1", "data": {"x": 1}}, [b"\x00\x01", b"\xff"])
    msgs = until_idle(raw, sent)
    states = [m["content"]["execution_state"] for m in msgs if m["msg_type"] == "status"]
    assert states == ["busy", "idle"]
    assert stdout(msgs) == "got\n"  # printed while handling it: that message's output
    (echo,) = comm_msgs(msgs)
    assert echo["content"] == {"comm_id": "c1", "data": {"echo": {"x": 1}}}
    assert [bytes(b) for b in echo["buffers"]] == [b"\x00\x01", b"\xff"]

    closed = send(raw, "comm_close", {"comm_id": "c1", "data": {}})
    until_idle(raw, closed)
    assert comm_info(raw) == {}
    assert [(r["method"], r["comm_id"]) for r in received(raw)] == [
        ("comm_open", "c1"), ("comm_msg", "c1"), ("comm_close", "c1")]
    assert received(raw)[0]["data"] == {"a": 1}
    assert received(raw)[1]["buffers"] == ["AAE=", "/w=="]


def test_unknown_and_refusing_targets_are_closed(capfd: Any, start_kernel: Any) -> None:
    raw = start_kernel("kk-raw-comms")  # started here, so that capfd has its stderr
    for target in ("nobody-" + uuid.uuid4().hex, "refuse"):
        cid = uuid.uuid4().hex
        msgs = until_idle(raw, send(raw, "comm_open", {"comm_id": cid, "target_name": target,
                                                       "data": {}}))
        (close,) = comm_msgs(msgs, "comm_close")
        assert close["content"]["comm_id"] == cid
    assert comm_info(raw) == {}
    # The unknown target never reached the backend; the refusing one did, and was refused.
    assert [r["target_name"] for r in received(raw)] == ["refuse"]
    assert "the backend refused it" in capfd.readouterr().err


def test_a_failing_comm_handler_is_logged_and_the_kernel_lives(capfd: Any,
                                                              start_kernel: Any) -> None:
    raw = start_kernel("kk-raw-comms")
    until_idle(raw, send(raw, "comm_open", {"comm_id": "c2", "target_name": "echo", "data": {}}))
    msgs = until_idle(raw, send(raw, "comm_msg", {"comm_id": "c2", "data": {"raise": True}}))
    assert not comm_msgs(msgs)
    assert "the handler raised" in capfd.readouterr().err
    msgs = until_idle(raw, send(raw, "comm_msg", {"comm_id": "c2", "data": {"ok": 1}}))
    assert [m["content"]["data"] for m in comm_msgs(msgs)] == [{"echo": {"ok": 1}}]
    assert comm_info(raw) == {"c2": {"target_name": "echo"}}


def test_a_backend_opens_sends_and_closes_its_own_comm(raw: Any) -> None:
    reply, msgs = raw.execute("open")
    (opened,) = comm_msgs(msgs, "comm_open")
    assert opened["parent_header"]["msg_id"] == reply["parent_header"]["msg_id"]
    assert opened["content"] == {"comm_id": "k1", "target_name": "from-backend",
                                 "data": {"hello": 1}}
    assert opened["metadata"] == {"m": 1}
    assert [bytes(b) for b in opened["buffers"]] == [b"\x00\xff"]
    assert comm_info(raw, "from-backend") == {"k1": {"target_name": "from-backend"}}

    _, msgs = raw.execute("send hi")
    assert [m["content"]["data"] for m in comm_msgs(msgs)] == [{"text": "hi"}]
    # The frontend answers on the backend's comm: the backend gets it (and echoes it).
    msgs = until_idle(raw, send(raw, "comm_msg", {"comm_id": "k1", "data": {"from": "lab"}}))
    assert [m["content"]["data"] for m in comm_msgs(msgs)] == [{"echo": {"from": "lab"}}]

    # Sent by a thread after the reply, between requests: published, not dropped as late,
    # with the request it names as parent.
    reply, _ = raw.execute("later")
    late = iopub_where(raw, lambda m: m["msg_type"] == "comm_msg")
    assert late["content"]["data"] == {"later": True}
    assert late["parent_header"]["msg_id"] == reply["parent_header"]["msg_id"]

    _, msgs = raw.execute("close")
    (closed,) = comm_msgs(msgs, "comm_close")
    assert closed["content"] == {"comm_id": "k1", "data": {"bye": True}}
    assert comm_info(raw) == {}
    # The frontend's messages to it now are not forwarded: the comm is gone.
    until_idle(raw, send(raw, "comm_msg", {"comm_id": "k1", "data": {}}))
    assert [r["method"] for r in received(raw)] == ["comm_msg"]


def test_malformed_comm_notifications_are_dropped_and_logged(capfd: Any,
                                                            start_kernel: Any) -> None:
    raw = start_kernel("kk-raw-comms")
    raw.execute("open")
    _, msgs = raw.execute("bad")
    assert [m["content"]["data"] for m in comm_msgs(msgs)] == [{"after": "bad"}]
    assert not comm_msgs(msgs, "comm_open")
    err = capfd.readouterr().err
    for problem in ("comm_id must be a non-empty string", "data must be an object",
                    "buffers[0] is not valid base64", "target_name must be a string",
                    "which is not open"):
        assert problem in err, problem
    assert comm_info(raw) == {"k1": {"target_name": "from-backend"}}


def test_targets_registered_and_unregistered_after_initialize(raw: Any) -> None:
    def opens(target: str) -> bool:
        msgs = until_idle(raw, send(raw, "comm_open", {"comm_id": uuid.uuid4().hex,
                                                       "target_name": target, "data": {}}))
        return not comm_msgs(msgs, "comm_close")

    assert not opens("late")
    raw.execute("register late")
    assert opens("late")
    raw.execute("unregister late")
    assert not opens("late")


def test_when_the_backend_dies_its_comms_are_closed(raw: Any) -> None:
    raw.execute("open")
    until_idle(raw, send(raw, "comm_open", {"comm_id": "c3", "target_name": "echo", "data": {}}))
    assert set(comm_info(raw)) == {"k1", "c3"}
    reply, msgs = raw.execute("die")
    assert reply["content"]["ename"] == "BackendDied"
    assert {m["content"]["comm_id"] for m in comm_msgs(msgs, "comm_close")} == {"k1", "c3"}
    assert comm_info(raw) == {}
    assert received(raw) == []  # a fresh backend, which knows no comm
    # Its targets are the fresh backend's: echo works again.
    until_idle(raw, send(raw, "comm_open", {"comm_id": "c4", "target_name": "echo", "data": {}}))
    assert comm_info(raw) == {"c4": {"target_name": "echo"}}


def test_comm_traffic_on_a_subshell_while_a_cell_runs(start_kernel: Any) -> None:
    k = start_kernel("kk-raw-comms-subshells")
    reply = k.reply(k.request("create_subshell_request", {}, "control"), "control")
    sid = reply["content"]["subshell_id"]
    busy = k.kc.execute("sleep 3")
    k.wait_started(busy)
    opened = send(k, "comm_open", {"comm_id": "s1", "target_name": "echo", "data": {}},
                  subshell_id=sid)
    until_idle(k, opened)
    msgs = until_idle(k, send(k, "comm_msg", {"comm_id": "s1", "data": {"n": 1}},
                              subshell_id=sid))
    assert [m["content"]["data"] for m in comm_msgs(msgs)] == [{"echo": {"n": 1}}]
    assert stdout(msgs) == "got\n"
    # The cell on the main shell was still running all along.
    with pytest.raises(queue.Empty):
        k.reply(busy, timeout=0.05)
    assert k.reply(busy, timeout=20)["content"]["status"] == "ok"


def test_a_backend_without_comms_gets_every_comm_closed(start_kernel: Any) -> None:
    k = start_kernel("kk-python-echo")
    msgs = until_idle(k, send(k, "comm_open", {"comm_id": "e1", "target_name": "echo",
                                               "data": {}}))
    assert [m["content"]["comm_id"] for m in comm_msgs(msgs, "comm_close")] == ["e1"]
    assert comm_info(k) == {}
