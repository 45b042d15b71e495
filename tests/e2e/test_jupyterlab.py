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


def test_subshell_console_runs_code_while_the_notebook_is_busy(lab: LabPage) -> None:
    """JupyterLab's "New Subshell Console for Notebook" on a kernel whose hooks may run
    concurrently: the console's code runs and prints while the notebook's cell still runs."""
    from playwright.sync_api import expect

    lab.new_notebook("concurrent commands", "kk-concurrent")
    lab.run_cell(0, "sleep 120")  # prints "started", then sleeps
    lab.expect_output(0, "started")
    lab.expect_prompt(0, "*")
    lab.shot("notebook-busy")

    page = lab.page
    page.keyboard.press("Control+Shift+C")
    palette = page.locator(".lm-CommandPalette-input")
    expect(palette).to_be_visible()
    palette.fill("New Subshell Console for Notebook")
    item = page.locator(".lm-CommandPalette-item", has_text="New Subshell Console for Notebook")
    expect(item.first).to_be_visible()
    lab.shot("palette")
    item.first.click()

    console = page.locator(".jp-CodeConsole")
    expect(console).to_be_visible()
    # JupyterLab creates the console's subshell once the console's session is ready, and
    # until then sends what is typed to the main shell: wait until the kernel has it.
    wait_for_a_subshell(lab)
    editor = console.locator(".jp-CodeConsole-promptCell .cm-content")
    editor.click()
    page.keyboard.type("hello from a subshell")
    page.keyboard.press("Shift+Enter")
    output = console.locator(".jp-CodeConsole-content .jp-OutputArea-output")
    expect(output.last).to_have_text("hello from a subshell", timeout=30_000)
    lab.expect_prompt(0, "*")  # the notebook's cell is still running
    lab.shot("subshell-console-answered")

    lab.interrupt()
    lab.expect_output_contains(0, "KeyboardInterrupt")
    lab.shot("notebook-interrupted")


def wait_for_a_subshell(lab: LabPage, timeout: float = 60) -> None:
    """Ask the notebook's kernel itself (a second client, on control) until it has a subshell."""
    import time

    from jupyter_client import BlockingKernelClient

    assert lab.server.runtime is not None
    kernel_id = lab.session()["kernel"]["id"]
    kc = BlockingKernelClient(connection_file=str(lab.server.runtime / f"kernel-{kernel_id}.json"))
    kc.load_connection_file()
    kc.start_channels()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = kc.session.msg("list_subshell_request", {})
            kc.control_channel.send(msg)
            reply = kc.control_channel.get_msg(timeout=10)
            if reply["content"].get("subshell_id"):
                return
            time.sleep(0.2)
        raise AssertionError("JupyterLab did not create a subshell for its console")
    finally:
        kc.stop_channels()
