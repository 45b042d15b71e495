"""``kernelkit launch``, the remote-kernel launcher, against this test's own gateway side.

The gateway side here (an RSA key, a response socket, the decryption) is written from
Enterprise Gateway's contract, to test the launcher's own layer quickly; the real
Enterprise Gateway drives the launcher over SSH in tests/test_remote.py.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from jupyter_client import BlockingKernelClient

from conftest import DENO, ROOT, stdout_of
from kernelkit.connection import parse_port_range
from kernelkit.errors import UsageError
from kernelkit.launch import encrypt_payload, parse_request, remote_spec

PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # EG's key size
PUBLIC = base64.b64encode(PRIVATE.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()


def decrypt(data: bytes) -> dict[str, Any]:
    """What the gateway does with the launcher's answer (version 1 payloads)."""
    payload = json.loads(base64.b64decode(data))
    assert payload["version"] == 1
    aes_key = PRIVATE.decrypt(base64.b64decode(payload["key"]), asym.PKCS1v15())
    decryptor = Cipher(algorithms.AES(aes_key), modes.ECB()).decryptor()
    padded = decryptor.update(base64.b64decode(payload["conn_info"])) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    result: dict[str, Any] = json.loads(unpadder.update(padded) + unpadder.finalize())
    return result


def test_port_ranges() -> None:
    assert parse_port_range("0..0") is None
    assert parse_port_range("") is None
    assert parse_port_range("40000..41000") == (40000, 41000)
    for bad in ("40000", "41000..40000", "0..10", "1..70000", "x..y", "40000..40004"):
        with pytest.raises(ValueError):
            parse_port_range(bad)


def test_communication_port_requests() -> None:
    assert parse_request(b'{"signum": 2}') == ("signal", 2)
    assert parse_request(b'{"signum": 0}') == ("signal", 0)
    assert parse_request(b'{"shutdown": 1}') == ("shutdown", 0)
    for bad in (b"", b"\xff", b"[1]", b'{"signum": "2"}', b'{"signum": true}', b'{"signum": 11}',
                b'{"other": 1}', b"[" * 100000):
        with pytest.raises(ValueError):
            parse_request(bad)


def test_the_answer_decrypts_as_the_gateway_decrypts_it() -> None:
    info = {"shell_port": 1, "key": "k" * 64, "kernel_id": "abc", "comm_port": 7}
    assert decrypt(encrypt_payload(info, PUBLIC)) == info
    pem = PRIVATE.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert decrypt(encrypt_payload(info, pem)) == info  # PEM text is taken too


@dataclass
class Launched:
    proc: subprocess.Popen[bytes]
    conn: dict[str, Any]
    log: Path  # the launcher's and the kernel's stderr

    def client(self) -> BlockingKernelClient:
        kc = BlockingKernelClient()
        kc.load_connection_info({**self.conn, "ip": "127.0.0.1"})
        kc.start_channels()
        kc.wait_for_ready(timeout=30)
        return kc

    def request(self, body: bytes) -> None:
        with socket.create_connection(("127.0.0.1", self.conn["comm_port"]), timeout=5) as s:
            try:
                s.sendall(body)
            except (BrokenPipeError, ConnectionResetError):
                assert len(body) > 4096  # the launcher reads no more of a request than that

    def kernel(self) -> psutil.Process:
        children = psutil.Process(self.proc.pid).children()
        assert len(children) == 1, children
        return children[0]


@contextmanager
def launched(kernel: list[str], port_range: str = "0..0") -> Iterator[Launched]:
    """``kernelkit launch`` with a response socket of our own; its decrypted answer."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(60)
    port = listener.getsockname()[1]
    log = Path(tempfile.mkdtemp()) / "launch.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kernelkit", "launch", "--kernel-id", "kid-1",
             "--response-address", f"127.0.0.1:{port}", "--public-key", PUBLIC,
             "--port-range", port_range, "--ip", "127.0.0.1", *kernel],
            stderr=err)
    try:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
        yield Launched(proc, decrypt(data), log)
    finally:
        listener.close()
        if proc.poll() is None:
            proc.terminate()
        proc.wait(30)


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_a_launched_kernel_is_announced_used_interrupted_and_shut_down() -> None:
    with launched(["kk_testkernels:CommandKernel"], "41000..42000") as run:
        conn = run.conn
        assert conn["kernel_id"] == "kid-1"
        assert conn["pid"] == run.proc.pid and conn["pgid"] == os.getpgid(run.proc.pid)
        assert len(conn["key"]) >= 32 and conn["signature_scheme"] == "hmac-sha256"
        ports = [conn[f"{c}_port"] for c in ("shell", "iopub", "stdin", "control", "hb")]
        assert all(41000 <= p <= 42000 for p in [*ports, conn["comm_port"]]), conn
        assert run.kernel().pid != run.proc.pid
        kc = run.client()
        try:
            assert stdout_of(kc, "print hello") == "hello\n"
            modules = set(json.loads(stdout_of(kc, "modules")))
            assert "zmq" in modules and "cryptography" not in modules  # the launcher's only
            run.request(b'{"signum": 0}')  # a poll: nothing happens
            msg_id = kc.execute("loop")
            time.sleep(0.5)
            run.request(b'{"signum": 2}')  # how the gateway interrupts
            reply = kc.get_shell_msg(timeout=30)
            assert reply["parent_header"]["msg_id"] == msg_id
            assert reply["content"]["ename"] == "KeyboardInterrupt"
            assert stdout_of(kc, "print after") == "after\n"
            kernel = run.kernel()
            run.request(b'{"shutdown": 1}')
            assert run.proc.wait(30) == 0
            assert not kernel.is_running()
            assert refused(conn["comm_port"])
        finally:
            kc.stop_channels()


def test_the_port_range_is_not_passed_on_to_what_user_code_starts() -> None:
    with launched(["kk_testkernels:PythonKernel"], "41000..42000") as run:
        kc = run.client()
        try:
            code = ("import os, subprocess, sys; print(subprocess.run([sys.executable, '-c', "
                    "'import os; print(os.environ.get(\\'KERNELKIT_PORT_RANGE\\'))'], "
                    "capture_output=True, text=True).stdout.strip())")
            assert stdout_of(kc, code).strip() == "None"
        finally:
            kc.stop_channels()


def test_the_launcher_exits_with_its_kernel_and_closes_the_communication_port() -> None:
    with launched(["echo"]) as run:
        kc = run.client()
        try:
            kc.shutdown()
        finally:
            kc.stop_channels()
        assert run.proc.wait(30) == 0
        assert refused(run.conn["comm_port"])


def test_neither_outlives_the_other() -> None:
    with launched(["echo"]) as run:
        kernel = run.kernel()
        run.proc.kill()  # SIGKILL: the launcher cannot clean up; the kernel watches it
        kernel.wait(30)
    with launched(["echo"]) as run:
        kernel = run.kernel()
        kernel.kill()
        assert run.proc.wait(30) == 128 + signal.SIGKILL
        assert refused(run.conn["comm_port"])


def test_bad_requests_on_the_communication_port_are_dropped() -> None:
    with launched(["echo"]) as run:
        for body in (b"", b"junk", b'{"signum": 11}', b'{"signum": 19}', b"x" * 100000):
            run.request(body)
        with socket.create_connection(("127.0.0.1", run.conn["comm_port"]), timeout=5):
            time.sleep(0.1)  # a connection that sends nothing and goes
        kc = run.client()
        try:
            assert stdout_of(kc, "still here") == "still here"
        finally:
            kc.stop_channels()
        assert run.kernel().status() != psutil.STATUS_STOPPED  # SIGSTOP (19) was refused
        log = run.log.read_text()
        assert log.count("communication port: request dropped") == 6, log  # the empty one too
        assert "signal 19 is not one a gateway sends" in log


def test_a_bridge_kernel_through_the_launcher() -> None:
    with launched(["--", DENO, "run", str(ROOT / "examples/deno/echo.ts")]) as run:
        kc = run.client()
        try:
            assert stdout_of(kc, "from deno") == "from deno"
            backend = [p for p in run.kernel().children(recursive=True)]
            assert backend, "the Deno backend runs under the bridge host"
            run.request(b'{"shutdown": 1}')
            assert run.proc.wait(30) == 0
            psutil.wait_procs(backend, timeout=10)
            assert not any(p.is_running() for p in backend)
        finally:
            kc.stop_channels()


def test_a_kernel_that_cannot_start_says_why_and_nothing_is_sent() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-m", "kernelkit", "launch", "--kernel-id", "k",
         "--response-address", f"127.0.0.1:{port}", "--public-key", PUBLIC, "nosuch:Kernel"],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done
    assert "nosuch" in done.stderr and "exited with code" in done.stderr, done.stderr
    with pytest.raises(socket.timeout):
        listener.accept()
    listener.close()


@pytest.mark.parametrize("args, said", [
    (["--port-range", "5..1", "echo"], "--port-range"),
    (["--response-address", "nowhere", "echo"], "--response-address"),
    (["--public-key", "not-base64!", "echo"], "--public-key"),
    ([], "launch needs KERNEL"),
])
def test_launcher_mistakes_get_one_line(args: list[str], said: str) -> None:
    base = {"--kernel-id": "k", "--response-address": "127.0.0.1:9", "--public-key": PUBLIC}
    for i in range(0, len(args) - 1, 2):
        if args[i] in base:
            base[args[i]] = args[i + 1]
    rest = [a for i, a in enumerate(args)
            if not (a in base or (i > 0 and args[i - 1] in base))]
    argv = [x for pair in base.items() for x in pair] + rest
    done = subprocess.run([sys.executable, "-m", "kernelkit", "launch", *argv],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done
    assert said in done.stderr, done.stderr


def test_a_remote_kernelspec_calls_the_launcher_and_refuses_what_a_shell_would_read() -> None:
    local = {"argv": ["/opt/k/bin/python", "-m", "kernelkit", "run", "mod:K", "--path", "/srv",
                      "-f", "{connection_file}"], "display_name": "K", "language": "k",
             "metadata": {"kernelkit": {"kernel": "mod:K"}, "supported_encryption": ["curve"]}}
    eg = remote_spec(local, "enterprise-gateway", ["node1", "node2"])
    assert eg["argv"] == ["/opt/k/bin/python", "-m", "kernelkit", "launch",
                          "--kernel-id", "{kernel_id}", "--response-address",
                          "{response_address}", "--public-key", "{public_key}",
                          "--port-range", "{port_range}", "mod:K", "--path", "/srv"]
    assert eg["metadata"]["process_proxy"]["config"] == {"remote_hosts": "node1,node2"}
    assert "supported_encryption" not in eg["metadata"]
    gp = remote_spec(local, "gateway-provisioners", [])
    assert "--transport-encryption={transport_encryption}" in gp["argv"]
    assert gp["metadata"]["kernel_provisioner"] == {
        "provisioner_name": "distributed-provisioner", "config": {}}
    assert gp["metadata"]["supported_encryption"] == ["curve"]
    bridge = dict(local, argv=["/opt/k/bin/python", "-m", "kernelkit", "bridge", "-f",
                               "{connection_file}", "--", "/usr/bin/deno", "run", "/srv/k.ts"])
    assert remote_spec(bridge, "enterprise-gateway", [])["argv"][-4:] == [
        "--", "/usr/bin/deno", "run", "/srv/k.ts"]
    for unsafe in ("/srv/my kernels", "/srv/$(id)", "/srv/a;b", '/srv/"q"'):
        spaced = dict(local, argv=[*local["argv"][:5], "--path", unsafe, "-f",
                                   "{connection_file}"])
        with pytest.raises(UsageError, match="remote shell"):
            remote_spec(spaced, "enterprise-gateway", [])


def test_silent_connections_do_not_hold_up_the_gateways_requests() -> None:
    """Anyone local can connect to the communication port: twenty connections that send
    nothing (each may take REQUEST_TIMEOUT, 2 s) must not delay an interrupt behind them."""
    with launched(["kk_testkernels:CommandKernel"]) as run:
        kc = run.client()
        silent = [socket.create_connection(("127.0.0.1", run.conn["comm_port"]), timeout=5)
                  for _ in range(20)]
        try:
            msg_id = kc.execute("loop")
            time.sleep(0.5)
            run.request(b'{"signum": 2}')
            reply = kc.get_shell_msg(timeout=15)  # one at a time, the twenty would take 40 s
            assert reply["parent_header"]["msg_id"] == msg_id
            assert reply["content"]["ename"] == "KeyboardInterrupt"
        finally:
            for s in silent:
                s.close()
            kc.stop_channels()


def test_install_remote_launcher_writes_beside_the_local_spec(tmp_path: Path) -> None:
    def install(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kernelkit", "install", "echo",
                               "--prefix", str(tmp_path), *args],
                              capture_output=True, text=True, timeout=60)

    assert install().returncode == 0
    assert install("--remote-launcher", "enterprise-gateway").returncode == 0
    kernels = tmp_path / "share" / "jupyter" / "kernels"
    local = json.loads((kernels / "kernelkit-echo" / "kernel.json").read_text())
    remote = json.loads((kernels / "kernelkit-echo-remote" / "kernel.json").read_text())
    assert local["argv"][3] == "run" and remote["argv"][3] == "launch"
    assert remote["display_name"] == local["display_name"] + " (remote)"
    assert "remote_hosts" not in json.dumps(remote)  # the gateway's own list, then
    done = install("--remote-hosts", "node1")
    assert done.returncode == 2 and "--remote-hosts is for --remote-launcher" in done.stderr
