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

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playwright.sync_api import Locator, Page, expect

from .conftest import README_IMAGE

if TYPE_CHECKING:
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
        # Then fold the file browser away: more room for the notebook in the screenshots.
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
