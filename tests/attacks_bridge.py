"""Attacks on the bridge: a backend that writes at the wrong moment, hosts that die, huge lines.

ipykernel has no bridge (no backend process speaking JSON-RPC on stdio), so these run
against kernelkit only. The kernels are started by jupyter_client from a kernelspec of
their own (tests/support/hardening_bridge.py), as Jupyter starts them. See tests/attacks.py
for how attacks are run and reported.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))

from hardening_bridge import FAULT, PY, Bridge, kill, streams, wait_gone
from raw import peak_rss

from attacks import Outcome, attack, mib

NO_BRIDGE = "no bridge in ipykernel (no backend process)"


@attack(9, "bridge output: stderr before the reply, output after it", targets=("kernelkit",),
        not_applicable=NO_BRIDGE)
def _output_order(target: str, quick: bool) -> Outcome:
    # The newcomer: a backend written from the doc alone (raw protocol), which
    # writes 4,096 stderr lines just before its reply, then output after the reply.
    n = 4096
    b = Bridge(FAULT)
    try:
        _, msgs = b.execute(f"stderr-lines {n}")
        shown = streams(msgs, "stderr").count("\n")
        _, msgs = b.execute("after-reply")
        late = ("late text line", "late notification", "late stderr")
        logged = b.wait_logged(*late)
        _, nxt = b.execute("next")
        text = streams(nxt, "stdout") + streams(nxt, "stderr")
        misplaced = sum(t in text for t in late) + text.count("err ")
        only_logged = b.log().count("backend stderr: err ")
        held = shown == n and only_logged == 0 and misplaced == 0 and logged
        return Outcome(
            f"{shown:,} of {n:,} stderr lines in their cell, {only_logged} only logged; "
            f"{misplaced} of {len(late)} outputs after the reply under the next cell "
            f"({'all' if logged else 'not all'} logged)",
            held,
        )
    finally:
        b.close()


def _family_at_work(b: Bridge, busy: bool) -> list[int]:
    """The host, its backend with a helper process it started, and the backend's keeper."""
    b.execute("helper")
    if busy:
        b.wait_started(b.start("busy"))  # the backend at 100 % CPU
    return [b.host.pid, *(p.pid for p in b.family())]


@attack(10, "bridge backends and their children after the host dies", targets=("kernelkit",),
        not_applicable=NO_BRIDGE)
def _outlive(target: str, quick: bool) -> Outcome:
    parts = []
    held = True
    deaths: list[tuple[str, Any]] = [
        ("SIGKILL", lambda b: os.kill(b.host.pid, signal.SIGKILL)),
        ("group kill", lambda b: b.km.shutdown_kernel(now=True)),
        ("SIGHUP", lambda b: os.kill(b.host.pid, signal.SIGHUP)),
        ("clean shutdown", lambda b: b.km.shutdown_kernel(now=False)),
    ]
    for name, end in deaths:
        b = Bridge(PY)
        try:
            pids = _family_at_work(b, busy=name != "clean shutdown")
            end(b)
            left, waited = wait_gone(pids, 15)
            kill(left)
            held = held and not left
            parts.append(f"{name} {len(left)} of {len(pids) - 1} left ({waited:.2f} s)")
        finally:
            b.close()
    # A child that keeps the backend's stdout open after the backend died.
    b = Bridge(PY)
    try:
        t0 = time.monotonic()
        reply, msgs = b.execute("hold-and-die", timeout=30)
        took = time.monotonic() - t0
        child = int(streams(msgs, "stdout") or 0)
        left, _ = wait_gone([child], 15)
        kill(left)
        died = reply.get("ename") == "BackendDied"
        held = held and died and not left
        parts.append(f"child holding stdout: {reply.get('ename')} in {took:.2f} s, "
                     f"child {'left' if left else 'killed'}")
    finally:
        b.close()
    return Outcome("; ".join(parts), held)


@attack(11, "bridge backend writes one huge stdout line, huge stderr lines",
        targets=("kernelkit",), not_applicable=NO_BRIDGE)
def _huge_lines(target: str, quick: bool) -> Outcome:
    out_size = 200_000_000 if quick else 500_000_000
    idle_err = 100_000_000 if quick else 500_000_000  # after the reply: only logged
    # In a cell, all of it goes to the client; more than a client reads at once is cut by
    # IOPub's own bound (item 8), so the in-cell line stays at what a client takes.
    cell_err = 20_000_000 if quick else 100_000_000
    b = Bridge(PY)
    try:
        (reply, _), base, peak = peak_rss(b.host, lambda: b.execute(f"bigline {out_size}", 300))
        refused = reply.get("ename") == "BackendError" and "maximum" in reply.get("evalue", "")
        restarted = b.execute("again")[0].get("status") == "ok"
        out_peak = peak - base

        def between() -> bool:
            b.execute(f"bigerr-later {idle_err}")
            return b.wait_logged("bigerr done", timeout=300)

        logged, base2, peak2 = peak_rss(b.host, between)
        kept2 = b.host.memory_info().rss - base2
        (reply3, msgs), base3, peak3 = peak_rss(
            b.host, lambda: b.execute(f"bigerr {cell_err}", 300))
        shown = len(streams(msgs, "stderr"))
        time.sleep(0.5)
        kept3 = b.host.memory_info().rss - base3
        bound = 64 << 20
        held = (refused and restarted and out_peak < bound + (48 << 20) and logged
                and peak2 - base2 < bound and kept2 < bound
                and reply3.get("status") == "ok" and shown == cell_err + 1 and kept3 < bound)
        return Outcome(
            f"{mib(out_size)} stdout line: {'error reply, backend restarted' if refused else reply}"
            f", host peak +{mib(out_peak)}; {mib(idle_err)} stderr line between requests: "
            f"logged cut short, host peak +{mib(peak2 - base2)}, +{mib(max(kept2, 0))} kept; "
            f"{mib(cell_err)} stderr line in a cell: all shown, host peak "
            f"+{mib(peak3 - base3)}, +{mib(max(kept3, 0))} kept",
            held,
        )
    finally:
        b.close()
