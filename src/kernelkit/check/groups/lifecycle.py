"""lifecycle: iopub_welcome for a new subscriber, then restart and shutdown (which run last).

lifecycle.start is not here: the runner times the launch itself, before any check.
"""

from __future__ import annotations

import time

import zmq

from .. import schema
from ..harness import (
    Harness,
    short,
)
from ..registry import Fail, Skip, check


@check("lifecycle.iopub_welcome", "a new IOPub subscriber gets iopub_welcome (protocol >= 5.5)")
def lifecycle_welcome(h: Harness) -> str:
    # Both kernel_info_reply and the kernelspec's kernel_protocol_version are claims.
    claims = {
        "kernel_info_reply": h.info.get("protocol_version"),
        "the kernelspec": h.kernelspec_json().get("kernel_protocol_version"),
    }
    claimed = {who: v for who, v in claims.items()
               if (schema.parse_version(v) or (0, 0)) >= (5, 5)}
    if not claimed:
        seen = " (one came anyway)" if h.client.welcomes else ""
        shown = ", ".join(f"{who} {v}" for who, v in claims.items() if v)
        raise Skip(f"protocol < 5.5 claimed ({shown}); iopub_welcome came with 5.5{seen}")
    claim = " and ".join(f"{who} says {v}" for who, v in claimed.items())
    client = h.client
    sock = client.socket(zmq.SUB, "iopub")
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    name = "iopub-welcome"
    client.add(name, sock)
    t0 = time.monotonic()
    try:
        got = h.wait(lambda: any(m.channel == name for m in client.welcomes))
        # A welcome for the subscription '' reaches every subscriber to '', this client's
        # own IOPub socket too: take that copy now, so that it is judged here.
        client.wait(lambda: any(m.channel == "iopub" and m.at >= t0 for m in client.welcomes),
                    1.0)
    finally:
        client.remove(name)
    if not got:
        raise Fail(f"{claim}, but a new IOPub subscriber got no iopub_welcome "
                   f"within {h.timeout:.0f}s")
    welcome = next(m for m in client.welcomes if m.channel == name)
    if welcome.content.get("subscription") != "":
        raise Fail(f"iopub_welcome subscription is {short(welcome.content.get('subscription'))}"
                   ", the subscription was ''")
    return f"iopub_welcome {1000 * (welcome.at - t0):.0f} ms after subscribing"


def _shutdown(h: Harness, restart: bool) -> tuple[float, str]:
    """shutdown_request on control; returns how long the process took to exit."""
    pid = h.pid()
    req = h.request("control", "shutdown_request", {"restart": restart})
    t0 = time.monotonic()
    reply = h.finish(req, need_idle=False)
    assert reply is not None
    c = reply.content
    if c.get("status") != "ok":
        raise Fail(f"shutdown_reply status {c.get('status')!r}")
    if c.get("restart") is not restart:
        raise Fail(f"shutdown_reply restart is {c.get('restart')!r}, the request said {restart}")
    deadline = t0 + h.timeout
    while h.alive():
        if time.monotonic() > deadline:
            raise Fail(f"the kernel process {pid} still runs {h.timeout:.0f}s after "
                       f"shutdown_request(restart={restart})")
        h.client.pump(0.1)
    return time.monotonic() - t0, f"process {pid}"


@check("lifecycle.restart", "shutdown_request(restart) ends the process; the new one answers")
def lifecycle_restart(h: Harness) -> str:
    try:
        took, which = _shutdown(h, restart=True)
    except Fail:
        h.wedged = True
        raise
    t0 = time.monotonic()
    h.restart()
    hello = h.samples.get("hello")
    if hello is not None:
        _, reply = h.run(hello["code"])
        count = h.count_of(reply)
        ran = f", execution_count {count}"
    else:
        h.finish(h.request("shell", "kernel_info_request"))
        ran = ""
    return (f"{which} exited {took:.2f}s after the reply; the restarted kernel answered "
            f"in {time.monotonic() - t0:.2f}s{ran}")


@check("lifecycle.shutdown", "shutdown_request ends the kernel process")
def lifecycle_shutdown(h: Harness) -> str:
    took, which = _shutdown(h, restart=False)
    return f"{which} exited {took:.2f}s after the reply"
