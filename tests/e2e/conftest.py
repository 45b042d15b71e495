"""Fixtures for the end-to-end suite: a JupyterLab server, headless Chromium, a page per test.

tests/conftest.py has already installed the test kernelspecs (kk-commands, kk-deno-echo, ...)
and pointed JUPYTER_PATH at them; the Echo kernelspec (kernelkit-echo) comes with the package
in sys.prefix. JupyterLab runs as a child process on 127.0.0.1 with a random token, a
temporary root directory and its own settings, workspaces and runtime directories, and is
stopped (kernels first) when the suite ends, whether or not its tests passed.

Nothing here skips: without Playwright or Chromium every test errors, naming what to install
(`.ci/install-system.sh` installs Debian's Chromium).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from gateway_client import free_port

from conftest import DENO, ROOT, kernelkit

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from .labpage import LabPage

ARTIFACTS = ROOT / "test-artifacts" / "e2e"
README_IMAGE = ROOT / "docs" / "images" / "echo-kernel-in-jupyterlab.png"

# The kernelspecs the launcher offers: the Echo kernel, a kernel that can be made to loop
# (code `loop`), the Echo kernel written in TypeScript on Deno behind the bridge, and the
# exec-based Python test kernel (with display(): the widget tests). Other installed specs
# (the Node and Python Echo backends are also called "Echo") are hidden.
KERNELSPECS = ("kernelkit-echo", "kk-commands", "kk-concurrent", "kk-deno-echo", "kk-python")

# The Deno widget example's kernelspec, installed by this suite (`widget_kernelspecs`) with
# the display name its README screenshot shows: name -> (display name, install arguments).
DENO_WIDGETS = ROOT / "examples" / "deno" / "widgets.ts"
WIDGET_KERNELSPECS = {
    "kk-deno-widgets": ("Widgets (Deno)", ["--", DENO, "run", str(DENO_WIDGETS)]),
}

# The TypeScript kernel's kernelspec: installed by test_typescript.py's own fixture (that
# prepares the kernel, which takes a while), so only allowed here: JupyterLab looks
# kernelspecs up on each request, and sees it from then on.
TYPESCRIPT_KERNELSPEC = ("kk-typescript-lab", "TypeScript (Deno, kernelkit)")

# Headless, and nothing that reaches out to the network: CI machines reach registries only.
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
]

SERVER_START_TIMEOUT = 120.0  # seconds; a loaded 2-core machine can be slow

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so the page fixture knows a test failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


# -- Chromium and Playwright ---------------------------------------------------------------


def find_chromium() -> str:
    """The system Chromium: $KERNELKIT_E2E_CHROMIUM, else `chromium` on PATH."""
    configured = os.environ.get("KERNELKIT_E2E_CHROMIUM")
    if configured:
        return configured
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "Chromium is not installed: the end-to-end tests drive Debian's Chromium "
        "(run `bash .ci/install-system.sh`, i.e. `apt-get install -y chromium`, or set "
        "KERNELKIT_E2E_CHROMIUM to a Chromium executable)",
        pytrace=False,
    )


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Headless system Chromium driven by Playwright; closed when the suite ends."""
    executable = find_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.fail(f"Playwright for Python is not installed ({exc}); it is in the e2e extra",
                    pytrace=False)
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


# -- the JupyterLab server -------------------------------------------------------------------


@dataclass
class LabServer:
    """A running JupyterLab, and its REST API (used to check state and to clean up)."""

    url: str
    token: str
    root: Path
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    runtime: Path | None = None  # the server's Jupyter runtime dir (kernels' connection files)

    def api(self, method: str, path: str, timeout: float = 30) -> Any:
        request = urllib.request.Request(
            self.url + path, method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def sessions(self) -> list[dict[str, Any]]:
        return list(self.api("GET", "/api/sessions"))

    def shutdown_sessions(self, folder: str | None = None) -> None:
        """Shut down the kernels of the notebooks in `folder` (all of them if None)."""
        for session in self.sessions():
            if folder is None or session["path"].startswith(folder + "/"):
                try:
                    self.api("DELETE", f"/api/sessions/{session['id']}", timeout=60)
                except urllib.error.HTTPError as exc:
                    if exc.code != 404:  # already gone
                        raise

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _quiet_lab_settings(settings: Path) -> None:
    """No news or update prompts: toasts would cover the notebook, and there is no network."""
    notification = settings / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True, exist_ok=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


def _plain_toolbar(config: Path) -> None:
    """The notebook toolbar as JupyterLab alone makes it, whatever else is installed.

    The ``notebook`` package (pulled in by gnuplot_kernel, through ``jupyter``) adds its
    "open in Notebook" button to the toolbar, which then pushes the kernel's name into the
    overflow menu at this window width, where the tests cannot see it.
    """
    labconfig = config / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyter-notebook/lab-extension": True}})
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (JupyterLab then shuts its kernels down), SIGKILL to the group if it hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


@pytest.fixture(scope="package")
def widget_kernelspecs() -> dict[str, str]:
    """Install WIDGET_KERNELSPECS next to tests/conftest.py's; what failed, and why.

    Here rather than with tests/conftest.py's kernels: only this suite shows these names.
    A failure (the install starts the backend) does not stop the suite: the widget test
    that needs the kernel reports it.
    """
    prefix = Path(os.environ["JUPYTER_PATH"].split(os.pathsep)[0]).parent.parent
    failed: dict[str, str] = {}
    for name, (display_name, args) in WIDGET_KERNELSPECS.items():
        done = kernelkit("install", "--name", name, "--display-name", display_name,
                         "--prefix", str(prefix), *args, timeout=120)
        if done.returncode != 0:
            failed[name] = (done.stderr or done.stdout).strip()
    return failed


@pytest.fixture(scope="package")
def lab_server(tmp_path_factory: pytest.TempPathFactory,
               widget_kernelspecs: dict[str, str]) -> Iterator[LabServer]:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # no screenshots left from an earlier run
    ARTIFACTS.mkdir(parents=True)
    kernelspecs = (*KERNELSPECS, *WIDGET_KERNELSPECS, TYPESCRIPT_KERNELSPEC[0])
    with start_lab(tmp_path_factory, "jupyterlab", [
            *(f"--KernelSpecManager.allowed_kernelspecs={name}" for name in kernelspecs),
            f"--MappingKernelManager.default_kernel_name={KERNELSPECS[0]}"]) as server:
        specs = server.api("GET", "/api/kernelspecs")["kernelspecs"]
        expected = [*KERNELSPECS, *(n for n in WIDGET_KERNELSPECS if n not in widget_kernelspecs)]
        missing = [name for name in expected if name not in specs]
        assert not missing, f"JupyterLab does not see the kernelspecs {missing}; it has {specs}"
        yield server


@contextmanager
def start_lab(tmp_path_factory: pytest.TempPathFactory, name: str,
              options: list[str]) -> Iterator[LabServer]:
    """A JupyterLab of its own home and root, with these server options, stopped after;
    its log is test-artifacts/e2e/<name>.log."""
    root = tmp_path_factory.mktemp(f"{name}-root")
    home = tmp_path_factory.mktemp(f"{name}-home")
    _quiet_lab_settings(home / "settings")
    _plain_toolbar(home / "config")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"{name}.log"
    token = secrets.token_hex(24)
    port = free_port()
    env = dict(os.environ)
    # Own config, data, runtime, settings and workspaces; JUPYTER_PATH (the test
    # kernelspecs, set by tests/conftest.py) and sys.prefix (kernelkit-echo) are kept.
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
    )
    command = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.terminals_enabled=False",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        *options,
    ]
    with log.open("wb") as log_file:
        process = subprocess.Popen(command, env=env, cwd=root, stdin=subprocess.DEVNULL,
                                   stdout=log_file, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    server = LabServer(url=f"http://127.0.0.1:{port}", token=token, root=root, log=log,
                       process=process, runtime=home / "runtime")
    try:
        _wait_until_serving(server)
        yield server
    finally:
        try:
            if process.poll() is None:
                server.shutdown_sessions()
        except OSError:
            pass  # the server is unwell: stopping it below takes its kernels with it
        finally:
            _stop(process)


def _wait_until_serving(server: LabServer) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while True:
        if server.process.poll() is not None:
            pytest.fail(f"JupyterLab exited with {server.process.returncode}:\n"
                        f"{server.log_tail()}", pytrace=False)
        try:
            server.api("GET", "/api/status", timeout=5)
            return
        except urllib.error.HTTPError:
            raise  # it answers, but not as it should (a wrong token?): say so at once
        except OSError:  # not listening yet (URLError and connection errors are OSErrors)
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"JupyterLab did not answer in {SERVER_START_TIMEOUT:.0f}s:\n"
                        f"{server.log_tail()}", pytrace=False)
        time.sleep(0.2)


# -- one browser page per test -----------------------------------------------------------


@pytest.fixture
def lab(request: pytest.FixtureRequest, browser: Browser,
        lab_server: LabServer) -> Iterator[LabPage]:
    """JupyterLab in a fresh browser context, in a fresh workspace and folder for this test.

    Screenshots go to test-artifacts/e2e/<test>/; on failure also FAILED.png and the
    browser's console. The test's kernels are shut down afterwards, pass or fail.
    """
    with lab_page(request, browser, lab_server) as page:
        yield page


@contextmanager
def lab_page(request: pytest.FixtureRequest, browser: Browser,
             lab_server: LabServer) -> Iterator[LabPage]:
    """The `lab` fixture's page, on any LabServer."""
    from .labpage import LabPage

    name = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name).strip("-")
    artifacts = ARTIFACTS / name
    if (artifacts / "console.log").exists():  # written first when a test fails
        # A rerun of a test marked flaky: keep the failed attempt's evidence beside this one.
        previous = ARTIFACTS / f"{name}-failed-attempt"
        shutil.rmtree(previous, ignore_errors=True)
        artifacts.rename(previous)
    shutil.rmtree(artifacts, ignore_errors=True)
    artifacts.mkdir(parents=True)
    (lab_server.root / name).mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1024, "height": 600})
    console: list[str] = []
    page = context.new_page()
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
    labpage = LabPage(page, lab_server, folder=name, artifacts=artifacts)
    failed = False
    try:
        labpage.open()
        yield labpage
        failed = any(r.failed for r in request.node.stash.get(_REPORTS, {}).values())
    except BaseException:
        failed = True
        raise
    finally:
        try:
            if failed:
                (artifacts / "console.log").write_text("\n".join(console) + "\n")
                (artifacts / "kernel-frames.log").write_text(labpage.frames_log())
                labpage.shot("FAILED", numbered=False)
        except Exception as exc:  # a crashed page must not hide the test's own failure
            (artifacts / "FAILED-screenshot-error.txt").write_text(repr(exc) + "\n")
        finally:
            try:
                context.close()
            finally:
                lab_server.shutdown_sessions(name)
