"""Running checks: which to run (``select``), and one kernel through them (``run``).

``lifecycle.start`` is timed here, before any check: every other check needs a kernel
that started. After each check the harness makes sure the kernel still answers; a spec
violation seen while a check ran fails that check, whatever it returned.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from . import groups
from .harness import Harness
from .registry import GROUPS, CheckDef, Fail, KernelGone, Progress, Report, Result, Skip, defined
from .samples import Samples

assert groups  # imported for its checks' registration


def all_checks() -> list[CheckDef]:
    """Every check, in the order they run."""
    return defined()


def select(only: Iterable[str] = (), skip: Iterable[str] = ()) -> list[CheckDef]:
    """The checks to run: ``only`` and ``skip`` name groups or single checks."""
    every = all_checks()
    names = {c.name for c in every}
    only, skip = list(only), list(skip)
    for item in only + skip:
        if item not in GROUPS and item not in names:
            raise ValueError(f"unknown check or group {item!r}; groups: {', '.join(GROUPS)}")

    def matches(c: CheckDef, items: list[str]) -> bool:
        return c.group in items or c.name in items

    return [c for c in every
            if (not only or matches(c, only)) and not matches(c, skip)]



def run(kernel_name: str, samples: Samples, checks: list[CheckDef], progress: Progress, *,
        timeout: float = 10.0, startup_timeout: float = 60.0) -> Report:
    """Start the kernel, run ``checks`` in order, and stop it."""
    t_all = time.monotonic()
    h = Harness(kernel_name, samples, timeout, startup_timeout)
    report = Report(
        kernel=kernel_name,
        display_name=str(h.spec.display_name),
        language=str(h.spec.language),
        interrupt_mode=h.interrupt_mode,
        samples=samples.source,
    )
    progress.begin(kernel_name, len(checks) + 1)
    try:
        progress.start("lifecycle.start")
        gone: str | None = None
        t0 = time.monotonic()
        try:
            took = h.start()
            problems = h.violations_of("start")
            if problems:
                start = Result("lifecycle.start", "lifecycle", "fail", _problems(problems),
                               time.monotonic() - t0)
            else:
                start = Result("lifecycle.start", "lifecycle", "pass",
                               f"answered kernel_info {took:.2f}s after launch",
                               time.monotonic() - t0)
        except KernelGone as exc:
            gone = f"the kernel did not start: {exc}"
            start = Result("lifecycle.start", "lifecycle", "fail", str(exc),
                           time.monotonic() - t0)
        report.kernel_info = dict(h.info)
        report.results.append(start)
        progress.done(start)
        for c in checks:
            progress.start(c.name)
            if gone is not None:
                result = Result(c.name, c.group, "skip", gone, 0.0)
            else:
                result, gone = _run_one(h, c, progress)
            report.results.append(result)
            progress.done(result)
    finally:
        report.messages = h.messages
        report.notes = list(h.notes)
        h.close()
        report.seconds = time.monotonic() - t_all
        progress.end()
    return report


def _problems(problems: list[str]) -> str:
    shown = "; ".join(problems[:3])
    return shown + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")


def _run_one(h: Harness, c: CheckDef, progress: Progress) -> tuple[Result, str | None]:
    """Run one check; returns its result, and why no further check can run (or None)."""
    h.current = c.name
    h.client.current = c.name
    t0 = time.monotonic()
    gone = None
    try:
        outcome, reason = "pass", c.func(h) or ""
    except Fail as exc:
        outcome, reason = "fail", str(exc)
    except Skip as exc:
        outcome, reason = "skip", str(exc)
    except KernelGone as exc:
        outcome, reason = "fail", str(exc)
        gone = f"the kernel is gone: {exc}"
    except Exception as exc:  # a bug in the checker, or a kernel that broke it
        outcome, reason = "fail", f"checker error: {type(exc).__name__}: {exc}"
    seconds = time.monotonic() - t0
    if gone is None and c.name != "lifecycle.shutdown":
        # Still charged to this check: what the kernel sends meanwhile is its aftermath.
        try:
            note = h.ensure_responsive()
        except KernelGone as exc:
            note = None
            gone = f"the kernel is gone: {exc}"
        if note:
            h.notes.append(f"after {c.name}: {note}")
            progress.note(h.notes[-1])
    problems = h.violations_of(c.name)
    if problems:
        spec = "spec violation: " + _problems(problems)
        reason = spec if outcome != "fail" else f"{reason}; {spec}"
        outcome = "fail"
    return Result(c.name, c.group, outcome, reason, seconds), gone
