"""Every attack of tests/attacks.py against kernelkit, at the quick sizes: each must hold.

The figures side by side with ipykernel are made by ``python -m tests.attacks --write-docs``.
"""

from __future__ import annotations

import pytest

import attacks

ALL = attacks.all_attacks()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("key", list(ALL), ids=[f"{k}-{a.title[:40]}" for k, a in ALL.items()])
def test_kernelkit_holds(key: int | str) -> None:
    att = ALL[key]
    outcome = att.run("kernelkit", True)
    print(f"{key}: {att.title}: {outcome.figure} {outcome.details}")
    assert outcome.held, outcome.figure
