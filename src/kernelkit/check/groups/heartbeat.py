"""heartbeat: it echoes, idle and while shell is busy."""

from __future__ import annotations

from ..harness import (
    Harness,
    while_busy,
)
from ..registry import Fail, check


@check("heartbeat.idle", "the heartbeat echoes")
def heartbeat_idle(h: Harness) -> str:
    rtt = h.client.heartbeat(h.timeout)
    if rtt is None:
        raise Fail(f"no heartbeat echo within {h.timeout:.0f}s")
    return f"echo in {1000 * rtt:.1f} ms"


@check("heartbeat.while_busy", "the heartbeat echoes while shell is busy")
def heartbeat_while_busy(h: Harness) -> str:
    with while_busy(h) as busy:
        rtt = h.client.heartbeat(h.timeout)
        if rtt is None:
            raise Fail(f"no heartbeat echo within {h.timeout:.0f}s while shell was busy")
    return f"echo in {1000 * rtt:.1f} ms while busy{busy.note}"
