"""kernelkit kernels behind real gateways: Jupyter Kernel Gateway (``jupyter-websocket`` mode)
and Jupyter Enterprise Gateway with its local process proxy, both from PyPI, started here on
127.0.0.1 and driven over REST and websockets as JupyterLab drives them.

Enterprise Gateway 3.3 pins jupyter_client < 7 and jupyter_server < 2, which cannot live beside
JupyterLab 4 in the test environment, so it runs from its own venv (built once, under
``.cache/``); the kernels it starts are this environment's, by their kernelspecs' absolute argv.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_client import (
    Gateway,
    enterprise_gateway_venv,
    install_gateway_kernels,
    interrupts_a_loop,
    kernel_gateway_argv,
    serve_gateway,
)

pytestmark = pytest.mark.timeout(300)

LOCAL_PROXY = "enterprise_gateway.services.processproxies.processproxy.LocalProcessProxy"
# The three kinds of kernelkit kernel: built-in, a bridge backend, a Python module:Class.
KERNELS = ["gw-echo", "gw-deno-echo", "gw-commands"]


@pytest.fixture(scope="module")
def gateway_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Jupyter path with the kernels under test, each spec's argv absolute (a gateway in
    another environment runs them as they are)."""
    prefix = tmp_path_factory.mktemp("gateway-kernels")
    install_gateway_kernels(prefix, "gw-")
    kernels = prefix / "share" / "jupyter" / "kernels"
    # Enterprise Gateway picks a process proxy from the spec; say the local one outright.
    for name in KERNELS:
        eg = kernels / f"eg-{name}"
        shutil.copytree(kernels / name, eg)
        spec = json.loads((eg / "kernel.json").read_text())
        spec["metadata"]["process_proxy"] = {"class_name": LOCAL_PROXY}
        (eg / "kernel.json").write_text(json.dumps(spec, indent=1))
    return prefix / "share" / "jupyter"


@pytest.fixture(scope="module")
def kernel_gateway(gateway_path: Path, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[Gateway]:
    with serve_gateway(kernel_gateway_argv(), "KernelGatewayApp",
                       gateway_path, tmp_path_factory.mktemp("kernel-gateway")) as server:
        yield server


@pytest.fixture(scope="module")
def enterprise_gateway(gateway_path: Path, tmp_path_factory: pytest.TempPathFactory
                       ) -> Iterator[Gateway]:
    command = enterprise_gateway_venv()
    with serve_gateway([str(command), "--EnterpriseGatewayApp.list_kernels=True"],
                       "EnterpriseGatewayApp",
                       gateway_path, tmp_path_factory.mktemp("enterprise-gateway")) as server:
        yield server


@pytest.fixture(params=["kernel-gateway", "enterprise-gateway"])
def gateway(request: pytest.FixtureRequest) -> tuple[Gateway, str, dict[str, str]]:
    """A gateway, the prefix of its kernelspec names, and the env a client sends with a start
    (Enterprise Gateway refuses to start kernels for root unless told the user)."""
    if request.param == "kernel-gateway":
        return request.getfixturevalue("kernel_gateway"), "", {}
    return (request.getfixturevalue("enterprise_gateway"), "eg-",
            {"KERNEL_USERNAME": "kernelkit-tests"})


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_kernel_starts_runs_restarts_and_is_deleted_through_a_gateway(
        gateway: tuple[Gateway, str, dict[str, str]], kernel: str) -> None:
    server, prefix, env = gateway
    name = prefix + kernel
    assert name in server.specs()["kernelspecs"]
    kernel_id = server.start(name, env=env)
    try:
        assert kernel_id in [k["id"] for k in server.kernels()]
        with server.channels(kernel_id) as channels:
            info = channels.kernel_info()
            assert info["content"]["status"] == "ok"
            assert info["content"]["language_info"]["name"]
            reply, text = channels.execute("hello through a gateway")
            assert reply["content"]["status"] == "ok", reply
            assert text.strip() == "hello through a gateway"
            count = reply["content"]["execution_count"]
            server.restart(kernel_id)
            channels.ready()
            # A restarted kernel starts its count again, on the same websocket.
            reply, text = channels.execute("after the restart", timeout=60)
            assert text.strip() == "after the restart"
            assert reply["content"]["execution_count"] <= count
    finally:
        server.delete(kernel_id)
    assert kernel_id not in [k["id"] for k in server.kernels()]


def test_an_interrupt_through_a_gateway_stops_a_loop_and_the_kernel_goes_on(
        gateway: tuple[Gateway, str, dict[str, str]]) -> None:
    server, prefix, env = gateway
    interrupts_a_loop(server, prefix + "gw-commands", env)


def test_input_request_is_answered_over_the_gateway_websocket(
        gateway: tuple[Gateway, str, dict[str, str]]) -> None:
    server, prefix, env = gateway
    kernel_id = server.start(prefix + "gw-commands", env=env)
    prompts: list[str] = []

    def answer(prompt: str) -> str:
        prompts.append(prompt)
        return "forty-two"

    try:
        with server.channels(kernel_id) as channels:
            reply, text = channels.execute("input your answer?", answer=answer)
            assert reply["content"]["status"] == "ok", reply
            assert prompts == ["your answer?"]
            assert text == "got:forty-two"
    finally:
        server.delete(kernel_id)


def test_errors_and_many_kernels_at_once_through_a_gateway(
        gateway: tuple[Gateway, str, dict[str, str]]) -> None:
    """Three kernels of different kinds alive together, each answering on its own socket;
    an exception in kernel code comes back as an error reply, not a lost kernel."""
    server, prefix, env = gateway
    ids = [server.start(prefix + kernel, env=env) for kernel in KERNELS]
    try:
        listed = {k["id"] for k in server.kernels()}
        assert set(ids) <= listed
        for kernel_id, kernel in zip(ids, KERNELS, strict=True):
            with server.channels(kernel_id) as channels:
                reply, text = channels.execute(f"from {kernel}")
                assert text.strip() == f"from {kernel}"
        with server.channels(ids[2]) as channels:
            reply, _ = channels.execute("raise gateway-error")
            assert reply["content"]["status"] == "error"
            assert reply["content"]["evalue"] == "gateway-error"
            reply, text = channels.execute("after the error")
            assert text.strip() == "after the error"
    finally:
        for kernel_id in ids:
            server.delete(kernel_id)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and set(ids) & {k["id"] for k in server.kernels()}:
        time.sleep(0.1)
    assert not set(ids) & {k["id"] for k in server.kernels()}
