"""JupyterLab itself with ``--gateway-url``: its kernels live behind a Jupyter Kernel Gateway,
and a notebook user works with a kernelkit kernel there as with a local one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from gateway_client import Gateway, kernel_gateway_argv, serve_gateway

from .conftest import LabServer, lab_page, start_lab

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from .labpage import LabPage

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def kernel_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    # From the test kernelspecs (tests/conftest.py) and this environment's kernelkit-echo;
    # one card per display name in the launcher, as for the local Lab.
    jupyter_path = Path(os.environ["JUPYTER_PATH"])
    with serve_gateway(kernel_gateway_argv("--KernelSpecManager.allowed_kernelspecs=kk-commands",
                                           "--KernelSpecManager.allowed_kernelspecs=kernelkit-echo"),
                       "KernelGatewayApp",
                       jupyter_path, tmp_path_factory.mktemp("lab-kernel-gateway")) as server:
        yield server


@pytest.fixture(scope="module")
def gateway_lab_server(tmp_path_factory: pytest.TempPathFactory,
                       kernel_gateway: Gateway) -> Iterator[LabServer]:
    with start_lab(tmp_path_factory, "jupyterlab-gateway", [
            f"--gateway-url={kernel_gateway.base}",
            f"--GatewayClient.auth_token={kernel_gateway.token}",
            "--GatewayClient.request_timeout=60"]) as server:
        yield server


@pytest.fixture
def gateway_lab(request: pytest.FixtureRequest, browser: Browser,
                gateway_lab_server: LabServer) -> Iterator[LabPage]:
    with lab_page(request, browser, gateway_lab_server) as page:
        yield page


# Not kernelkit's, as far as we can tell (2026-12-02): opening a notebook, JupyterLab
# connects to the kernel twice in a row with one session id; its server's gateway proxy
# (jupyter_server's GatewayWebSocketConnection) cannot cancel the first websocket to the
# gateway, so both reach Kernel Gateway, which logs "Replacing stale connection" and closes
# the one it saw first (the live one when they cross). In one CI run the status bar then
# read "commands | Unknown" for 60 s: the page's kernel_info_request got no reply. Not
# reproduced locally (6 runs). The rerun shows in the report, the failed attempt's artifacts
# are kept, and a kernelkit fault that breaks this path every time still fails.
@pytest.mark.flaky(reruns=2, only_rerun=["AssertionError"])
def test_a_notebook_runs_and_interrupts_a_kernel_behind_a_gateway(
        gateway_lab: LabPage, kernel_gateway: Gateway) -> None:
    lab = gateway_lab
    lab.new_notebook("commands", "kk-commands")
    lab.run_cell(0, "through the gateway")  # a command it does not know: echoed
    lab.expect_output(0, "through the gateway")
    lab.expect_prompt(0, 1)
    lab.wait_kernel_idle()
    lab.shot("first-cell")
    # The kernel lives in the gateway, not in JupyterLab's server.
    assert len(kernel_gateway.kernels()) == 1

    lab.run_cell(1, "loop")
    lab.expect_output(1, "started")
    lab.expect_kernel_status("Busy")
    lab.interrupt()
    lab.expect_output_contains(1, "KeyboardInterrupt")
    lab.wait_kernel_idle()
    lab.shot("interrupted")


@pytest.mark.xfail(strict=False, reason=(
    "not kernelkit's (2026-12-02): on a loaded machine the first cell after a restart through "
    "Kernel Gateway sometimes gets no reply in JupyterLab; a trace of the kernel's shell "
    "socket showed the execute_request never reached the kernel, and ipykernel behind the "
    "same gateway and Lab lost it too (under a 2-core load: ipykernel 2 of 8 runs, kernelkit "
    "1 of 8; kernelkit idle: 0 of 14 that day, 3 of 6 on a later machine)"))
def test_a_notebook_restarts_a_kernel_behind_a_gateway_and_runs_at_once(
        gateway_lab: LabPage) -> None:
    lab = gateway_lab
    lab.new_notebook("commands", "kk-commands")
    lab.run_cell(0, "before the restart")
    lab.expect_output(0, "before the restart")
    lab.wait_kernel_idle()

    lab.restart()
    lab.run_cell(1, "count")  # the kernel's execution count: 1 again after the restart
    lab.expect_output(1, "1")
    lab.expect_prompt(1, 1)
    lab.wait_kernel_idle()
    lab.shot("count-after-restart")
