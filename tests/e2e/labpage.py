"""JupyterLab as a user sees it: the launcher, a notebook, its cells, toolbar and status bar.

Every wait is on page (or server) state, never a fixed sleep. The one to know about is
`wait_kernel_idle`: the notebook toolbar's kernel indicator reads "idle" from the moment the
notebook opens, before a kernel is connected, and a cell run then is silently not executed
(it keeps its `[ ]:` prompt). The status bar's "<kernel> | Idle" is derived from the kernel
connection itself (it reads Connecting, then Unknown, until the websocket is up and the kernel
has reported its status over it), so that is what we wait for, together with the server
agreeing: it counts a client connection to the kernel and sees it idle.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playwright.sync_api import Locator, Page, expect

from .conftest import README_IMAGE

if TYPE_CHECKING:
    from playwright.sync_api import FloatRect

    from .conftest import LabServer

# Generous, since every wait ends as soon as its condition holds (milliseconds).
LOAD_TIMEOUT = 90_000  # JupyterLab's first page load on a busy machine
KERNEL_TIMEOUT = 60_000  # a kernel starting, restarting or being interrupted
OUTPUT_TIMEOUT = 30_000  # output and prompts of a cell
UI_TIMEOUT = 30_000  # clicks, dialogs

# The status bar item reading "<kernel display name> | <status>" (title "Change kernel for …").
KERNEL_STATUS_ITEM = '.jp-StatusBar-TextItem[title^="Change kernel"]'


class LabPage:
    def __init__(self, page: Page, server: LabServer, folder: str, artifacts: Path) -> None:
        self.page = page
        self.server = server
        self.folder = folder  # this test's folder under the server's root, and its workspace
        self.artifacts = artifacts
        self.display_name = ""  # the kernel's display name, once a notebook is open
        self._steps = 0
        # Every kernel websocket frame's text, in order, with its direction ("sent" by the
        # page or "received"): lets a test see which messages the page exchanged.
        self.frames: list[tuple[str, str]] = []
        page.on("websocket", self._record_frames)
        page.set_default_timeout(UI_TIMEOUT)

    # -- what there is on the page --------------------------------------------------------

    @property
    def notebook(self) -> Locator:
        return self.page.locator(".jp-NotebookPanel")

    def cell(self, index: int) -> Locator:
        return self.notebook.locator(".jp-Notebook .jp-Cell").nth(index)

    @property
    def kernel_status(self) -> Locator:
        """The status bar item "<kernel display name> | <status>"."""
        return self.page.locator(f"#jp-main-statusbar {KERNEL_STATUS_ITEM}")

    def toolbar_button(self, item: str) -> Locator:
        return self.notebook.locator(f'.jp-NotebookPanel-toolbar [data-jp-item-name="{item}"] '
                                     "jp-button")

    # -- steps ------------------------------------------------------------------------------

    def open(self) -> None:
        """JupyterLab in a fresh workspace, its file browser in this test's folder."""
        url = (f"{self.server.url}/lab/workspaces/{self.folder}/tree/{self.folder}"
               f"?reset&token={self.server.token}")
        self.page.goto(url, wait_until="domcontentloaded", timeout=LOAD_TIMEOUT)
        expect(self.page.locator(".jp-Launcher")).to_be_visible(timeout=LOAD_TIMEOUT)
        # The launcher creates notebooks in the file browser's folder: wait until it is ours.
        crumbs = self.page.locator("#filebrowser .jp-BreadCrumbs")
        expect(crumbs).to_contain_text(self.folder, timeout=LOAD_TIMEOUT)
        self.fold_file_browser()

    def fold_file_browser(self) -> None:
        """Fold the file browser away: more room for the notebook in the screenshots."""
        self.page.locator('.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="filebrowser"]').click()
        expect(self.page.locator("#filebrowser")).to_be_hidden()

    def new_notebook(self, display_name: str, kernelspec: str) -> None:
        """Click the kernel's card in the launcher's Notebook section; wait until it is idle."""
        card = self.page.locator(
            f'.jp-Launcher .jp-LauncherCard[data-category="Notebook"][title="{display_name}"]'
        )
        expect(card).to_have_count(1, timeout=LOAD_TIMEOUT)
        self.shot("launcher")
        card.click()
        expect(self.notebook).to_be_visible()
        self.display_name = display_name
        self.wait_kernel_idle()
        session = self.session()
        assert session["kernel"]["name"] == kernelspec, session
        self._record_kernel_status()
        self.shot("notebook-idle")

    def open_notebook(self, name: str, display_name: str, kernelspec: str,
                      cells: list[str]) -> None:
        """Write a notebook of code `cells` for `kernelspec` into this test's folder, open it
        (JupyterLab starts its kernel) and wait until the kernel is idle.

        Cells written beforehand rather than typed: typed code is auto-indented and
        auto-closed by the editor, which mangles anything longer than one line.
        """
        notebook = {
            "cells": [{"cell_type": "code", "execution_count": None, "id": f"cell-{i}",
                       "metadata": {}, "outputs": [], "source": source}
                      for i, source in enumerate(cells)],
            "metadata": {"kernelspec": {"name": kernelspec, "display_name": display_name}},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        (self.server.root / self.folder / name).write_text(json.dumps(notebook, indent=1))
        url = (f"{self.server.url}/lab/workspaces/{self.folder}/tree/{self.folder}/{name}"
               f"?token={self.server.token}")
        self.page.goto(url, wait_until="domcontentloaded", timeout=LOAD_TIMEOUT)
        expect(self.notebook).to_be_visible(timeout=LOAD_TIMEOUT)
        expect(self.notebook.locator(".jp-Notebook .jp-Cell")).to_have_count(
            len(cells), timeout=LOAD_TIMEOUT)
        self.display_name = display_name
        self.wait_kernel_idle()
        session = self.session()
        assert session["kernel"]["name"] == kernelspec, session
        self._record_kernel_status()
        self._fold_restored_file_browser()
        self.shot("notebook-idle")

    def run(self, index: int) -> None:
        """Run cell `index` as it is (click into it, Shift+Enter)."""
        self.cell(index).locator(".cm-content").click()
        self.page.keyboard.press("Shift+Enter")

    def save(self) -> None:
        """Save the notebook (Ctrl+S) and wait until JupyterLab no longer marks it dirty."""
        self.notebook.locator(".jp-Notebook").click(position={"x": 5, "y": 5})
        self.page.keyboard.press("Control+s")
        expect(self.page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(
            0, timeout=UI_TIMEOUT)

    def reload(self) -> int:
        """Reload the page; wait for the notebook and its kernel, as after `open_notebook`.

        Returns the index into `frames` where the reloaded page's frames begin.
        """
        mark = len(self.frames)
        self.page.reload(wait_until="domcontentloaded", timeout=LOAD_TIMEOUT)
        expect(self.notebook).to_be_visible(timeout=LOAD_TIMEOUT)
        self.wait_kernel_idle()
        self._record_kernel_status()
        self._fold_restored_file_browser()
        return mark

    def _fold_restored_file_browser(self) -> None:
        """A page opened on a file's URL shows the file browser: fold it (the layout is
        restored by the time the kernel is idle, so it does not reappear)."""
        if self.page.locator("#filebrowser").is_visible():
            self.fold_file_browser()

    def wait_kernel_idle(self) -> None:
        expect(self.kernel_status).to_have_text(f"{self.display_name} | Idle",
                                                 timeout=KERNEL_TIMEOUT)
        expect(self.toolbar_button("kernelName")).to_have_text(self.display_name)
        self._wait_for_kernel(
            lambda k: k["execution_state"] == "idle" and k["connections"] >= 1,
            "the server to see the kernel idle, with a client connected",
        )

    def expect_kernel_status(self, status: str) -> None:
        expect(self.kernel_status).to_have_text(f"{self.display_name} | {status}",
                                                timeout=KERNEL_TIMEOUT)

    def type_into(self, index: int, text: str) -> None:
        editor = self.cell(index).locator(".cm-content")
        editor.click()
        self.page.keyboard.type(text)
        expect(editor).to_have_text(text)

    def run_cell(self, index: int, text: str) -> None:
        """Type `text` into cell `index` and run it with Shift+Enter."""
        self.type_into(index, text)
        self.page.keyboard.press("Shift+Enter")

    def expect_output(self, index: int, text: str) -> None:
        """Cell `index` has exactly one output, reading `text`."""
        expect(self.cell(index).locator(".jp-OutputArea-output")).to_have_text(
            [text], timeout=OUTPUT_TIMEOUT)

    def expect_output_contains(self, index: int, text: str) -> None:
        expect(self.cell(index).locator(".jp-OutputArea")).to_contain_text(
            text, timeout=OUTPUT_TIMEOUT)

    def expect_prompt(self, index: int, count: int | str) -> None:
        """The prompt of cell `index` is `[count]:` (`*` while running)."""
        expect(self.cell(index).locator(".jp-InputPrompt")).to_have_text(
            f"[{count}]:", timeout=OUTPUT_TIMEOUT)

    def expect_not_running(self, index: int) -> None:
        expect(self.cell(index).locator(".jp-InputPrompt")).not_to_have_text(
            "[*]:", timeout=OUTPUT_TIMEOUT)

    def interrupt(self) -> None:
        self.toolbar_button("interrupt").click()

    def restart(self) -> None:
        """Restart from the toolbar, confirm, and wait for the restarted kernel to be idle.

        The status bar may read Idle before the click too, so it is not enough to wait for
        Idle: we wait until it has read Restarting since the click, and Idle after that.
        """
        mark = self.page.evaluate("window.__kkKernelStatus.length")
        self.toolbar_button("restart").click()
        dialog = self.page.locator(".jp-Dialog")
        expect(dialog.locator(".jp-Dialog-header")).to_have_text("Restart Kernel?")
        self.shot("restart-dialog")
        dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
        expect(dialog).to_be_hidden()
        self.page.wait_for_function(
            """([mark, idle]) => {
                const seen = window.__kkKernelStatus.slice(mark);
                return seen.some((s) => s !== null && s.endsWith("| Restarting"))
                    && seen[seen.length - 1] === idle;
            }""",
            arg=[mark, f"{self.display_name} | Idle"],
            timeout=KERNEL_TIMEOUT,
        )
        self.wait_kernel_idle()

    # -- screenshots ----------------------------------------------------------------------

    def shot(self, step: str, numbered: bool = True) -> Path:
        if numbered:
            self._steps += 1
            step = f"{self._steps:02d}-{step}"
        path = self.artifacts / f"{step}.png"
        self.page.screenshot(path=path)
        return path

    def readme_shot(self) -> Path:
        """The README's picture; copied into docs/ when KERNELKIT_UPDATE_README_IMAGE=1."""
        path = self.shot("readme", numbered=False)
        if os.environ.get("KERNELKIT_UPDATE_README_IMAGE") == "1":
            README_IMAGE.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, README_IMAGE)
        return path

    def notebook_readme_shot(self, last_cell: int, image: Path) -> Path:
        """The notebook, from its toolbar to the bottom of cell `last_cell`: a README picture,
        copied to `image` when KERNELKIT_UPDATE_README_IMAGE=1."""
        panel = self.notebook.bounding_box()
        bottom = self.cell(last_cell).bounding_box()
        assert panel is not None and bottom is not None
        # 3 px short of the cell's bottom: the next cell's (the active one's) border touches it
        clip: FloatRect = {"x": panel["x"], "y": panel["y"], "width": panel["width"],
                           "height": bottom["y"] + bottom["height"] - 3 - panel["y"]}
        path = self.artifacts / f"readme-{image.stem}.png"
        self.page.mouse.move(0, 0)  # no hover highlight in the picture
        self.page.screenshot(path=path, clip=clip)
        if os.environ.get("KERNELKIT_UPDATE_README_IMAGE") == "1":
            shutil.copyfile(path, image)
        return path

    def crop_shot(self, step: str, locator: Locator) -> Path:
        """A screenshot of just `locator` (the notebook, say), numbered like `shot`."""
        self._steps += 1
        path = self.artifacts / f"{self._steps:02d}-{step}.png"
        locator.screenshot(path=path)
        return path

    # -- the server's view ------------------------------------------------------------------

    def session(self) -> dict[str, Any]:
        """The session of this test's notebook (there is one notebook per test)."""
        sessions = [s for s in self.server.sessions() if s["path"].startswith(self.folder + "/")]
        assert len(sessions) == 1, f"expected one session in {self.folder}/: {sessions}"
        return sessions[0]

    def _wait_for_kernel(self, condition: Callable[[dict[str, Any]], bool], what: str) -> None:
        deadline = time.monotonic() + KERNEL_TIMEOUT / 1000
        kernel = self.session()["kernel"]
        while not condition(kernel):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {kernel}")
            time.sleep(0.1)
            kernel = self.session()["kernel"]

    def frames_since(self, mark: int, direction: str) -> str:
        """The text of the frames `direction` ("sent", "received") since `mark`, joined."""
        return "\n".join(text for d, text in self.frames[mark:] if d == direction)

    def wait_comm_msgs_handled(self, mark: int, pattern: str, count: int = 1) -> None:
        """Wait until the page has sent, since `mark`, at least `count` comm_msgs matching
        the regex `pattern`, and the kernel has handled every comm_msg it sent since then
        (an idle status whose parent it is).

        So that a cell run next surely sees what was done in the page: JupyterLab sends
        widget traffic over a subshell, which a cell on the main shell does not wait for,
        and ipywidgets holds a model's update back until the one before it was handled.
        """
        deadline = time.monotonic() + OUTPUT_TIMEOUT / 1000
        while True:
            sent, pending = self._comm_msgs(mark)
            matching = sum(1 for text in sent.values() if re.search(pattern, text))
            if matching >= count and not pending:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{matching} comm_msgs matching {pattern!r} sent (not {count}); "
                    f"the kernel has not handled {len(pending)} of the {len(sent)} sent")
            self.pump()

    def frames_log(self) -> str:
        """The kernel websocket frames, one a line, their binary framing left out."""
        return "".join(f"{direction}: {re.sub(r'[^ -~]+', ' ', text).strip()}\n"
                       for direction, text in self.frames)

    def pump(self) -> None:
        """Let a moment pass with Playwright's event loop running. Its sync API delivers
        events (the websocket frames above) only inside its own calls, not in a sleep."""
        self.page.wait_for_timeout(100)

    def _comm_msgs(self, mark: int) -> tuple[dict[str, str], list[str]]:
        """The comm_msgs sent since `mark` (msg_id -> frame text), and those not handled."""
        # A frame's text holds its header before its parent header (both the JSON
        # websocket protocol and v1.kernel.websocket.jupyter.org), so a sent message's
        # first msg_id is its own.
        sent = {}
        for direction, text in self.frames[mark:]:
            if direction == "sent" and re.search(r'"msg_type":\s*"comm_msg"', text):
                found = re.search(r'"msg_id":\s*"([^"]+)"', text)
                if found:
                    sent[found.group(1)] = text
        idle = [text for direction, text in self.frames[mark:] if direction == "received"
                and re.search(r'"execution_state":\s*"idle"', text)]
        return sent, [msg_id for msg_id in sent if not any(msg_id in text for text in idle)]

    def _record_frames(self, ws: Any) -> None:
        if "/api/kernels/" not in ws.url:
            return

        def text(payload: str | bytes) -> str:
            return payload if isinstance(payload, str) else payload.decode("utf-8", "replace")

        ws.on("framesent", lambda payload: self.frames.append(("sent", text(payload))))
        ws.on("framereceived", lambda payload: self.frames.append(("received", text(payload))))

    def _record_kernel_status(self) -> None:
        """Log every text the status bar's kernel item shows, into window.__kkKernelStatus."""
        self.page.evaluate(
            """(selector) => {
                const bar = document.querySelector("#jp-main-statusbar");
                const read = () => {
                    const item = bar.querySelector(selector);
                    return item === null ? null : item.textContent;
                };
                const seen = (window.__kkKernelStatus = [read()]);
                new MutationObserver(() => {
                    const text = read();
                    if (text !== seen[seen.length - 1]) seen.push(text);
                }).observe(bar, { subtree: true, childList: true, characterData: true });
            }""",
            KERNEL_STATUS_ITEM,
        )
