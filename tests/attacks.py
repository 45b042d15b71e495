"""Attacks a local process can make on a kernel, run against kernelkit and ipykernel 7 side by side.

    python -m tests.attacks                  # every attack, on both kernels, full sizes
    python -m tests.attacks --quick          # the sizes tests/test_attacks.py runs
    python -m tests.attacks --write-docs     # also put the table into docs/reliability.md
    python -m tests.attacks 1 5 8            # only some, by their number
    python -m tests.attacks --only kernelkit # one kernel

Each attack is a function ``run(target, quick) -> Outcome``. ``target`` is ``"kernelkit"``
or ``"ipykernel"``; the attack starts the kernel it needs for that target (``start`` below
gives a Python-executing kernel for both, so that the same cell is sent to each) and
says what happened as one short figure plus whether the kernel held. The test suite runs
every attack against kernelkit and asserts it held; the docs run does both kernels in one
run, so that the figures side by side come from the same machine at the same time.

The numbers are the items of the hardening issue; attacks on parts ipykernel does not
have (the bridge) name why its column is empty.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import zmq

# As pytest and conftest.py do: tests/ (the attack modules) and tests/support (the raw client).
_TESTS = Path(__file__).resolve().parent
sys.path[:0] = [str(_TESTS), str(_TESTS / "support")]
from raw import KernelProcess  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "reliability.md"
START, END = "<!-- attacks:start -->", "<!-- attacks:end -->"

TARGETS = ("kernelkit", "ipykernel")
# The modules that register attacks (each calls ``attack`` at import).
MODULES = ("attacks_zmq", "attacks_bridge", "attacks_files", "attacks_streams")


@dataclass
class Outcome:
    """What one attack did to one kernel: a short figure for the table, and whether it held."""

    figure: str
    held: bool
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Attack:
    item: int
    title: str
    run: Callable[[str, bool], Outcome]
    targets: tuple[str, ...] = TARGETS
    not_applicable: str = ""  # what the table says for a target the attack does not apply to


ATTACKS: dict[int | str, Attack] = {}


def attack(
    item: int, title: str, *, targets: tuple[str, ...] = TARGETS, not_applicable: str = ""
) -> Callable[[Callable[[str, bool], Outcome]], Callable[[str, bool], Outcome]]:
    """Register an attack under its item number (a letter suffix when an item has several)."""

    def register(run: Callable[[str, bool], Outcome]) -> Callable[[str, bool], Outcome]:
        key: int | str = item
        n = 0
        while key in ATTACKS:
            n += 1
            key = f"{item}{'abcdefgh'[n - 1]}"
        ATTACKS[key] = Attack(item, title, run, targets, not_applicable)
        return run

    return register


def all_attacks() -> dict[int | str, Attack]:
    for name in MODULES:
        importlib.import_module(name)
    return dict(sorted(ATTACKS.items(), key=lambda kv: (kv[1].item, str(kv[0]))))


# -- kernels ----------------------------------------------------------------------------------


def kernel_args(target: str, kernel: str = "python") -> tuple[str, list[str]]:
    """(module, arguments) that start ``target``: a Python-executing kernel, or kernelkit's Echo."""
    if target == "ipykernel":
        return "ipykernel_launcher", ["-f", "{cf}"]
    if kernel == "echo":
        return "kernelkit", ["run", "echo", "-f", "{cf}"]
    return "kernelkit", ["run", "kk_testkernels:PythonKernel", "-f", "{cf}"]


@contextlib.contextmanager
def start(target: str, kernel: str = "python", **kw: Any) -> Iterator[KernelProcess]:
    """A kernel for ``target`` in a fresh directory, killed (with its children) afterwards."""
    module, args = kernel_args(target, kernel)
    with tempfile.TemporaryDirectory(prefix="kk-attack-") as tmp:
        kernel_proc = KernelProcess(args, Path(tmp), module=module, **kw)
        try:
            yield kernel_proc
        finally:
            kernel_proc.kill()


@contextlib.contextmanager
def context() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        yield ctx
    finally:
        ctx.destroy(linger=0)


def mib(n: float) -> str:
    return f"{n / (1 << 20):,.0f} MiB" if n >= 10 << 20 else f"{n / (1 << 20):,.1f} MiB"


# -- running and the docs table ---------------------------------------------------------------


Rows = list[tuple[Attack, dict[str, Outcome | None]]]


def run_all(keys: list[str], quick: bool, targets: tuple[str, ...]) -> Rows:
    found = all_attacks()
    rows = []
    for key, att in found.items():
        if keys and str(key) not in keys and str(att.item) not in keys:
            continue
        outcomes: dict[str, Outcome | None] = {}
        for target in targets:
            if target not in att.targets:
                outcomes[target] = None
                continue
            t0 = time.monotonic()
            try:
                outcome = att.run(target, quick)
            except Exception as exc:  # an attack that breaks is a failure, not a crash of the run
                outcome = Outcome(f"attack failed: {type(exc).__name__}: {exc}", False)
            outcome.details.setdefault("seconds", round(time.monotonic() - t0, 1))
            outcomes[target] = outcome
            print(f"{key:>4} {target:<10} {'held' if outcome.held else 'FAILED':<7} "
                  f"{outcome.figure}", flush=True)
        rows.append((att, outcomes))
    return rows


def table(rows: Rows, command: str) -> str:
    import ipykernel

    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Latest run: {when}, `{command}`, on {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, pyzmq {zmq.__version__} (libzmq "
        f"{zmq.zmq_version()}), ipykernel {ipykernel.__version__}.",
        "",
        f"| # | attack | kernelkit | ipykernel {ipykernel.__version__} |",
        "|---|---|---|---|",
    ]
    for att, outcomes in rows:
        cells = []
        for target in TARGETS:
            outcome = outcomes.get(target)
            if outcome is None:
                cells.append(att.not_applicable or "not run")
            else:
                cells.append(("" if outcome.held else "**not held**: ") + outcome.figure)
        lines.append(f"| {att.item} | {att.title} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def write_docs(text: str) -> None:
    doc = DOCS.read_text()
    head, _, rest = doc.partition(START)
    _, _, tail = rest.partition(END)
    DOCS.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("attacks", nargs="*", help="numbers of the attacks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="the test suite's sizes")
    parser.add_argument("--only", choices=TARGETS, help="run against one kernel only")
    parser.add_argument("--write-docs", action="store_true", help="rewrite the table in the docs")
    args = parser.parse_args(argv)
    targets = (args.only,) if args.only else TARGETS
    rows = run_all(args.attacks, args.quick, targets)
    shown = "python -m tests.attacks" + (" --quick" if args.quick else "")
    text = table(rows, shown)
    print(text)
    if args.write_docs:
        write_docs(text)
    failed = [att for att, outs in rows if (o := outs.get("kernelkit")) is not None and not o.held]
    return 1 if failed else 0


if __name__ == "__main__":
    # Run the module the attack modules register into, not a second copy named __main__.
    import attacks

    sys.exit(attacks.main())
