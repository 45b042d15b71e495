"""security: forged, unsigned and replayed messages do not execute."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from ..client import DELIMITER, Request
from ..harness import (
    Harness,
    execute_content,
)
from ..registry import Fail, check


def _probe_code(h: Harness) -> str:
    hello = h.samples.get("hello")
    return hello["code"] if hello is not None else ""


def _execute_message(h: Harness, code: str) -> dict[str, Any]:
    return h.client.new_message("execute_request", execute_content(code))


def _evidence(h: Harness, req: Request, before: int, after: int, replies: int = 0,
              iopub: int = 0) -> list[str]:
    found = []
    if len(req.replies) > replies:
        status = req.replies[-1].content.get("status")
        found.append(f"it was answered (status {status!r})")
    extra = req.iopub[iopub:]
    if extra:
        found.append(f"IOPub carried {', '.join(m.msg_type for m in extra)} for it")
    if h.samples.get("hello") is not None and after != before + 1:
        found.append(f"execution_count went from {before} to {after} over one valid execute")
    return found


def _forged(h: Harness, signature: Callable[[list[bytes]], bytes], what: str) -> str:
    code = _probe_code(h)
    before = h.count_of(h.run(code)[1])
    probe = h.probe_socket()
    msg = _execute_message(h, code)
    assert h.session is not None
    frames = h.session.serialize(msg)
    split = frames.index(DELIMITER)
    frames[split + 1] = signature(frames[split + 2 : split + 6])
    req = h.client.track(msg, probe, strict=False)
    h.client.send_frames(probe, frames)
    try:
        after = h.count_of(h.run(code)[1])
    except Fail as exc:
        raise Fail(f"after a message with {what}, the next valid execute failed: {exc}") from None
    h.client.settle(0.3)
    found = _evidence(h, req, before, after)
    if found:
        raise Fail(f"a message with {what} was executed: " + "; ".join(found))
    return f"ignored (execution_count {before} -> {after} over one valid execute)"


@check("security.bad_signature", "a message with a forged signature does not execute")
def security_bad_signature(h: Harness) -> str:
    def forge(parts: list[bytes]) -> bytes:
        return hmac.new(b"not-the-connection-key", b"".join(parts), hashlib.sha256) \
            .hexdigest().encode()

    return _forged(h, forge, "a forged signature")


@check("security.unsigned", "an unsigned message does not execute")
def security_unsigned(h: Harness) -> str:
    return _forged(h, lambda parts: b"", "no signature")


@check("security.replay", "a replayed message does not execute again")
def security_replay(h: Harness) -> str:
    code = _probe_code(h)
    probe = h.probe_socket()
    msg = _execute_message(h, code)
    assert h.session is not None
    frames = h.session.serialize(msg)
    req = h.client.track(msg, probe, strict=False)
    h.client.send_frames(probe, frames)
    reply = h.finish(req)
    assert reply is not None
    before = h.count_of(reply)
    replies, iopub = len(req.replies), len(req.iopub)
    h.client.send_frames(probe, frames)  # the very same frames, signature and all
    try:
        after = h.count_of(h.run(code)[1])
    except Fail as exc:
        raise Fail(f"after a replayed message, the next valid execute failed: {exc}") from None
    h.client.settle(0.3)
    found = _evidence(h, req, before, after, replies, iopub)
    if found:
        raise Fail("the replayed message was executed again: " + "; ".join(found))
    return f"ignored (execution_count {before} -> {after} over one valid execute)"
