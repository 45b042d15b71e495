"""``kernelkit launch``: a kernel on another host, started by a gateway's kernel launcher contract.

Jupyter Enterprise Gateway (its remote process proxies) and ``gateway_provisioners``
start a kernel on a remote host by running a *launcher* there, with four values:

* ``--kernel-id ID``: the gateway's id for the kernel; the answer must carry it;
* ``--response-address IP:PORT``: where the gateway waits for the connection info;
* ``--public-key KEY``: an RSA public key (base64 DER) the answer is encrypted to;
* ``--port-range LO..HI``: where every port must be (``0..0``: anywhere).

The launcher picks the kernel's key, starts the kernel as its child, bound where the
gateway can reach it with its ports in the range, and sends the gateway the connection
info: JSON encrypted with a fresh AES key (ECB, PKCS#7), that key wrapped with the
public key (RSA PKCS#1 v1.5), both base64 in ``{"version": 1, "key", "conn_info"}``,
base64 again, over one TCP connection. Then it listens on its *communication port*,
also in the range: each connection brings one JSON request, ``{"signum": N}`` (signal
the kernel; 0 only asks whether it is alive, which the accepted connection answers)
or ``{"shutdown": 1}``. When the kernel exits, so does the launcher, closing the port:
a refused connection is how the gateway learns the kernel has died.

The launcher is its own process, so that the kernel process never imports the
encryption library (the ``launch`` extra: ``cryptography``). It is the kernel's
parent: the kernel runs in its own process group, which gets every signal (as a
local Jupyter sends them), and watches the launcher (``JPY_PARENT_PID``), so that
neither outlives the other.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any

from .connection import PORT_RANGE_ENV, ConnectionFileError, ConnectionInfo, parse_port_range
from .errors import StartupError, UsageError

if TYPE_CHECKING:
    import argparse

# The signals a gateway sends: 0 (poll), SIGINT (interrupt), SIGTERM and SIGKILL (stop).
# The communication port needs no key, so anything else asked of it is refused.
ALLOWED_SIGNALS = frozenset({0, signal.SIGINT, signal.SIGTERM, signal.SIGKILL})
REQUEST_MAX_BYTES = 4096  # a request is a few dozen bytes of JSON
REQUEST_TIMEOUT = 2.0  # s a connection may take to send its request
MAX_PENDING = 64  # connections read at once on the communication port
KERNEL_START_TIMEOUT = 60.0  # s until the kernel has bound its ports
STOP_GRACE = 5.0  # s the kernel gets to exit after SIGTERM, before SIGKILL
SEND_TRIES = 10  # attempts to reach the response address, 0.5 s apart


def add_parser(sub: Any) -> None:
    """The ``launch`` subcommand; the old ``--RemoteProcessProxy.*`` spellings are accepted."""
    import argparse

    p = sub.add_parser(
        "launch",
        help="start a kernel for a gateway on this host (Enterprise Gateway's launcher "
        "contract): KERNEL, or -- CMD ARGS for a bridge backend",
    )
    p.add_argument("kernel", metavar="KERNEL", nargs="?",
                   help="a built-in kernel name (echo) or module:Class")
    p.add_argument("--kernel-id", "--RemoteProcessProxy.kernel-id", dest="kernel_id",
                   required=True, help="the gateway's id for the kernel")
    p.add_argument("--response-address", "--RemoteProcessProxy.response-address",
                   dest="response_address", required=True, metavar="IP:PORT",
                   help="where to send the connection info")
    p.add_argument("--public-key", "--RemoteProcessProxy.public-key", dest="public_key",
                   required=True, help="the gateway's RSA public key (base64 DER)")
    p.add_argument("--port-range", "--RemoteProcessProxy.port-range", dest="port_range",
                   default="0..0", metavar="LO..HI",
                   help="every port the kernel and launcher open is in this range (0..0: any)")
    p.add_argument("--spark-context-initialization-mode",
                   "--RemoteProcessProxy.spark-context-initialization-mode",
                   dest="spark_mode", default="none", help=argparse.SUPPRESS)
    p.add_argument("--transport-encryption", dest="transport_encryption", default="",
                   metavar="POLICY",
                   help="gateway_provisioners: CurveZMQ for the kernel's sockets: auto (if "
                   "libzmq has it) or required; empty or disabled: none")
    p.add_argument("--ip", default="0.0.0.0",
                   help="the address the kernel and launcher listen on (default 0.0.0.0: "
                   "the gateway reaches this host by its name)")
    p.add_argument("--path", metavar="DIR", help="put DIR first on sys.path before importing")


# -- the answer to the gateway (no I/O) ------------------------------------------------

def load_public_key(text: str) -> Any:
    """The gateway's RSA public key, from base64 DER (what gateways pass) or PEM text."""
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    except ImportError:
        raise StartupError("kernelkit launch needs the 'cryptography' package: "
                           "pip install 'kernelkit[launch]'") from None
    try:
        der = base64.b64decode(_pem_body(text), validate=True)
        key = serialization.load_der_public_key(der)
    except ValueError as exc:
        raise UsageError(f"--public-key is not a base64 RSA public key: {exc}") from None
    if not isinstance(key, RSAPublicKey):
        raise UsageError("--public-key is not an RSA key")
    return key


def encrypt_payload(conn_info: dict[str, Any], public_key: str) -> bytes:
    """The connection info as the gateway decrypts it (version 1 of its payload)."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.asymmetric import padding as asym
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    rsa_key = load_public_key(public_key)
    aes_key = secrets.token_bytes(16)
    padder = padding.PKCS7(128).padder()
    plain = padder.update(json.dumps(conn_info).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(aes_key), modes.ECB()).encryptor()  # the contract's mode
    sealed = encryptor.update(plain) + encryptor.finalize()
    wrapped = rsa_key.encrypt(aes_key, asym.PKCS1v15())
    payload = {
        "version": 1,
        "key": base64.b64encode(wrapped).decode(),
        "conn_info": base64.b64encode(sealed).decode(),
    }
    return base64.b64encode(json.dumps(payload).encode())


def _pem_body(key: str) -> str:
    """A key given as PEM text or as its base64 body alone (what gateways pass)."""
    lines = [ln.strip() for ln in key.strip().splitlines()]
    return "".join(ln for ln in lines if ln and not ln.startswith("-----"))


def parse_request(data: bytes) -> tuple[str, int]:
    """One communication-port request as ("signal", N) or ("shutdown", 0).

    Raises ValueError, with what was wrong, for anything else.
    """
    try:
        request = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValueError("not a JSON object") from None
    if not isinstance(request, dict):
        raise ValueError("not a JSON object")
    if request.get("shutdown"):
        return "shutdown", 0
    signum = request.get("signum")
    if isinstance(signum, bool) or not isinstance(signum, int):
        raise ValueError("neither 'signum' (an integer) nor 'shutdown'")
    if signum not in ALLOWED_SIGNALS:
        raise ValueError(f"signal {signum} is not one a gateway sends (0, 2, 9, 15)")
    return "signal", signum


def transport_encryption(text: str) -> str | None:
    """"auto" or "required", or None for none: the gateway passes "" when it wants none,
    and a placeholder it did not fill (``{transport_encryption}``) means the same."""
    policy = text.strip().lower()
    if policy in ("", "none", "disabled") or (policy.startswith("{") and policy.endswith("}")):
        return None
    if policy not in ("auto", "required"):
        raise UsageError(f"--transport-encryption {text!r}: auto, required or disabled")
    return policy


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    try:
        port = int(port_text)
    except ValueError:
        port = 0
    if not sep or not host or not 0 < port < 65536:
        raise UsageError(f"--response-address {text!r} is not IP:PORT")
    return host, port


# -- the launcher -------------------------------------------------------------------------

class Launcher:
    """One kernel for one gateway: started, announced, signalled, stopped with it."""

    def __init__(self, args: argparse.Namespace, kernel_argv: list[str]) -> None:
        self.args = args
        self.kernel_argv = kernel_argv  # with {connection_file} still in it
        try:
            self.port_range = parse_port_range(args.port_range)
        except ValueError as exc:
            raise UsageError(f"--port-range: {exc}") from None
        self.response = parse_address(args.response_address)
        load_public_key(args.public_key)  # a bad key is refused before a kernel starts
        self.encryption = transport_encryption(args.transport_encryption)
        self.folder = tempfile.mkdtemp(prefix="kernelkit-launch-")  # mode 0700
        self.connection_file = os.path.join(self.folder, f"kernel-{args.kernel_id}.json")
        self.child: subprocess.Popen[bytes] | None = None
        self.listener: socket.socket | None = None
        self.refused = 0  # requests refused, for rate-limited logging

    def run(self) -> int:
        try:
            info = self._start_kernel()
            self.listener = self._listen()
            comm_port = self.listener.getsockname()[1]
            self._answer(info, comm_port)
            return self._serve()
        finally:
            self._stop_kernel()
            if self.listener is not None:
                self.listener.close()
            for name in os.listdir(self.folder):
                os.unlink(os.path.join(self.folder, name))
            os.rmdir(self.folder)

    def _start_kernel(self) -> ConnectionInfo:
        info = ConnectionInfo(ip=self.args.ip, key=secrets.token_hex(32),
                              kernel_name=os.environ.get("KERNEL_NAME", ""))
        if self.encryption is not None:
            import zmq

            if zmq.has("curve"):
                public, secret = zmq.curve_keypair()
                info.curve_publickey, info.curve_secretkey = public.decode(), secret.decode()
            elif self.encryption == "required":
                raise StartupError("--transport-encryption required: this libzmq has no "
                                   "CurveZMQ")
        info.write(self.connection_file)
        env = dict(os.environ, JPY_PARENT_PID=str(os.getpid()))
        env.pop(PORT_RANGE_ENV, None)
        if self.port_range is not None:
            env[PORT_RANGE_ENV] = "{}..{}".format(*self.port_range)
        argv = [a.replace("{connection_file}", self.connection_file) for a in self.kernel_argv]
        try:
            # Its own process group, as Jupyter starts kernels: signals reach the kernel
            # and whatever it started (a bridge's backend) together.
            self.child = subprocess.Popen(argv, env=env, start_new_session=True)
        except OSError as exc:
            raise StartupError(f"cannot start the kernel {argv[0]}: {exc}") from None
        # The kernel rewrites the file once it has bound its ports (they were 0).
        deadline = time.monotonic() + KERNEL_START_TIMEOUT
        while time.monotonic() < deadline:
            code = self.child.poll()
            if code is not None:
                raise StartupError(f"the kernel exited with code {code} before it listened")
            try:
                bound = ConnectionInfo.load(self.connection_file)
            except ConnectionFileError:
                bound = None  # (not replaced yet, or mid-rename)
            if bound is not None and 0 not in bound.ports():
                return bound
            time.sleep(0.02)
        raise StartupError(f"the kernel did not listen within {KERNEL_START_TIMEOUT:g} s")

    def _listen(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.args.ip else socket.AF_INET
        lo, hi = self.port_range or (0, 0)
        tries = 1 if self.port_range is None else min(200, hi - lo + 1)
        for _ in range(tries):
            sock = socket.socket(family, socket.SOCK_STREAM)
            port = 0 if self.port_range is None else secrets.randbelow(hi - lo + 1) + lo
            try:
                sock.bind((self.args.ip, port))
            except OSError:
                sock.close()
                continue
            sock.listen(16)
            return sock
        raise StartupError(f"no free port for the communication port in {self.args.port_range}")

    def _answer(self, info: ConnectionInfo, comm_port: int) -> None:
        assert self.child is not None
        conn = info.to_dict()
        if conn["ip"] in ("0.0.0.0", "::"):  # a gateway uses the host it chose; others need one
            conn["ip"] = _host_address()
        conn.update(pid=os.getpid(), pgid=os.getpgid(0), comm_port=comm_port,
                    kernel_id=self.args.kernel_id)
        payload = encrypt_payload(conn, self.args.public_key)
        last: OSError | None = None
        for _ in range(SEND_TRIES):
            try:
                with socket.create_connection(self.response, timeout=5) as sock:
                    sock.sendall(payload)
                return
            except OSError as exc:
                last = exc
                time.sleep(0.5)
        raise StartupError(f"cannot send the connection info to {self.args.response_address}: "
                           f"{last}")

    def _serve(self) -> int:
        """Answer the communication port until the kernel exits or a shutdown is asked.

        Connections are read side by side, each until its peer closes, a whole JSON object
        has come, or its time or size runs out: one that sends nothing cannot hold up the
        gateway's next request (anyone local can connect, without a key).
        """
        assert self.child is not None and self.listener is not None
        pending: dict[socket.socket, tuple[bytes, float]] = {}  # connection -> (read, deadline)
        try:
            while True:
                code = self.child.poll()
                if code is not None:
                    return 128 - code if code < 0 else code  # killed by a signal, as a shell says
                now = time.monotonic()
                for conn, (data, deadline) in list(pending.items()):
                    if now >= deadline:
                        del pending[conn]
                        conn.close()
                        if self._obey(data):
                            return 0
                readable, _, _ = select.select([self.listener, *pending], [], [], 0.2)
                for sock in readable:
                    if sock is self.listener:
                        self._accept(pending)
                        continue
                    data, deadline = pending[sock]
                    try:
                        chunk = sock.recv(REQUEST_MAX_BYTES - len(data))
                    except BlockingIOError:
                        continue
                    except OSError:
                        chunk = b""
                    data += chunk
                    if chunk and len(data) < REQUEST_MAX_BYTES and not _whole(data):
                        pending[sock] = (data, deadline)
                        continue
                    del pending[sock]
                    sock.close()
                    if self._obey(data):
                        return 0
        finally:
            for conn in pending:
                conn.close()

    def _accept(self, pending: dict[socket.socket, tuple[bytes, float]]) -> None:
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        conn.setblocking(False)
        if len(pending) >= MAX_PENDING:  # the oldest goes: a flood cannot pile up
            oldest = min(pending, key=lambda c: pending[c][1])
            del pending[oldest]
            oldest.close()
            self._refuse("communication port: too many connections at once; the oldest closed")
        pending[conn] = (b"", time.monotonic() + REQUEST_TIMEOUT)

    def _obey(self, data: bytes) -> bool:
        """Carry out one request; whether it was a shutdown."""
        assert self.child is not None
        try:
            what, signum = parse_request(data)
        except ValueError as exc:
            self._refuse(f"communication port: request dropped ({exc}): {data[:80]!r}")
            return False
        if what == "shutdown":
            return True
        if signum:
            with _suppress_lookup():
                os.killpg(self.child.pid, signum)
        return False

    def _refuse(self, text: str) -> None:
        self.refused += 1
        if self.refused <= 10 or self.refused % 1000 == 0:  # anyone local can connect
            print(f"kernelkit launch: {text} (refused so far: {self.refused})",
                  file=sys.stderr, flush=True)

    def _stop_kernel(self) -> None:
        """SIGTERM the kernel's group, then SIGKILL what is left after the grace period."""
        child = self.child
        if child is None:
            return
        if child.poll() is None:
            with _suppress_lookup():
                os.killpg(child.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(STOP_GRACE)
        with _suppress_lookup():  # what the kernel started and left (it has its own group)
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def _host_address() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def _whole(data: bytes) -> bool:
    """Whether the bytes are a whole JSON value (a request needs no closed connection)."""
    try:
        json.loads(data)
    except (ValueError, RecursionError):
        return False
    return True


def _suppress_lookup() -> contextlib.suppress:
    """A process group that is gone already (or never ours) is not an error here."""
    return contextlib.suppress(ProcessLookupError, PermissionError)


def kernel_argv(args: argparse.Namespace, backend: list[str]) -> list[str]:
    """The kernel's command line, as ``kernelkit install`` would write it."""
    from .kernelspec import bridge_argv, run_argv

    if backend:
        if args.kernel:
            raise UsageError("give either KERNEL or -- CMD ARGS, not both")
        return bridge_argv(backend)
    if not args.kernel:
        raise UsageError("launch needs KERNEL (a built-in name or module:Class), "
                         "or -- CMD ARGS for a bridge backend")
    return run_argv(args.kernel, args.path)


def run(args: argparse.Namespace) -> int:
    if args.spark_mode not in ("none", ""):
        print(f"kernelkit launch: warning: spark context mode {args.spark_mode!r} ignored: "
              "kernelkit kernels do not start a Spark context", file=sys.stderr, flush=True)
    launcher = Launcher(args, kernel_argv(args, list(args.backend_command)))

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # the finally in Launcher.run stops the kernel

    # (SIGHUP is left as it is: gateways start the launcher under nohup.) The handlers are
    # set before the kernel starts, so that it begins with SIGINT at its default even when
    # the launcher was started in the background with SIGINT ignored, as `cmd &` does.
    signal.signal(signal.SIGTERM, stop)

    def forward(signum: int, frame: object) -> None:  # `kill -INT` by a gateway without comm port
        if launcher.child is not None:
            with _suppress_lookup():
                os.killpg(launcher.child.pid, signum)

    signal.signal(signal.SIGINT, forward)
    return launcher.run()


# -- kernelspecs for gateways -------------------------------------------------------------

GATEWAYS = ("enterprise-gateway", "gateway-provisioners")
EG_DISTRIBUTED = "enterprise_gateway.services.processproxies.distributed.DistributedProcessProxy"
# Gateways run the argv on the remote host by joining it with spaces into a shell command,
# unquoted: anything but these characters would be read by that shell.
_SHELL_SAFE = re.compile(r"^[A-Za-z0-9_./:=@%+,{}-]+$")


def remote_spec(spec: dict[str, Any], gateway: str, hosts: list[str]) -> dict[str, Any]:
    """A local kernelspec made into one a gateway launches on remote hosts through
    ``kernelkit launch`` (Enterprise Gateway's distributed process proxy, or
    gateway_provisioners' distributed provisioner)."""
    argv = list(spec["argv"])
    if argv[1:3] != ["-m", "kernelkit"] or argv[3] not in ("run", "bridge"):
        raise UsageError("--remote-launcher: this kernel is not started by `kernelkit run` "
                         "or `kernelkit bridge`")
    rest = argv[4:]
    at = rest.index("-f")
    del rest[at : at + 2]  # the launcher writes the connection file on the remote host
    contract = ["--kernel-id", "{kernel_id}", "--response-address", "{response_address}",
                "--public-key", "{public_key}", "--port-range", "{port_range}"]
    if gateway == "gateway-provisioners":
        # One word even when the gateway fills in nothing (no encryption wanted).
        contract.append("--transport-encryption={transport_encryption}")
    new_argv = [*argv[:3], "launch", *contract, *rest]
    unsafe = [a for a in new_argv if not _SHELL_SAFE.match(a)]
    if unsafe:
        raise UsageError(
            "--remote-launcher: the gateway runs the kernel's command line through a remote "
            f"shell without quoting it, so it may not contain {unsafe[0]!r} (spaces, quotes "
            "and shell characters); install from a path without them")
    metadata = dict(spec.get("metadata") or {})
    if gateway == "enterprise-gateway":
        proxy: dict[str, Any] = {"class_name": EG_DISTRIBUTED}
        if hosts:
            proxy["config"] = {"remote_hosts": ",".join(hosts)}
        metadata["process_proxy"] = proxy
        metadata.pop("supported_encryption", None)  # Enterprise Gateway 3 cannot use it
    else:
        metadata["kernel_provisioner"] = {
            "provisioner_name": "distributed-provisioner",
            "config": {"remote_hosts": hosts} if hosts else {},
        }
    return {**spec, "argv": new_argv, "metadata": metadata}
