"""subshells (JEP 91): create, list, delete, execute on one, answer while the main shell is
busy, unknown ids.
"""

from __future__ import annotations

from typing import Any

from ..client import Request
from ..harness import (
    Harness,
    execute_content,
    short,
    while_busy,
)
from ..registry import Fail, Skip, check


def subshells_claimed(h: Harness) -> None:
    if "kernel subshells" not in (h.info.get("supported_features") or []):
        raise Skip("the kernel does not claim 'kernel subshells'")


def _create_subshell(h: Harness) -> str:
    reply = h.finish(h.request("control", "create_subshell_request"))
    assert reply is not None
    sid = reply.content.get("subshell_id")
    if reply.content.get("status") != "ok" or not isinstance(sid, str):
        raise Fail(f"'kernel subshells' is claimed, but create_subshell_request got "
                   f"{short(reply.content, 120)}")
    return sid


def _delete_subshell(h: Harness, sid: str) -> None:
    deleted = h.finish(h.request("control", "delete_subshell_request", {"subshell_id": sid}))
    assert deleted is not None
    if deleted.content.get("status") != "ok":
        raise Fail(f"delete_subshell_request got {short(deleted.content, 120)}")


def _on_subshell(h: Harness, sid: str, msg_type: str, content: dict[str, Any]) -> Request:
    assert h.session is not None
    header = h.session.msg_header(msg_type)
    header["subshell_id"] = sid
    return h.client.send("shell", msg_type, content, header=header)


@check("subshells.lifecycle", "create, list and delete subshells (JEP 91)")
def subshells_lifecycle(h: Harness) -> str:
    subshells_claimed(h)
    sid = _create_subshell(h)
    listed = h.finish(h.request("control", "list_subshell_request"))
    assert listed is not None
    if sid not in (listed.content.get("subshell_id") or []):
        raise Fail(f"list_subshell_reply does not list the new subshell {sid}")
    _delete_subshell(h, sid)
    listed = h.finish(h.request("control", "list_subshell_request"))
    assert listed is not None
    if sid in (listed.content.get("subshell_id") or []):
        raise Fail(f"the deleted subshell {sid} is still listed")
    return "created, listed, deleted"


@check("subshells.execute", "code runs on a subshell; reply and output carry its id")
def subshells_execute(h: Harness) -> str:
    subshells_claimed(h)
    hello = h.need("hello")
    sid = _create_subshell(h)
    try:
        req = _on_subshell(h, sid, "execute_request", execute_content(hello["code"]))
        reply = h.finish(req)
        assert reply is not None
        if reply.content.get("status") != "ok":
            raise Fail(f"execute on a subshell gave {short(reply.content, 120)}")
        if reply.parent_header.get("subshell_id") != sid:
            raise Fail("the execute_reply's parent_header has no subshell_id")
        if hello.get("output") and hello["output"] not in req.text():
            raise Fail(f"the subshell's output was {short(req.text())}")
    finally:
        _delete_subshell(h, sid)
    return "ran the hello sample on a subshell"


@check("subshells.while_busy", "a subshell answers while the main shell is busy")
def subshells_while_busy(h: Harness) -> str:
    subshells_claimed(h)
    sid = _create_subshell(h)
    try:
        with while_busy(h) as busy:
            req = _on_subshell(h, sid, "kernel_info_request", {})
            reply = h.finish(req)
            assert reply is not None
            if busy.loop.reply is not None:
                raise Fail("the long-running sample ended before the subshell answered")
    finally:
        _delete_subshell(h, sid)
    took = reply.at - req.sent_at
    return f"kernel_info on a subshell answered in {1000 * took:.0f} ms while busy{busy.note}"


@check("subshells.unknown", "a request for an unknown subshell gets an error reply")
def subshells_unknown(h: Harness) -> str:
    subshells_claimed(h)
    reply = h.finish(_on_subshell(h, "no-such-subshell", "kernel_info_request", {}))
    assert reply is not None
    if reply.content.get("status") != "error":
        raise Fail(f"an unknown subshell_id got {short(reply.content, 120)}")
    return f"error {reply.content.get('ename')}"
