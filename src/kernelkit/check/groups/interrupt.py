"""interrupt: the kernelspec's interrupt mode stops a running execution and harms an idle
kernel not at all.
"""

from __future__ import annotations

import time

from ..harness import (
    Harness,
    error_text,
)
from ..registry import Fail, check


@check("interrupt.running", "interrupt (kernelspec's mode) stops a long-running execution")
def interrupt_running(h: Harness) -> str:
    req = h.start_loop()
    t0 = time.monotonic()
    ireq = h.interrupt()
    try:
        h.wait(lambda: req.reply is not None)
    except Fail as exc:
        raise Fail(f"{h.interrupt_mode} interrupt: {exc}") from None
    if req.reply is None:
        h.wedged = True
        raise Fail(f"{h.interrupt_mode} interrupt: the execution still runs after "
                   f"{h.timeout:.0f}s")
    took = time.monotonic() - t0
    if ireq is not None:
        ireply = h.finish(ireq)
        assert ireply is not None
        if ireply.content.get("status") != "ok":
            raise Fail(f"interrupt_reply status {ireply.content.get('status')!r}")
    h.finish(req)
    assert req.reply is not None
    c = req.reply.content
    if c.get("status") == "ok":
        raise Fail("the interrupted execution was answered status 'ok'")
    hello = h.samples.get("hello")
    if hello is not None:
        h.run(hello["code"])
    detail = error_text(c) if c.get("status") == "error" else c.get("status")
    after = "; the kernel runs code afterwards" if hello is not None else ""
    return f"{h.interrupt_mode} interrupt: {detail} after {took:.2f}s{after}"


@check("interrupt.idle", "interrupting an idle kernel does no harm")
def interrupt_idle(h: Harness) -> str:
    ireq = h.interrupt()
    if ireq is not None:
        reply = h.finish(ireq)
        assert reply is not None
        if reply.content.get("status") != "ok":
            raise Fail(f"interrupt_reply status {reply.content.get('status')!r}")
    else:
        h.client.settle(0.5)
    if not h.alive():
        raise Fail(f"the kernel died{h.exit_info()}")
    hello = h.samples.get("hello")
    if hello is not None:
        h.run(hello["code"])
        return f"{h.interrupt_mode} interrupt while idle; the kernel runs code afterwards"
    h.finish(h.request("shell", "kernel_info_request"))
    return f"{h.interrupt_mode} interrupt while idle; the kernel still answers"
