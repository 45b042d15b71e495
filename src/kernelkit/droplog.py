"""Logging dropped messages without letting a sender flood the log.

Anyone who can reach a port can send garbage, and without a key anything at all:
one warning per dropped message let a sender make the kernel write 28 times the
bytes it was sent. Per channel, the first ``BURST`` drops in each ``WINDOW`` are
logged with their reason; the rest are counted, and one line sums them up when the
window is over (``flush``, which the control thread calls periodically and at exit).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

BURST = 10
WINDOW_S = 1.0
SUMMARY = "dropped {count} more malformed messages on {channel} (logged {burst} per {window:g} s)"
# Written once as the kernel closes, if it dropped anything: what an operator reading the
# log of a kernel that was probed or flooded wants first (tests/reliability/fuzz.py reads it).
TOTALS = "malformed messages dropped since start: {channels}"


class DropLog:
    """Rate-limited warnings for dropped messages; safe from any thread (one lock)."""

    def __init__(
        self,
        warn: Callable[[str], None],
        burst: int = BURST,
        window: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._warn = warn
        self.burst = burst
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        # channel -> [window start, drops logged in it, drops only counted]
        self._windows: dict[str, list[float]] = {}
        # channel -> every drop since start, counted here where each drop happens
        self._totals: dict[str, int] = {}

    def dropped(self, channel: str, reason: str) -> None:
        now = self._clock()
        with self._lock:
            self._totals[channel] = self._totals.get(channel, 0) + 1
            state = self._windows.get(channel)
            summary = None
            if state is None or now - state[0] >= self.window:
                if state is not None and state[2]:
                    summary = self._summary(channel, int(state[2]))
                state = self._windows[channel] = [now, 0, 0]
            if state[1] < self.burst:
                state[1] += 1
                line: str | None = f"dropped a malformed message on {channel}: {reason}"
            else:
                state[2] += 1
                line = None
        if summary is not None:
            self._warn(summary)
        if line is not None:
            self._warn(line)

    def flush(self, force: bool = False) -> None:
        """Write the summary of every window that is over (all of them if ``force``)."""
        now = self._clock()
        lines = []
        with self._lock:
            for channel, state in self._windows.items():
                if state[2] and (force or now - state[0] >= self.window):
                    lines.append(self._summary(channel, int(state[2])))
                    state[2] = 0
        for line in lines:
            self._warn(line)

    def totals(self) -> dict[str, int]:
        """Drops per channel since start (a copy)."""
        with self._lock:
            return dict(self._totals)

    def log_totals(self) -> None:
        """Write the TOTALS line, if anything was dropped (at close, after ``flush``)."""
        totals = self.totals()
        if totals:
            channels = ", ".join(f"{c} {n:,}" for c, n in sorted(totals.items()))
            self._warn(TOTALS.format(channels=channels))

    def _summary(self, channel: str, count: int) -> str:
        return SUMMARY.format(count=count, channel=channel, burst=self.burst, window=self.window)
