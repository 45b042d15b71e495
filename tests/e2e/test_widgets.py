"""Jupyter widgets in JupyterLab, from kernelkit kernels: real jupyterlab_widgets and anywidget.

Each test opens a notebook of prepared cells, displays widgets, works them in the page as a
user would (keyboard on a slider, clicks on buttons), and checks with a later cell that the
kernel received the values. Then it reloads the page (the widgets must come back with their
state: the page asks the kernel for it with the jupyter.widget.control comm's
request_states) and restarts the kernel (the views are disconnected, the new kernel has no
comms and the old kernel's processes are gone).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from conftest import ROOT

from .labpage import KERNEL_TIMEOUT, OUTPUT_TIMEOUT

if TYPE_CHECKING:
    from jupyter_client.blocking.client import BlockingKernelClient
    from playwright.sync_api import Locator

    from .labpage import LabPage

pytestmark = pytest.mark.timeout(420)

DENO_README_IMAGE = ROOT / "docs" / "images" / "deno-widgets-in-jupyterlab.png"
PYTHON = ("kk-python", "kk-python")  # kk_testkernels:PythonKernel: exec, with display()

# anywidget's front end: a button showing the model's count; a click adds one and syncs.
COUNTER_ESM = """
function render({ model, el }) {
  const button = document.createElement("button");
  button.className = "kk-counter";
  const show = () => { button.textContent = `clicked ${model.get("count")} times`; };
  button.addEventListener("click", () => {
    model.set("count", model.get("count") + 1);
    model.save_changes();
  });
  model.on("change:count", show);
  show();
  el.appendChild(button);
}
export default { render };
"""


# -- the kernel behind the page ------------------------------------------------------------


@contextmanager
def kernel_client(lab: LabPage) -> Iterator[BlockingKernelClient]:
    """A second client of the notebook's kernel (the page is the first)."""
    from jupyter_client.blocking.client import BlockingKernelClient

    assert lab.server.runtime is not None
    kernel_id = lab.session()["kernel"]["id"]
    kc = BlockingKernelClient(connection_file=str(lab.server.runtime / f"kernel-{kernel_id}.json"))
    kc.load_connection_file()
    kc.start_channels()
    try:
        yield kc
    finally:
        kc.stop_channels()


def comm_info(lab: LabPage) -> dict[str, dict[str, str]]:
    """The kernel's open comms, from its comm_info_reply."""
    with kernel_client(lab) as kc:
        msg = kc.session.msg("comm_info_request", {})
        kc.shell_channel.send(msg)
        deadline = time.monotonic() + 30
        while True:
            reply = kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                assert reply["content"]["status"] == "ok", reply["content"]
                return dict(reply["content"]["comms"])


def wait_no_comms(lab: LabPage) -> None:
    """The kernel reports no open comms (the page may briefly hold a control comm)."""
    deadline = time.monotonic() + 30
    comms = comm_info(lab)
    while comms:
        if time.monotonic() > deadline:
            raise AssertionError(f"the restarted kernel still has comms: {comms}")
        time.sleep(0.2)
        comms = comm_info(lab)


def _processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command line) of every process, from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace")
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        found[int(entry.name)] = (int(ppid), state, cmdline)
    return found


def kernel_processes(lab: LabPage) -> set[int]:
    """The live processes of the notebook's kernel: the one given its connection file, and
    all their descendants (a bridge backend, and whatever it started)."""
    kernel_id = lab.session()["kernel"]["id"]
    procs = _processes()
    pids = {pid for pid, (_, state, cmd) in procs.items()
            if f"kernel-{kernel_id}.json" in cmd and state != "Z"}
    grew = True
    while grew:
        more = {pid for pid, (ppid, state, _) in procs.items()
                if ppid in pids and pid not in pids and state != "Z"}
        pids |= more
        grew = bool(more)
    return pids


def wait_gone(pids: set[int]) -> None:
    """Every one of `pids` has exited (a zombie has exited; only its parent has not looked)."""
    deadline = time.monotonic() + 30
    while True:
        alive = {pid for pid, (_, state, _) in _processes().items()
                 if pid in pids and state != "Z"}
        if not alive:
            return
        if time.monotonic() > deadline:
            procs = _processes()
            raise AssertionError("processes of the old kernel outlived its restart: "
                                 + "; ".join(f"{pid}: {procs[pid][2]}" for pid in alive
                                             if pid in procs))
        time.sleep(0.2)


def restart_and_check_nothing_is_left(lab: LabPage, views: Locator | None,
                                      backend: str | None = None) -> None:
    """Restart from the toolbar: the old kernel's processes end (`backend`: a word in the
    command line of the bridge backend among them), the page's widget `views` are marked
    disconnected, and the new kernel has no comms."""
    old = kernel_processes(lab)
    assert old, "found no process of the notebook's kernel"
    if backend is not None:
        procs = _processes()
        assert any(backend in procs[pid][2] for pid in old if pid in procs), (
            f"no {backend} process among the kernel's: "
            + "; ".join(procs[pid][2] for pid in old if pid in procs))
    assert comm_info(lab), "the kernel lists no comms before the restart"
    lab.restart()
    wait_gone(old)
    new = kernel_processes(lab)
    assert new and not new & old, (old, new)
    if views is not None:
        assert views.count() >= 1, "no widget view to look at"
        for i in range(views.count()):
            expect(views.nth(i)).to_have_class(_has("jupyter-widgets-disconnected"),
                                               timeout=KERNEL_TIMEOUT)
    wait_no_comms(lab)


def _has(css_class: str) -> re.Pattern[str]:
    """Matches a class attribute that holds `css_class`."""
    return re.compile(rf"(^|\s){re.escape(css_class)}(\s|$)")


def expect_state_requested(lab: LabPage, mark: int) -> None:
    """Since `mark`, the page asked the kernel for the widgets' states on the control comm
    (request_states) and the kernel answered (update_states)."""
    deadline = time.monotonic() + OUTPUT_TIMEOUT / 1000
    while True:
        sent, received = lab.frames_since(mark, "sent"), lab.frames_since(mark, "received")
        if '"request_states"' in sent and '"update_states"' in received:
            return
        if time.monotonic() > deadline:
            raise AssertionError("the reloaded page did not ask for the widgets' states over "
                                 "the control comm, or the kernel did not answer: "
                                 f"request_states sent: {'request_states' in sent}, "
                                 f"update_states received: {'update_states' in received}")
        lab.pump()


# A comm_msg from the page setting a model's value, or count, to a number; a button click.
VALUE = r'"value":\s*{}\b'
COUNT = r'"count":\s*{}\b'
CLICK = r'"event":\s*"click"'


def move_slider(lab: LabPage, slider: Locator, key: str, times: int, to: int) -> None:
    """Press an arrow key on the slider's handle, as a keyboard user moves it; the page
    then shows ``to`` and the kernel has handled the comm message that carries it."""
    mark = len(lab.frames)
    slider.locator(".noUi-handle").focus()
    for _ in range(times):
        lab.page.keyboard.press(key)
    expect(slider.locator(".widget-readout")).to_have_text(str(to))
    lab.wait_comm_msgs_handled(mark, VALUE.format(to))


# -- the tests ---------------------------------------------------------------------------


def test_ipywidgets_slider_in_a_python_kernel(lab: LabPage) -> None:
    """An ipywidgets IntSlider in a kernelkit Python kernel, moved with the keyboard."""
    lab.open_notebook("slider.ipynb", *PYTHON, cells=[
        'import ipywidgets as w\ns = w.IntSlider(value=3, description="n")\ndisplay(s)',
        'print(f"the kernel has n = {s.value}")',
        'print(f"after the reload the kernel has n = {s.value}")',
    ])
    lab.run(0)
    slider = lab.cell(0).locator(".jp-OutputArea-output .widget-slider")
    expect(slider).to_be_visible(timeout=OUTPUT_TIMEOUT)
    # the widget itself, not its text/plain fallback
    expect(lab.cell(0).locator(".jp-OutputArea-output")).not_to_contain_text("IntSlider(")
    readout = slider.locator(".widget-readout")
    expect(readout).to_have_text("3")
    lab.wait_kernel_idle()
    lab.shot("slider")

    move_slider(lab, slider, "ArrowRight", 4, to=7)
    lab.run(1)
    lab.expect_output(1, "the kernel has n = 7")
    lab.wait_kernel_idle()
    lab.shot("moved")

    lab.save()
    mark = lab.reload()
    slider = lab.cell(0).locator(".jp-OutputArea-output .widget-slider")
    expect(slider).to_be_visible(timeout=OUTPUT_TIMEOUT)
    readout = slider.locator(".widget-readout")
    expect(readout).to_have_text("7")  # from the kernel: the notebook keeps no widget state
    expect_state_requested(lab, mark)
    lab.shot("reloaded")
    # still two-way after the reload
    move_slider(lab, slider, "ArrowLeft", 1, to=6)
    lab.run(2)
    lab.expect_output(2, "after the reload the kernel has n = 6")
    lab.wait_kernel_idle()
    lab.shot("moved-after-reload")

    restart_and_check_nothing_is_left(lab, lab.notebook.locator(".widget-slider"))
    lab.shot("restarted")


def test_anywidget_counter_in_a_python_kernel(lab: LabPage) -> None:
    """An anywidget (an _esm module rendering a button) whose clicks the kernel counts."""
    lab.open_notebook("counter.ipynb", *PYTHON, cells=[
        "import anywidget, traitlets\n\n"
        "class Counter(anywidget.AnyWidget):\n"
        f"    _esm = '''{COUNTER_ESM}'''\n"
        "    count = traitlets.Int(0).tag(sync=True)\n\n"
        "counter = Counter()\n"
        "display(counter)",
        'print(f"the kernel counted {counter.count} clicks")',
    ])
    lab.run(0)
    button = lab.cell(0).locator(".jp-OutputArea-output button.kk-counter")
    expect(button).to_have_text("clicked 0 times", timeout=OUTPUT_TIMEOUT)
    lab.wait_kernel_idle()
    lab.shot("counter")
    mark = len(lab.frames)
    for n in range(1, 4):
        button.click()
        expect(button).to_have_text(f"clicked {n} times")
    lab.wait_comm_msgs_handled(mark, COUNT.format(3))
    lab.run(1)
    lab.expect_output(1, "the kernel counted 3 clicks")
    lab.wait_kernel_idle()
    lab.shot("clicked")

    lab.save()
    mark = lab.reload()
    button = lab.cell(0).locator(".jp-OutputArea-output button.kk-counter")
    expect(button).to_have_text("clicked 3 times", timeout=OUTPUT_TIMEOUT)
    expect_state_requested(lab, mark)
    lab.shot("reloaded")

    # anywidget's views do not show that their model is disconnected (ipywidgets' own do,
    # checked in the slider tests), so only the kernel's side is checked here.
    restart_and_check_nothing_is_left(lab, None)
    lab.shot("restarted")



def test_deno_widgets_example(lab: LabPage, widget_kernelspecs: dict[str, str]) -> None:
    """examples/deno/widgets.ts behind the bridge: an IntSlider, a Button and an anywidget
    counter made in TypeScript, worked in the page; the backend gets the values, and its
    own change of the slider's value moves the page's slider."""
    if "kk-deno-widgets" in widget_kernelspecs:
        pytest.fail("the Deno widgets example's kernelspec could not be installed:\n"
                    + widget_kernelspecs["kk-deno-widgets"], pytrace=False)
    lab.open_notebook("deno-widgets.ipynb", "Widgets (Deno)", "kk-deno-widgets", cells=[
        "slider", "button", "value", "clicks", "counter", "count", "value", "clicks", "set 9",
    ])
    lab.run(0)
    slider = lab.cell(0).locator(".jp-OutputArea-output .widget-slider")
    expect(slider).to_be_visible(timeout=OUTPUT_TIMEOUT)
    readout = slider.locator(".widget-readout")
    expect(readout).to_have_text("5")
    lab.run(1)
    button = lab.cell(1).locator(".jp-OutputArea-output button.widget-button")
    expect(button).to_have_text("Click me", timeout=OUTPUT_TIMEOUT)
    lab.wait_kernel_idle()
    lab.shot("widgets")

    mark = len(lab.frames)
    move_slider(lab, slider, "ArrowRight", 2, to=7)
    for _ in range(3):
        button.click()
    lab.wait_comm_msgs_handled(mark, CLICK, count=3)
    lab.run(2)
    lab.expect_output(2, "7")
    lab.run(3)
    lab.expect_output(3, "3")
    lab.wait_kernel_idle()
    lab.notebook_readme_shot(3, DENO_README_IMAGE)

    lab.run(4)
    counter = lab.cell(4).locator(".jp-OutputArea-output button.kk-counter")
    expect(counter).to_have_text("count is 0", timeout=OUTPUT_TIMEOUT)
    mark = len(lab.frames)
    for n in range(1, 3):
        counter.click()
        expect(counter).to_have_text(f"count is {n}")
    lab.wait_comm_msgs_handled(mark, COUNT.format(2))
    lab.run(5)
    lab.expect_output(5, "2")
    lab.wait_kernel_idle()
    lab.shot("counter")

    lab.save()
    mark = lab.reload()
    slider = lab.cell(0).locator(".jp-OutputArea-output .widget-slider")
    readout = slider.locator(".widget-readout")
    expect(readout).to_have_text("7", timeout=OUTPUT_TIMEOUT)
    button = lab.cell(1).locator(".jp-OutputArea-output button.widget-button")
    expect(button).to_have_text("Click me")
    counter = lab.cell(4).locator(".jp-OutputArea-output button.kk-counter")
    expect(counter).to_have_text("count is 2")
    expect_state_requested(lab, mark)
    lab.shot("reloaded")
    # still two-way after the reload
    mark = len(lab.frames)
    move_slider(lab, slider, "ArrowLeft", 3, to=4)
    button.click()
    lab.wait_comm_msgs_handled(mark, CLICK)
    lab.run(6)
    lab.expect_output(6, "4")
    lab.run(7)
    lab.expect_output(7, "4")
    lab.run(8)  # and the other way: the kernel moves the page's slider
    expect(readout).to_have_text("9")
    lab.wait_kernel_idle()
    lab.shot("after-reload")

    restart_and_check_nothing_is_left(
        lab, lab.notebook.locator(".jp-OutputArea-output .widget-slider, "
                                  ".jp-OutputArea-output .widget-button"),
        backend="widgets.ts")
    lab.cell(0).scroll_into_view_if_needed()
    lab.shot("restarted")
