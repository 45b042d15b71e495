"""Remote kernels: Enterprise Gateway's distributed (SSH) process proxy starts kernelkit
kernels through ``kernelkit launch`` on a host it reaches over SSH.

The "remote host" is a real OpenSSH server (Debian's ``openssh-server``) that the tests
start with throw-away keys on 127.0.0.2: Enterprise Gateway takes an address that is
one of this machine's own (127.0.0.1 among them) for local and starts the kernel
without SSH, while the rest of 127.0.0.0/8 is loopback too, so 127.0.0.2 is a host
it must reach over SSH. The same tests run through gateway_provisioners' distributed
provisioner under Kernel Gateway (jupyter_client 8). The kernelspecs are written by
``kernelkit install --remote-launcher enterprise-gateway|gateway-provisioners``.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
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

SSHD = "/usr/sbin/sshd"  # Debian's openssh-server (.ci/install-system.sh)
REMOTE = "127.0.0.2"
PORT_RANGE = (42000, 43999)
KERNELS = ["remote-echo", "remote-deno-echo", "remote-commands"]


@dataclass
class SSHHost:
    port: int
    home: Path  # a HOME for the gateway: .ssh with the client key and known_hosts
    log: Path


@pytest.fixture(scope="module")
def ssh_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHHost]:
    """OpenSSH's sshd on 127.0.0.2, with its own host key and one authorized client key."""
    assert os.path.exists(SSHD), "sshd is missing: run .ci/install-system.sh"
    d = tmp_path_factory.mktemp("sshd")
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)],
                       check=True)
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    with socket.socket() as s:
        s.bind((REMOTE, 0))
        port = s.getsockname()[1]
    config = d / "sshd_config"
    config.write_text("\n".join([
        f"ListenAddress {REMOTE}:{port}", f"HostKey {d / 'host_key'}",
        f"AuthorizedKeysFile {d / 'authorized_keys'}", f"PidFile {d / 'sshd.pid'}",
        "PubkeyAuthentication yes", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
        "StrictModes no", "UsePAM no", "LogLevel VERBOSE", ""]))
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # its privilege-separation dir
    log = d / "sshd.log"
    with log.open("wb") as out:
        sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=out)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert sshd.poll() is None, log.read_text()
            try:
                socket.create_connection((REMOTE, port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        home = d / "home"
        (home / ".ssh").mkdir(parents=True, mode=0o700)
        shutil.copy(d / "client_key", home / ".ssh" / "id_ed25519")
        os.chmod(home / ".ssh" / "id_ed25519", 0o600)
        kind, blob = (d / "host_key.pub").read_text().split()[:2]
        # The gateway rejects unknown host keys (paramiko's RejectPolicy): this one is known.
        (home / ".ssh" / "known_hosts").write_text(f"[{REMOTE}]:{port} {kind} {blob}\n")
        yield SSHHost(port, home, log)
    finally:
        sshd.terminate()
        sshd.wait(30)


@contextmanager
def kernel_logs_removed() -> Iterator[None]:
    """The gateways log each remote kernel to /tmp/kernel-ID.log on its host: ours is this one."""
    before = set(Path("/tmp").glob("kernel-*.log"))
    try:
        yield
    finally:
        for log in set(Path("/tmp").glob("kernel-*.log")) - before:
            log.unlink(missing_ok=True)


def remote_specs(prefix: Path, gateway: str, names: str) -> Path:
    """Kernelspecs for remote hosts, as `kernelkit install --remote-launcher` writes them."""
    return install_gateway_kernels(prefix, names, "--remote-launcher", gateway,
                                   "--remote-hosts", REMOTE)


@pytest.fixture(scope="module")
def enterprise_gateway(ssh_host: SSHHost, tmp_path_factory: pytest.TempPathFactory
                       ) -> Iterator[Gateway]:
    """Enterprise Gateway 3.3 with its distributed process proxy."""
    command = enterprise_gateway_venv()
    specs = remote_specs(tmp_path_factory.mktemp("eg-kernels"), "enterprise-gateway", "remote-")
    lo, hi = PORT_RANGE
    env = {"HOME": str(ssh_host.home), "EG_SSH_PORT": str(ssh_host.port),
           "EG_REMOTE_USER": getpass.getuser()}
    with kernel_logs_removed(), serve_gateway(
            [str(command), "--EnterpriseGatewayApp.list_kernels=True",
             f"--EnterpriseGatewayApp.port_range={lo}..{hi}"],
            "EnterpriseGatewayApp", specs,
            tmp_path_factory.mktemp("enterprise-gateway-remote"), env) as server:
        yield server
    assert not launched_processes(), "a remote kernel outlived the gateway"


@contextmanager
def provisioners(ssh_host: SSHHost, tmp_path_factory: pytest.TempPathFactory,
                 *options: str) -> Iterator[Gateway]:
    """Kernel Gateway (jupyter_client 8) with gateway_provisioners' distributed provisioner."""
    specs = remote_specs(tmp_path_factory.mktemp("gp-kernels"), "gateway-provisioners",
                         "remote-")
    lo, hi = PORT_RANGE
    env = {"HOME": str(ssh_host.home), "GP_SSH_PORT": str(ssh_host.port),
           "GP_REMOTE_USER": getpass.getuser(), "GP_PORT_RANGE": f"{lo}..{hi}"}
    with kernel_logs_removed(), serve_gateway(
            kernel_gateway_argv(*options), "KernelGatewayApp", specs,
            tmp_path_factory.mktemp("provisioners-remote"), env) as server:
        yield server
    assert not launched_processes(), "a remote kernel outlived the gateway"


@pytest.fixture(scope="module")
def provisioners_gateway(ssh_host: SSHHost, tmp_path_factory: pytest.TempPathFactory
                         ) -> Iterator[Gateway]:
    with provisioners(ssh_host, tmp_path_factory) as server:
        yield server


@pytest.fixture(params=["enterprise-gateway", "gateway-provisioners"])
def gateway(request: pytest.FixtureRequest) -> Gateway:
    name = "enterprise_gateway" if request.param == "enterprise-gateway" else (
        "provisioners_gateway")
    server: Gateway = request.getfixturevalue(name)
    return server


START_ENV = {"KERNEL_USERNAME": "kernelkit-tests"}  # the gateway refuses kernels for root


def launched_processes(kernel_id: str = "") -> list[psutil.Process]:
    """The launchers (and their kernels) running for a kernel id, or for any."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if "launch" in cmd and "--kernel-id" in cmd and (
                kernel_id in cmd[cmd.index("--kernel-id") + 1]):
            found.append(proc)
            found += proc.children(recursive=True)
    return found


def launcher(kernel_id: str) -> psutil.Process:
    deadline = time.monotonic() + 30
    while True:
        found = [p for p in launched_processes(kernel_id) if "launch" in p.cmdline()]
        if found:
            return found[0]
        assert time.monotonic() < deadline, "no launcher for the kernel"
        time.sleep(0.2)


def kernel_ports(proc: psutil.Process) -> list[int]:
    """The ports in the connection file the launcher gave its kernel."""
    (kernel,) = proc.children()
    cmd = kernel.cmdline()
    info = json.loads(Path(cmd[cmd.index("-f") + 1]).read_text())
    return [info[f"{c}_port"] for c in ("shell", "iopub", "stdin", "control", "hb")]


def wait_gone(procs: list[psutil.Process], timeout: float = 30) -> None:
    _gone, alive = psutil.wait_procs(procs, timeout=timeout)
    assert not alive, alive


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_remote_kernel_starts_runs_restarts_and_stops(gateway: Gateway, kernel: str) -> None:
    kernel_id = gateway.start(kernel, env=START_ENV)
    try:
        first = launcher(kernel_id)
        # Started over SSH (by `nohup … &`, so its parent is gone): the session's mark is on it.
        assert first.environ().get("SSH_CONNECTION", "").split()[2:3] == [REMOTE]
        lo, hi = PORT_RANGE
        assert all(lo <= p <= hi for p in kernel_ports(first)), kernel_ports(first)
        with gateway.channels(kernel_id) as channels:
            reply, text = channels.execute("hello from afar")
            assert reply["content"]["status"] == "ok", reply
            assert text.strip() == "hello from afar"
        old = launched_processes(kernel_id)
        gateway.restart(kernel_id)
        wait_gone(old)  # the old launcher and kernel have gone; a new pair runs
        assert launcher(kernel_id).pid != first.pid
        # A remote kernel comes back on new ports, which the gateway's websocket takes up
        # when the client connects again, as JupyterLab does after every restart.
        with gateway.channels(kernel_id) as channels:
            reply, text = channels.execute("after the restart", timeout=60)
            assert text.strip() == "after the restart"
        running = launched_processes(kernel_id)
    finally:
        gateway.delete(kernel_id)
    wait_gone(running)
    assert kernel_id not in [k["id"] for k in gateway.kernels()]


def test_a_remote_kernel_is_interrupted_through_its_launcher(gateway: Gateway) -> None:
    # The gateway sends {"signum": 2} to the launcher's communication port.
    interrupts_a_loop(gateway, "remote-commands", START_ENV)


def test_transport_encryption_through_the_provisioners(
        ssh_host: SSHHost, tmp_path_factory: pytest.TempPathFactory) -> None:
    """jupyter_client's transport_encryption=required: the launcher makes a CurveZMQ keypair,
    the kernel's sockets are Curve servers, and the gateway still talks to it."""
    with provisioners(ssh_host, tmp_path_factory,
                      "--KernelManager.transport_encryption=required") as server:
        kernel_id = server.start("remote-echo", env=START_ENV)
        try:
            (kernel,) = launcher(kernel_id).children()
            cmd = kernel.cmdline()
            info = json.loads(Path(cmd[cmd.index("-f") + 1]).read_text())
            assert len(info["curve_secretkey"]) == 40 and len(info["curve_publickey"]) == 40
            with server.channels(kernel_id) as channels:
                _reply, text = channels.execute("sealed")
                assert text.strip() == "sealed"
        finally:
            server.delete(kernel_id)


def test_a_remote_kernel_that_dies_is_restarted_by_the_gateway(gateway: Gateway) -> None:
    """The launcher exits with its kernel, so its communication port refuses the gateway's
    next poll: the gateway sees a dead kernel and starts it again, as a local one would be
    (Enterprise Gateway only while a client is connected, as a notebook is)."""
    kernel_id = gateway.start("remote-echo", env=START_ENV)
    try:
        with gateway.channels(kernel_id) as channels:
            first = launcher(kernel_id)
            (kernel,) = first.children()
            kernel.kill()
            wait_gone([first])  # the launcher exits with its kernel
            while True:  # the gateway tells its clients, as for any kernel that died
                msg = channels.receive(timeout=60)
                if msg["msg_type"] == "status" and (
                        msg["content"]["execution_state"] == "restarting"):
                    break
        deadline = time.monotonic() + 60
        while not answered(kernel_id, first.pid):
            assert time.monotonic() < deadline, "the gateway did not restart the dead kernel"
            time.sleep(0.2)
        # A client that connects while the gateway is still taking in the new kernel's ports
        # gets the old ones (the gateway's race, not the kernel's: Enterprise Gateway looks
        # for the launcher's answer every EG_POLL_INTERVAL, 0.5 s). So wait that out, and
        # connect again, as a user would, if a connection never hears from the kernel.
        time.sleep(1.0)
        for attempt in range(4):
            try:
                with gateway.channels(kernel_id, ready_timeout=5) as channels:
                    _reply, text = channels.execute("back again", timeout=60)
                    assert text.strip() == "back again"
                    break
            except TimeoutError:
                assert attempt < 3, "the restarted kernel never answered through the gateway"
    finally:
        gateway.delete(kernel_id)


def answered(kernel_id: str, old_pid: int) -> bool:
    """Whether a new launcher for the kernel has its communication port open, which it opens
    just before it sends the gateway the connection info."""
    for proc in launched_processes(kernel_id):
        if proc.pid != old_pid and "launch" in proc.cmdline():
            with contextlib.suppress(psutil.Error):
                return any(c.status == psutil.CONN_LISTEN for c in proc.net_connections("tcp"))
    return False
