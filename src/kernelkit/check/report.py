"""Showing results: progress while the checks run, then a table, a summary line or JSON.

rich draws the table and the progress when it is installed (the ``check``
extra); without it the same information is printed as plain text.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TextIO

from .registry import Report, Result

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status

STYLE = {"pass": "green", "fail": "bold red", "skip": "yellow"}


def summary(report: Report) -> str:
    n = report.counts()
    return (f"{report.kernel}: {n['pass']} passed, {n['fail']} failed, {n['skip']} skipped "
            f"in {report.seconds:.1f}s ({report.messages} messages validated)")


def as_json(report: Report) -> dict[str, Any]:
    info = report.kernel_info
    return {
        "kernel": report.kernel,
        "display_name": report.display_name,
        "language": report.language,
        "interrupt_mode": report.interrupt_mode,
        "samples": report.samples,
        "implementation": info.get("implementation"),
        "implementation_version": info.get("implementation_version"),
        "protocol_version": info.get("protocol_version"),
        "results": [r.as_dict() for r in report.results],
        "notes": report.notes,
        "summary": {**report.counts(), "messages": report.messages,
                    "seconds": round(report.seconds, 3)},
    }


def header(report: Report) -> str:
    info = report.kernel_info
    return (f"{report.kernel} ({report.display_name}): {info.get('implementation')} "
            f"{info.get('implementation_version')}, protocol {info.get('protocol_version')}, "
            f"interrupt mode {report.interrupt_mode}, samples: {report.samples}")


# -- rich ------------------------------------------------------------------------------


class RichProgress:
    """A spinner naming the running check, and one line per finished check (on stderr)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.status: Status | None = None
        self.total = 0
        self.n = 0

    def begin(self, kernel: str, total: int) -> None:
        self.total = total
        self.console.print(f"[bold]kernelkit check[/] {kernel}: {total} checks")
        if self.console.is_terminal:
            self.status = self.console.status("starting the kernel")
            self.status.start()

    def start(self, name: str) -> None:
        self.n += 1
        if self.status is not None:
            self.status.update(f"[{self.n}/{self.total}] {name}")

    def done(self, result: Result) -> None:
        style = STYLE[result.result]
        self.console.print(
            f"[{self.n:>2}/{self.total}] [{style}]{result.result:<4}[/] {result.name} "
            f"[dim]({result.seconds:.2f}s)[/]",
            highlight=False,
        )

    def note(self, text: str) -> None:
        self.console.print(f"        [dim]{text}[/]", highlight=False)

    def end(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


def rich_table(report: Report, console: Console) -> None:
    from rich.table import Table

    table = Table(title=header(report), title_justify="left", show_lines=False)
    table.add_column("check", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("reason", overflow="fold")
    table.add_column("time", justify="right", no_wrap=True)
    for r in report.results:
        style = STYLE[r.result]
        table.add_row(r.name, f"[{style}]{r.result}[/]", r.reason, f"{r.seconds:.2f}s")
    console.print(table, highlight=False)
    for note in report.notes:
        console.print(f"[dim]note: {note}[/]", highlight=False)
    style = "bold red" if report.failed else "bold green"
    console.print(f"[{style}]{summary(report)}[/]", highlight=False)


# -- plain text ------------------------------------------------------------------------


class PlainProgress:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total = 0
        self.n = 0

    def begin(self, kernel: str, total: int) -> None:
        self.total = total
        print(f"kernelkit check {kernel}: {total} checks", file=self.stream, flush=True)

    def start(self, name: str) -> None:
        self.n += 1

    def done(self, result: Result) -> None:
        print(f"[{self.n:>2}/{self.total}] {result.result:<4} {result.name} "
              f"({result.seconds:.2f}s)", file=self.stream, flush=True)

    def note(self, text: str) -> None:
        print(f"        {text}", file=self.stream, flush=True)

    def end(self) -> None:
        pass


def plain_table(report: Report) -> str:
    width = max([len(r.name) for r in report.results] + [5])
    lines = [header(report), "", f"{'check':<{width}}  result  time     reason"]
    for r in report.results:
        lines.append(f"{r.name:<{width}}  {r.result:<6}  {r.seconds:6.2f}s  {r.reason}")
    lines += [f"note: {note}" for note in report.notes]
    lines += ["", summary(report)]
    return "\n".join(lines)
