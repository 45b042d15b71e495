"""The TypeScript kernel on Deno (src/kernelkit/typescript) in JupyterLab, as a user sees it.

The kernelspec is installed as a user would install it, `kernelkit install typescript`, into
the prefix the lab reads (tests/conftest.py's). The notebook runs typed code, renders an HTML
table and an SVG, is interrupted from the toolbar in a `while (true) {}` cell and keeps the
variables defined before it. A second notebook makes an ipywidgets IntSlider in TypeScript
(`kernelkit:widgets`), moves it in the page, reads it back in the kernel, moves it from the
kernel, and finds it again after a reload. The README's picture of it is taken on the way
(KERNELKIT_UPDATE_README_IMAGE=1 copies it into docs/images).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from conftest import DENO, ROOT, kernelkit

from .conftest import TYPESCRIPT_KERNELSPEC
from .labpage import OUTPUT_TIMEOUT
from .test_widgets import expect_state_requested, move_slider

if TYPE_CHECKING:

    from .labpage import LabPage

# Whole test, fixtures included: the first install fetches the kernel's parsers from npm.
pytestmark = pytest.mark.timeout(600)

NAME, DISPLAY_NAME = TYPESCRIPT_KERNELSPEC
TS_README_IMAGE = ROOT / "docs" / "images" / "typescript-kernel-in-jupyterlab.png"


@pytest.fixture(scope="module")
def typescript_kernelspec() -> str:
    """`kernelkit install typescript` into the lab's prefix; the kernelspec's name.

    The first install fetches the kernel's parsers from the npm registry (Deno caches them,
    so later runs bundle from that cache); the kernel then starts offline.
    """
    if not Path(DENO).exists():
        pytest.fail(f"Deno is not installed at {DENO}: the TypeScript kernel runs on it",
                    pytrace=False)
    prefix = Path(os.environ["JUPYTER_PATH"].split(os.pathsep)[0]).parent.parent
    done = kernelkit("install", "typescript", "--name", NAME, "--display-name", DISPLAY_NAME,
                     "--prefix", str(prefix), timeout=300)
    if done.returncode != 0:
        pytest.fail("`kernelkit install typescript` failed:\n"
                    + (done.stderr or done.stdout).strip(), pytrace=False)
    return NAME


CELLS = [
    # 0: TypeScript, types and all
    'type Row = { name: string; n: number };\n'
    'const rows: Row[] = [\n'
    '  { name: "alpha", n: 1 },\n'
    '  { name: "beta", n: 22 },\n'
    '  { name: "gamma", n: 333 },\n'
    '];\n'
    'rows.map((r: Row): number => r.n * 2)',
    # 1: an HTML table
    'html`<table>\n'
    '  <thead><tr><th>name</th><th>n</th></tr></thead>\n'
    '  <tbody>${rows.map((r) => `<tr><td>${r.name}</td><td>${r.n}</td></tr>`).join("")}'
    '</tbody>\n'
    '</table>`',
    # 2: an SVG: a bar per row
    "const h = (r: Row) => 30 * Math.log10(r.n + 1);\n"
    "const bar = (r: Row, i: number) => `\n"
    '  <rect x="${i * 50}" y="${90 - h(r)}" width="40" height="${h(r)}" fill="#3178c6"/>\n'
    '  <text x="${i * 50 + 20}" y="106" text-anchor="middle">${r.name}</text>`;\n'
    'svg`<svg xmlns="http://www.w3.org/2000/svg" width="140" height="110"\n'
    '  font-family="sans-serif" font-size="12">\n'
    '  ${rows.map(bar).join("")}\n'
    "</svg>`",
    # 3: a variable to keep
    "const kept = 42;",
    # 4: a loop only an interrupt ends
    "while (true) {}",
    # 5: the session kept its state
    "kept",
]


def test_typescript_notebook(lab: LabPage, typescript_kernelspec: str) -> None:
    """Typed code, an HTML table and an SVG rendered by JupyterLab; a `while (true) {}`
    interrupted from the toolbar ends with KeyboardInterrupt and `kept` is still 42."""
    lab.page.set_viewport_size({"width": 1024, "height": 1100})  # the whole notebook in view
    lab.open_notebook("typescript.ipynb", DISPLAY_NAME, typescript_kernelspec, cells=CELLS)

    lab.run(0)
    lab.expect_output(0, "[ 2, 44, 666 ]")
    lab.expect_prompt(0, 1)

    lab.run(1)
    table = lab.cell(1).locator(".jp-OutputArea-output.jp-RenderedHTMLCommon table")
    expect(table).to_be_visible(timeout=OUTPUT_TIMEOUT)
    expect(table.locator("th")).to_have_text(["name", "n"])
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(table.locator("tbody tr").nth(2).locator("td")).to_have_text(["gamma", "333"])

    lab.run(2)
    # JupyterLab renders image/svg+xml as an <img> of the SVG: it must have decoded
    image = lab.cell(2).locator(".jp-OutputArea-output.jp-RenderedSVG img")
    expect(image).to_be_visible(timeout=OUTPUT_TIMEOUT)
    lab.page.wait_for_function("(img) => img.complete && img.naturalWidth === 140",
                               arg=image.element_handle(), timeout=OUTPUT_TIMEOUT)
    lab.expect_prompt(2, 3)

    lab.run(3)
    lab.expect_prompt(3, 4)
    expect(lab.cell(3).locator(".jp-OutputArea-output")).to_have_count(0)
    lab.wait_kernel_idle()
    lab.shot("rendered")

    lab.run(4)
    lab.expect_prompt(4, "*")
    lab.expect_kernel_status("Busy")
    lab.shot("looping")
    lab.interrupt()
    lab.expect_output_contains(4, "KeyboardInterrupt")
    lab.expect_output_contains(4, "<cell 5>:1:")  # where it hit: the cell's own loop
    expect(lab.cell(4).locator(".jp-OutputArea")).not_to_contain_text("kernelkit.js")
    lab.wait_kernel_idle()
    lab.expect_prompt(4, 5)

    lab.run(5)
    lab.expect_output(5, "42")  # one output: no "session was restarted" notice either
    lab.expect_prompt(5, 6)
    lab.wait_kernel_idle()
    lab.shot("kept")
    lab.notebook_readme_shot(5, TS_README_IMAGE)


def test_typescript_widget(lab: LabPage, typescript_kernelspec: str) -> None:
    """An IntSlider made in TypeScript: rendered by jupyterlab_widgets, moved in the page and
    read by a later cell, moved by the kernel, and shown with its value after a reload."""
    lab.open_notebook("typescript-widget.ipynb", DISPLAY_NAME, typescript_kernelspec, cells=[
        'import { IntSlider } from "kernelkit:widgets";\n'
        'const slider = new IntSlider({ value: 3, max: 10, description: "n" });\n'
        "slider",
        "console.log(`the kernel has n = ${slider.value}`)",
        "slider.value = 9",
        "console.log(`after the reload the kernel has n = ${slider.value}`)",
    ])
    lab.run(0)
    slider = lab.cell(0).locator(".jp-OutputArea-output .widget-slider")
    expect(slider).to_be_visible(timeout=OUTPUT_TIMEOUT)
    # the widget itself, not its text/plain fallback
    expect(lab.cell(0).locator(".jp-OutputArea-output")).not_to_contain_text("IntSlider")
    expect(slider.locator(".widget-label")).to_have_text("n")
    readout = slider.locator(".widget-readout")
    expect(readout).to_have_text("3")
    lab.wait_kernel_idle()
    lab.shot("slider")

    move_slider(lab, slider, "ArrowRight", 4, to=7)
    lab.run(1)
    lab.expect_output(1, "the kernel has n = 7")
    lab.run(2)  # and the other way: the kernel moves the page's slider
    expect(readout).to_have_text("9", timeout=OUTPUT_TIMEOUT)
    lab.wait_kernel_idle()
    lab.shot("moved")

    lab.save()
    mark = lab.reload()
    slider = lab.cell(0).locator(".jp-OutputArea-output .widget-slider")
    readout = slider.locator(".widget-readout")
    expect(readout).to_have_text("9", timeout=OUTPUT_TIMEOUT)  # the kernel's state
    expect_state_requested(lab, mark)
    move_slider(lab, slider, "ArrowLeft", 2, to=7)
    lab.run(3)
    lab.expect_output(3, "after the reload the kernel has n = 7")
    lab.wait_kernel_idle()
    lab.shot("after-reload")
