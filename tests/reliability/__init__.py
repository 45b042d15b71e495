"""Reliability runs against live kernels: fuzzing, load and faults, with the figures they produce.

    python -m tests.reliability                  # full sizes (100,000-execute soak, ...)
    python -m tests.reliability --quick          # the sizes tests/test_reliability.py runs
    python -m tests.reliability --write-docs     # also put the figures into docs/reliability.md
    python -m tests.reliability fuzz soak        # only some scenarios (names below)

Every scenario starts its own kernel processes (``python -m kernelkit run …`` with a fresh
connection file), talks to them with the raw client of ``tests/support/raw.py``, and
returns a ``Result``: named figures plus a list of failures (empty when everything held).
The test suite calls the same functions with smaller sizes and asserts there are no failures.

Where each part lives: ``fuzz.py`` (the live fuzzer), ``load.py`` (soak, many clients, big
messages, slow subscribers), ``faults.py`` (vanishing clients, SIGTERM under load,
interrupt storms, parent death, backend kills), ``common.py`` (the kernels they run and
the request rounds they check), ``report.py`` (results and the docs table); this module
holds the scenario table and its sizes, ``__main__.py`` the command.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The raw client lives in tests/support (on sys.path under pytest; not under ``python -m``).
_SUPPORT = str(Path(__file__).resolve().parents[1] / "support")
if _SUPPORT not in sys.path:
    sys.path.insert(0, _SUPPORT)

from .faults import (  # noqa: E402
    bridge_sigkill,
    interrupt_storm,
    parent_death,
    sigterm_under_load,
    vanishing_clients,
)
from .fuzz import fuzz  # noqa: E402
from .load import big_messages, many_clients, slow_subscribers, soak  # noqa: E402
from .report import Result  # noqa: E402

SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "fuzz": {"total": 100_000},
        "fuzz_unsigned": {"total": 20_000, "signed": False},
        "soak": {"n": 100_000},
        "clients": {"clients": 8, "each": 2_500},
        "big": {},
        "vanish": {"rounds": 50},
        "slow_iopub": {"executes": 5_000},
        "sigterm": {"rounds": 3},
        "parent": {"rounds": 3},
        "interrupts": {"signals": 10_000, "executes": 1_000, "messages": 3_000},
        "bridge_kill": {"executes": 1_000, "min_kills": 300},
    },
    "quick": {
        "fuzz": {"total": 10_000, "huge_max": 8 << 20},
        "fuzz_unsigned": {"total": 2_000, "signed": False, "huge_max": 4 << 20},
        "soak": {"n": 10_000},
        "clients": {"clients": 8, "each": 250},
        "big": {},
        "vanish": {"rounds": 10},
        "slow_iopub": {"executes": 1_000},
        "sigterm": {"rounds": 1},
        "parent": {"rounds": 1},
        "interrupts": {"signals": 1_000, "executes": 150, "messages": 150},
        "bridge_kill": {"executes": 150, "min_kills": 30},
    },
}

SCENARIOS: dict[str, Callable[..., Result]] = {
    "fuzz": fuzz,
    "fuzz_unsigned": fuzz,
    "soak": soak,
    "clients": many_clients,
    "big": big_messages,
    "vanish": vanishing_clients,
    "slow_iopub": slow_subscribers,
    "sigterm": sigterm_under_load,
    "parent": parent_death,
    "interrupts": interrupt_storm,
    "bridge_kill": bridge_sigkill,
}


def run(names: list[str], size: str) -> list[Result]:
    results = []
    for name in names:
        print(f"-- {name} ...", flush=True)
        try:
            result = SCENARIOS[name](**SIZES[size][name])
        except Exception as exc:  # a harness failure is a failure, not a crash of the run
            result = Result(name, name, failures=[f"{type(exc).__name__}: {exc}"])
        print(result.text(), flush=True)
        results.append(result)
    return results
