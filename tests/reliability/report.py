"""A scenario's result, and the figures as markdown for docs/reliability.md."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import zmq
from raw import ROOT

DOCS = ROOT / "docs" / "reliability.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"


# -- results -------------------------------------------------------------------------------


@dataclass
class Result:
    """What one scenario tried and what held: figures (label -> value) and failures."""

    name: str
    title: str
    figures: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def check(self, ok: bool, message: str) -> bool:
        if not ok:
            self.failures.append(message)
        return ok

    def text(self) -> str:
        verdict = "held" if not self.failures else "FAILED"
        lines = [f"{self.title} ({self.seconds:.1f} s): {verdict}"]
        for label, value in self.figures.items():
            lines.append(f"  {label}: {_fmt(value)}")
        lines += [f"  FAILURE: {f}" for f in self.failures]
        return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    return str(value)


def markdown(results: list[Result], command: str) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Latest run: {when}, `{command}`, on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"pyzmq {zmq.__version__} (libzmq {zmq.zmq_version()}).",
        "",
    ]
    for r in results:
        verdict = "held" if not r.failures else "**FAILED**"
        lines += [f"**{r.title}** — {verdict} ({r.seconds:.0f} s)", ""]
        lines += ["| | |", "|---|---|"]
        for label, value in r.figures.items():
            lines.append(f"| {label.strip()} | {_fmt(value)} |")
        for f in r.failures:
            lines.append(f"| failure | {f} |")
        lines.append("")
    return "\n".join(lines)


def write_docs(results: list[Result], command: str) -> None:
    text = DOCS.read_text()
    start, end = text.index(START) + len(START), text.index(END)
    DOCS.write_text(text[:start] + "\n" + markdown(results, command) + "\n" + text[end:])
