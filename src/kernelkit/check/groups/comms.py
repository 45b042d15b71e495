"""comms: comm_open to an unknown target, comm_info and its filter, and the [comm]
sample's round trip and buffers.

Comm messages get no reply: a comm check waits for the message's idle status, and for
what the kernel should send on the comm (a comm_close, an echo), which it finds in the
client's comm_log whatever its parent, so that a wrong parent is named, not a timeout."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from ..client import Msg, Request
from ..harness import (
    REPLY_AFTER_IDLE_GRACE,
    Harness,
    optional,
    short,
)
from ..registry import Fail, Skip, check


def _comm_id() -> str:
    return "kernelkit-check-" + os.urandom(8).hex()


def _nobody() -> str:
    """A target name no kernel registers."""
    return "kernelkit-check-no-such-target-" + os.urandom(4).hex()


def _parent_of(h: Harness, msg: Msg) -> str:
    """What ``msg``'s parent is, for reasons."""
    pid = msg.parent_id
    if not pid:
        return "empty"
    req = h.client.requests.get(pid)
    if req is None:
        return f"{pid!r}, a message this client did not send"
    where = f" sent by {req.owner}" if req.owner != h.current else ""
    return f"the {req.msg_type}{where}"


def _comm_wait(h: Harness, req: Request, want: Callable[[], bool] | None = None) -> None:
    """Wait for ``req``'s idle, then a little longer for ``want()`` if it has not come: what
    comes late is then named as late (the client flags it after idle), not as missing.
    What is still missing after that is the caller's to judge."""
    h.wait(lambda: req.idle_at is not None)
    if want is not None and not want():
        h.wait(want, REPLY_AFTER_IDLE_GRACE)


def _unbracketed(h: Harness, req: Request) -> str | None:
    if req.idle_at is not None:
        return None
    what = f"{req.msg_type} on shell"
    if req.busy_at is None:
        return f"no status busy or idle on IOPub within {h.timeout:.0f}s for {what}"
    return f"no status idle within {h.timeout:.0f}s for {what}"


def _comm_send(h: Harness, msg_type: str, comm_id: str, data: dict[str, Any],
               buffers: list[bytes] | None = None, **keys: Any) -> Request:
    content = {"comm_id": comm_id, "data": data, **keys}
    return h.client.send("shell", msg_type, content, buffers=buffers)


def _comm_sample(h: Harness) -> dict[str, str]:
    """The [comm] sample, its setup code run first in this kernel process."""
    sample = h.need("comm")
    setup = sample.get("setup")
    if setup and h.comm_setup_in != h.connections:
        try:
            h.run(setup)
        except Fail as exc:
            raise Fail(f"the [comm] sample's setup code failed: {exc}") from None
        h.comm_setup_in = h.connections
    return sample


class OpenComm:
    """A comm this check opened to the [comm] sample's target; closed by ``close()``."""

    def __init__(self, h: Harness, target: str) -> None:
        self.h = h
        self.target = target
        self.comm_id = _comm_id()
        self.opened = _comm_send(h, "comm_open", self.comm_id, {"kernelkit-check": "open"},
                                 target_name=target)
        self.closed: Request | None = None
        _comm_wait(h, self.opened)
        closes = h.client.on_comm(self.comm_id, "comm_close")
        if closes:
            raise Fail(f"the kernel closed the comm to {target!r} at once (comm_close with "
                       f"parent {_parent_of(h, closes[0])}): it has no such target; does "
                       "the [comm] sample's setup register it?")
        problem = _unbracketed(h, self.opened)
        if problem:
            raise Fail(f"comm_open to {target!r}: {problem}")
        for m in h.client.on_comm(self.comm_id):
            if m.parent_id != self.opened.msg_id:
                raise Fail(f"a {m.msg_type} on the new comm has parent {_parent_of(h, m)}, "
                           "not the comm_open it answers")
        self.answers = len(self.opened.of_type("comm_msg"))

    def close(self, wait: bool = True) -> Request:
        """Close from the frontend's side; ``wait`` for the idle, else give it a moment."""
        if self.closed is None:
            self.closed = _comm_send(self.h, "comm_close", self.comm_id, {})
        if wait:
            _comm_wait(self.h, self.closed)
            problem = _unbracketed(self.h, self.closed)
            if problem:
                raise Fail(f"comm_close: {problem}")
        else:
            closed = self.closed
            self.h.client.wait(lambda: closed.idle_at is not None, 1.0)
        return self.closed


@contextlib.contextmanager
def _opened(h: Harness, target: str) -> Iterator[OpenComm]:
    """A comm open for the body of a with statement; closed even when the check fails."""
    comm = OpenComm(h, target)
    try:
        yield comm
    finally:
        if comm.closed is None:
            with contextlib.suppress(Fail):
                comm.close(wait=False)


def _holds(value: Any, sent: Any) -> bool:
    """``value`` is ``sent``, or holds it as the value of a key or item, at any depth."""
    if value == sent:
        return True
    if isinstance(value, dict):
        return any(_holds(v, sent) for v in value.values())
    if isinstance(value, list):
        return any(_holds(v, sent) for v in value)
    return False


def _echo(h: Harness, comm: OpenComm, data: dict[str, Any],
          buffers: list[bytes] | None = None) -> tuple[Request, Msg]:
    """Send ``data`` on the comm and wait for its echo; Fail saying what went wrong."""
    seen = len(h.client.on_comm(comm.comm_id))
    req = _comm_send(h, "comm_msg", comm.comm_id, data, buffers)

    def later() -> list[Msg]:
        return h.client.on_comm(comm.comm_id)[seen:]

    def echoes() -> list[Msg]:
        return [m for m in later() if m.msg_type == "comm_msg" and _holds(m.content.get("data"),
                                                                             data)]

    _comm_wait(h, req, lambda: bool(echoes()))
    found = echoes()
    if not found:
        other = later()
        if any(m.msg_type == "comm_close" for m in other):
            raise Fail("the kernel closed the comm instead of echoing the comm_msg")
        if other:
            shown = short(other[0].content.get("data"), 80)
            raise Fail(f"the kernel answered the comm_msg with {other[0].msg_type} data {shown}, "
                       f"which does not hold the data sent ({short(data, 80)})")
        problem = _unbracketed(h, req)
        if problem:
            raise Fail(f"no echo on the comm to {comm.target!r}: {problem}")
        listed = _listed(h, {})
        hint = ("; comm_info does not list the comm: the kernel did not open it"
                if listed is not None and comm.comm_id not in listed else "")
        raise Fail(f"no echo: the kernel went idle after the comm_msg to {comm.target!r} "
                   f"without a comm_msg on the comm{hint}")
    echo = found[0]
    if echo.parent_id != req.msg_id:
        raise Fail(f"the echo's parent is {_parent_of(h, echo)}, not the comm_msg that "
                   "caused it")
    problem = _unbracketed(h, req)
    if problem:
        raise Fail(f"comm_msg: {problem} (the echo came)")
    return req, echo


@check("comms.unknown_target", "comm_open to an unknown target: comm_close, busy/idle")
def comms_unknown_target(h: Harness) -> str:
    comm_id, target = _comm_id(), _nobody()
    req = _comm_send(h, "comm_open", comm_id, {}, target_name=target)

    def closes() -> list[Msg]:
        return h.client.on_comm(comm_id, "comm_close")

    _comm_wait(h, req, lambda: bool(closes()))
    if not closes():
        if any(r.msg_type == "comm_close" for r in req.replies):
            raise Fail("the comm to an unknown target was closed with a comm_close on shell, "
                       "as if it were a reply; it belongs on IOPub, where frontends get it")
        problem = _unbracketed(h, req)
        if problem:
            raise Fail(f"no comm_close for a comm_open to an unknown target: {problem}")
        raise Fail("the kernel went idle after a comm_open to an unknown target without "
                   "closing the comm (the spec: it should send comm_close at once)")
    close = closes()[0]
    if close.parent_id != req.msg_id:
        raise Fail(f"the comm_close's parent is {_parent_of(h, close)}, not the comm_open")
    problem = _unbracketed(h, req)
    if problem:
        raise Fail(f"{problem} (the comm_close came)")
    took = 1000 * (close.at - req.sent_at)
    listed = _listed(h, {})
    if listed is not None and comm_id in listed:
        raise Fail("the comm to an unknown target was closed, but comm_info still lists it")
    return f"comm_close {took:.0f} ms after the comm_open, between its busy and idle"


def _listed(h: Harness, content: dict[str, Any]) -> dict[str, Any] | None:
    """comm_info_reply's comms, or None when the kernel does not implement comm_info."""
    req = h.request("shell", "comm_info_request", content)
    reply = h.finish(req, optional=True)
    if reply is None or reply.content.get("status") != "ok":
        return None
    comms = reply.content.get("comms")
    if not isinstance(comms, dict):
        raise Fail(f"comm_info_reply comms is {short(comms)}, not an object")
    return comms


def _comm_info(h: Harness, content: dict[str, Any]) -> dict[str, Any]:
    reply = optional(h, "comm_info_request", content)
    comms = reply.content.get("comms")
    if not isinstance(comms, dict):
        raise Fail(f"comm_info_reply comms is {short(comms)}, not an object")
    for comm_id, entry in comms.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("target_name"), str):
            raise Fail(f"comm_info_reply comms[{comm_id!r}] is {short(entry)}, "
                       "not {'target_name': str}")
    return comms


@check("comms.info", "comm_info_request: comm_id -> target_name, filtered by target_name")
def comms_info(h: Harness) -> str:
    comms = _comm_info(h, {})
    nobody = _nobody()
    if _comm_info(h, {"target_name": nobody}):
        raise Fail(f"filtered by target_name {nobody!r}, which no comm has, comm_info lists "
                   "comms: the filter is ignored")
    targets = sorted({entry["target_name"] for entry in comms.values()})
    for target in targets[:3]:  # comms the kernel opened itself (a few are enough)
        got = _comm_info(h, {"target_name": target})
        wrong = [cid for cid, e in got.items() if e.get("target_name") != target]
        if wrong:
            raise Fail(f"filtered by target_name {target!r}, comm_info lists {wrong[0]!r} "
                       f"with target {got[wrong[0]].get('target_name')!r}")
        missing = [cid for cid, e in comms.items() if e["target_name"] == target
                   and cid not in got]
        if missing:
            raise Fail(f"filtered by target_name {target!r}, comm_info leaves out "
                       f"{missing[0]!r}, which it lists with that target unfiltered")
    shown = f" (targets {', '.join(map(repr, targets))})" if targets else ""
    return f"{len(comms)} open comms{shown}; a filter by an unknown target lists none"


@check("comms.round_trip", "[comm] sample: open, comm_msg, its echo, close; busy/idle, parents")
def comms_round_trip(h: Harness) -> str:
    sample = _comm_sample(h)
    target = sample["target"]
    with _opened(h, target) as comm:
        data = {"kernelkit-check": os.urandom(6).hex(), "n": 42, "list": [1, "two", None],
                "nested": {"ok": True}}
        req, echo = _echo(h, comm, data)
        close = comm.close()
        after = [m for m in h.client.on_comm(comm.comm_id)
                 if m.msg_type != "comm_close" and m.at > close.sent_at]
        if after:
            raise Fail(f"a {after[0].msg_type} on the comm came after the frontend closed it")
    answered = f" (answered with {comm.answers} comm_msg)" if comm.answers else ""
    took = 1000 * (echo.at - req.sent_at)
    return f"opened{answered}; echo {took:.0f} ms after the comm_msg; closed"


@check("comms.info_open", "[comm] sample: comm_info lists the comm while open, by target")
def comms_info_open(h: Harness) -> str:
    sample = _comm_sample(h)
    target = sample["target"]
    with _opened(h, target) as comm:
        listed = _comm_info(h, {})
        entry = listed.get(comm.comm_id)
        if entry is None:
            raise Fail(f"comm_info does not list the open comm to {target!r} "
                       f"({len(listed)} comms listed)")
        if entry.get("target_name") != target:
            raise Fail(f"comm_info lists the comm with target_name "
                       f"{short(entry.get('target_name'))}, it was opened to {target!r}")
        mine = _comm_info(h, {"target_name": target})
        if comm.comm_id not in mine:
            raise Fail(f"filtered by target_name {target!r}, comm_info does not list the "
                       "comm open to it")
        nobody = _nobody()
        other = _comm_info(h, {"target_name": nobody})
        if comm.comm_id in other:
            raise Fail(f"filtered by target_name {nobody!r}, comm_info lists the comm to "
                       f"{target!r}: the filter is ignored")
        comm.close()
    gone = _comm_info(h, {})
    if comm.comm_id in gone:
        raise Fail("comm_info still lists the comm after the frontend closed it")
    return (f"listed while open (also filtered by {target!r}, not by another target), "
            "gone after close")


@check("comms.buffers", "[comm] sample with buffers = true: binary buffers come back")
def comms_buffers(h: Harness) -> str:
    sample = _comm_sample(h)
    if sample.get("buffers") != "true":
        raise Skip("the [comm] sample does not say its target echoes buffers (buffers = true)")
    target = sample["target"]
    sent = [b"\x00\x01\x02\xffkernelkit-check\x00", os.urandom(4096)]
    with _opened(h, target) as comm:
        data = {"kernelkit-check": os.urandom(6).hex(), "buffers": len(sent)}
        _, echo = _echo(h, comm, data, sent)
        comm.close()
    sizes = ", ".join(str(len(b)) for b in sent)
    if len(echo.buffers) != len(sent):
        raise Fail(f"the echo carries {len(echo.buffers)} buffers; {len(sent)} were sent "
                   f"({sizes} bytes)")
    for i, (back, out) in enumerate(zip(echo.buffers, sent, strict=True)):
        if back != out:
            raise Fail(f"the echo's buffer {i} is not the one sent ({len(out)} bytes sent, "
                       f"{len(back)} came back: {short(back[:24])})")
    return f"{len(sent)} buffers ({sizes} bytes) came back, the same bytes in order"
