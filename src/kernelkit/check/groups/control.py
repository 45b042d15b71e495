"""control: the control channel answers while shell is busy."""

from __future__ import annotations

from ..harness import (
    Harness,
    while_busy,
)
from ..registry import Fail, check


@check("control.while_busy", "control answers kernel_info while shell is busy")
def control_while_busy(h: Harness) -> str:
    with while_busy(h) as busy:
        req = h.request("control", "kernel_info_request")
        reply = h.finish(req)
        assert reply is not None
        if busy.loop.reply is not None:
            raise Fail("the long-running sample ended before control answered")
    took = reply.at - req.sent_at
    return f"control answered in {1000 * took:.0f} ms while shell was busy{busy.note}"
