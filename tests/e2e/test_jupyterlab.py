"""kernelkit kernels in JupyterLab, driven through its UI as a user would.

Screenshots of every step: test-artifacts/e2e/<test>/. The README's picture is taken by
test_echo_kernel_in_a_notebook (KERNELKIT_UPDATE_README_IMAGE=1 copies it into docs/images).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conftest import DENO

if TYPE_CHECKING:
    from .labpage import LabPage

# Whole test, JupyterLab's start included for the first; the waits inside are far shorter.
pytestmark = pytest.mark.timeout(300)


def test_echo_kernel_in_a_notebook(lab: LabPage) -> None:
    lab.new_notebook("Echo (kernelkit)", "kernelkit-echo")

    lab.run_cell(0, "Hello, JupyterLab!")
    lab.expect_output(0, "Hello, JupyterLab!")
    lab.expect_prompt(0, 1)
    lab.wait_kernel_idle()
    lab.shot("first-cell")

    lab.run_cell(1, "as useful as a parrot")
    lab.expect_output(1, "as useful as a parrot")
    lab.expect_prompt(1, 2)
    lab.expect_prompt(0, 1)
    lab.wait_kernel_idle()
    lab.shot("second-cell")
    lab.readme_shot()


def test_interrupt_and_restart_a_busy_kernel(lab: LabPage) -> None:
    lab.new_notebook("commands", "kk-commands")

    lab.run_cell(0, "loop")  # prints "started", then loops forever
    lab.expect_output(0, "started")
    lab.expect_prompt(0, "*")
    lab.expect_kernel_status("Busy")
    lab.shot("busy")
    lab.interrupt()
    lab.expect_output_contains(0, "KeyboardInterrupt")
    lab.wait_kernel_idle()
    lab.expect_prompt(0, 1)
    lab.shot("interrupted")

    lab.run_cell(1, "still here")  # a command it does not know: echoed
    lab.expect_output(1, "still here")
    lab.expect_prompt(1, 2)

    lab.run_cell(2, "loop")
    lab.expect_output(2, "started")
    lab.expect_kernel_status("Busy")
    lab.shot("busy-again")
    lab.restart()
    lab.expect_not_running(2)
    lab.shot("restarted")

    lab.run_cell(3, "count")  # prints the kernel's execution count
    lab.expect_output(3, "1")
    lab.expect_prompt(3, 1)
    lab.wait_kernel_idle()
    lab.shot("count-after-restart")


def test_deno_echo_kernel_through_the_bridge(lab: LabPage) -> None:
    if not Path(DENO).exists():
        pytest.skip(f"Deno is not installed at {DENO}: no Deno Echo kernel to test")
    lab.new_notebook("Echo", "kk-deno-echo")

    lab.run_cell(0, "Hello from Deno")
    lab.expect_output(0, "Hello from Deno")
    lab.expect_prompt(0, 1)
    lab.run_cell(1, "squawk")
    lab.expect_output(1, "squawk")
    lab.expect_prompt(1, 2)
    lab.wait_kernel_idle()
    lab.shot("two-cells")

    lab.restart()
    lab.run_cell(2, "after restart")
    lab.expect_output(2, "after restart")
    lab.expect_prompt(2, 1)
    lab.wait_kernel_idle()
    lab.shot("after-restart")
