"""Attacks on stream output (see tests/attacks.py for how they are run and reported).

Item 12: a cell that writes many lines to stderr. Unmerged, every line is a signed
IOPub message (40 MB of stderr became ~7 M messages on a bridge kernel, and the
request was still running 200 s later); merged, the kernel sends a few messages a
second of everything written since the last.
"""

from __future__ import annotations

import time

from raw import Client

from attacks import Outcome, attack, context, mib, start

LINE = "%08d xxxxxxxxxx\n"  # 20 bytes a line


def _stderr_cell(n: int) -> str:
    return f"import sys\nw = sys.stderr.write\nfor i in range({n}):\n    w({LINE!r} % i)\n"


@attack(12, "40 MB of stderr from one cell")
def _stderr_flood(target: str, quick: bool) -> Outcome:
    n = 200_000 if quick else 2_000_000  # 4 MB quick, 40 MB full
    size = n * len(LINE % 0)
    timeout = 120.0 if quick else 600.0
    with start(target) as k, context() as ctx:
        client = Client(ctx, k)
        try:
            client.wait_ready()
            assert client.iopub is not None
            t0 = time.monotonic()
            msg_id = client.execute(_stderr_cell(n))
            try:
                reply = client.reply(msg_id, timeout=timeout)
            except TimeoutError:
                return Outcome(f"no reply within {timeout:.0f} s to {mib(size)} "
                               f"in {n:,} lines", False)
            seconds = time.monotonic() - t0
            msgs = client.iopub.wait_idle(msg_id, timeout)
        finally:
            client.close()
    streams = [m for m in msgs if m.msg_type == "stream"]
    text = "".join(str(m.content.get("text", "")) for m in streams
                   if m.content.get("name") == "stderr")
    complete = text == "".join(LINE % i for i in range(n))
    figure = (f"{mib(size)} in {n:,} lines: {len(msgs):,} IOPub messages "
              f"({len(streams):,} stream), reply after {seconds:.1f} s"
              + ("" if complete else f"; text {'incomplete' if len(text) < size else 'wrong'}"
                 f" ({text.count(chr(10)):,} lines)"))
    held = reply.content.get("status") == "ok" and complete and len(streams) <= n // 100
    return Outcome(figure, held, {"lines": n, "messages": len(msgs), "streams": len(streams),
                                  "seconds": round(seconds, 2)})
