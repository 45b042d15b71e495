"""A Jupyter client that speaks to a gateway as JupyterLab does: REST for the kernel's life,
one websocket per kernel for its channels (the JSON form of the messaging protocol).

It is a test client of the gateways' public API, not of kernelkit's: the tests drive
Kernel Gateway and Enterprise Gateway through it, and the gateway speaks ZeroMQ to the kernel.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil
from websockets.sync.client import ClientConnection, connect


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gateway:
    """A gateway server's REST API at ``base`` (http://127.0.0.1:PORT), with its token."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.token = token

    def call(self, method: str, path: str, body: Any = None,
             timeout: float = 60) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method,
            headers={"Authorization": f"token {self.token}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def start(self, name: str, env: dict[str, str] | None = None,
              timeout: float = 90) -> str:
        """Start a kernel of kernelspec ``name``; its id."""
        body: dict[str, Any] = {"name": name}
        if env:
            body["env"] = env
        return str(self.call("POST", "/api/kernels", body, timeout=timeout)["id"])

    def kernels(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/api/kernels"))

    def interrupt(self, kernel_id: str) -> None:
        self.call("POST", f"/api/kernels/{kernel_id}/interrupt", {})

    def restart(self, kernel_id: str, timeout: float = 90) -> None:
        self.call("POST", f"/api/kernels/{kernel_id}/restart", {}, timeout=timeout)

    def delete(self, kernel_id: str, timeout: float = 60) -> None:
        self.call("DELETE", f"/api/kernels/{kernel_id}", timeout=timeout)

    def specs(self) -> dict[str, Any]:
        return dict(self.call("GET", "/api/kernelspecs"))

    @contextmanager
    def channels(self, kernel_id: str, ready_timeout: float = 60) -> Iterator[Channels]:
        url = self.base.replace("http", "ws", 1) + f"/api/kernels/{kernel_id}/channels"
        with connect(url, additional_headers={"Authorization": f"token {self.token}"},
                     max_size=None, open_timeout=30) as ws:
            channels = Channels(ws)
            channels.ready(ready_timeout)
            yield channels


class Channels:
    """A kernel's channels over one websocket: send a request, read what belongs to it."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.session = uuid.uuid4().hex

    def send(self, msg_type: str, content: dict[str, Any], channel: str = "shell") -> str:
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": msg_type, "session": self.session,
                       "username": "test", "version": "5.3",
                       # to the microsecond, as JupyterLab's are to the millisecond: a
                       # kernel compares it with a failure's time to abort what was queued
                       "date": datetime.now(timezone.utc).isoformat()},
            "parent_header": {}, "metadata": {}, "content": content,
            "channel": channel, "buffers": []}))
        return msg_id

    def receive(self, timeout: float = 30) -> dict[str, Any]:
        return dict(json.loads(self.ws.recv(timeout=timeout)))

    def collect(self, msg_id: str, timeout: float = 30,
                answer: Any = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The shell reply to ``msg_id`` and its IOPub messages through its idle.
        ``answer(prompt)`` replies to an ``input_request``."""
        reply: dict[str, Any] | None = None
        iopub: list[dict[str, Any]] = []
        idle = False
        deadline = time.monotonic() + timeout
        while reply is None or not idle:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply/idle for {msg_id}: {reply} {iopub}")
            msg = self.receive(timeout=left)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["channel"] == "stdin" and msg["msg_type"] == "input_request":
                assert answer is not None, msg
                self.send("input_reply", {"value": answer(msg["content"]["prompt"])},
                          channel="stdin")
            elif msg["channel"] in ("shell", "control"):
                reply = msg
            elif msg["channel"] == "iopub":
                iopub.append(msg)
                if (msg["msg_type"] == "status"
                        and msg["content"]["execution_state"] == "idle"):
                    idle = True
        return reply, iopub

    def execute(self, code: str, timeout: float = 30, answer: Any = None,
                allow_stdin: bool = False) -> tuple[dict[str, Any], str]:
        """Run code; its reply and what it printed to stdout."""
        msg_id = self.send("execute_request", {
            "code": code, "silent": False, "store_history": True,
            "user_expressions": {}, "allow_stdin": allow_stdin or answer is not None,
            "stop_on_error": True})
        reply, iopub = self.collect(msg_id, timeout=timeout, answer=answer)
        text = "".join(m["content"]["text"] for m in iopub
                       if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")
        return reply, text

    def ready(self, timeout: float = 60) -> None:
        """Wait until the kernel answers and its IOPub reaches us, as JupyterLab and
        jupyter_server's "nudge" do after a (re)start: a SUB socket that has just
        (re)connected misses what was published before its subscription arrived."""
        deadline = time.monotonic() + timeout
        sent: set[str] = set()
        while time.monotonic() < deadline:
            sent.add(self.send("kernel_info_request", {}))
            try:
                until = time.monotonic() + 0.5
                while time.monotonic() < until:
                    msg = self.receive(timeout=until - time.monotonic())
                    parent = msg.get("parent_header", {}).get("msg_id")
                    if msg["channel"] == "iopub" and parent in sent:
                        return
            except TimeoutError:
                continue
        raise TimeoutError("the kernel's IOPub never reached the client")

    def kernel_info(self, timeout: float = 30) -> dict[str, Any]:
        reply, _ = self.collect(self.send("kernel_info_request", {}), timeout=timeout)
        return reply


def wait_http(base: str, process: subprocess.Popen[bytes], log: Path,
              timeout: float = 90) -> None:
    """Wait until a server answers at ``base``; fail with its log if it exits or stalls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited {process.returncode}:\n{log.read_text()}")
        try:
            urllib.request.urlopen(base + "/api", timeout=2).read()
            return
        except urllib.error.HTTPError:
            return  # it answers, if only to say the request needs a token
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise RuntimeError(f"server at {base} did not answer in {timeout}s:\n{log.read_text()}")


def kernel_gateway_argv(*options: str) -> list[str]:
    """Kernel Gateway from this environment, in jupyter-websocket mode, listing kernels."""
    return [str(Path(sys.executable).parent / "jupyter-kernelgateway"),
            "--KernelGatewayApp.api=kernel_gateway.jupyter_websocket",
            "--JupyterWebsocketPersonality.list_kernels=True", *options]


@contextmanager
def serve_gateway(argv: list[str], app: str, jupyter_path: Path,
                  home: Path, env: dict[str, str] | None = None) -> Iterator[Gateway]:
    """Run a gateway server until the tests are done; stop it and check no kernel outlives it."""
    token = "gateway-test-token"
    port = free_port()
    env = dict(os.environ, JUPYTER_PATH=str(jupyter_path),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTER_DATA_DIR=str(home / "data"), JUPYTER_CONFIG_DIR=str(home / "config"),
               **(env or {}))
    log = home / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen([*argv, f"--{app}.ip=127.0.0.1", f"--port={port}",
                                    f"--{app}.auth_token={token}"],
                                   stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base, process, log)
        yield Gateway(base, token)
    finally:
        children = psutil.Process(process.pid).children(recursive=True)
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        _gone, alive = psutil.wait_procs(children, timeout=10)
        for child in alive:
            child.kill()
        assert not alive, f"kernels outlived the gateway: {alive}\n{log.read_text()}"


ENTERPRISE_GATEWAY = "jupyter-enterprise-gateway==3.3.*"
EG_VENV = Path(__file__).resolve().parents[2] / ".cache" / "enterprise-gateway-3.3"


def enterprise_gateway_venv() -> Path:
    """Enterprise Gateway's own environment, made once with pip (it pins jupyter_client < 7
    and jupyter_server < 2, so it cannot share the test environment)."""
    command = EG_VENV / "bin" / "jupyter-enterprisegateway"
    if not command.exists():
        shutil.rmtree(EG_VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(EG_VENV)], check=True)
        done = subprocess.run([str(EG_VENV / "bin" / "pip"), "install", "-q",
                               ENTERPRISE_GATEWAY], capture_output=True, text=True)
        assert done.returncode == 0, f"could not install {ENTERPRISE_GATEWAY}:\n{done.stderr}"
    return command


def interrupts_a_loop(gateway: Gateway, kernelspec: str,
                      env: dict[str, str] | None = None) -> None:
    """Start a command kernel, start its endless loop and interrupt it over REST once it has
    begun: the reply is a KeyboardInterrupt error, and the kernel goes on; delete it."""
    kernel_id = gateway.start(kernelspec, env=env)
    try:
        with gateway.channels(kernel_id) as channels:
            msg_id = channels.send("execute_request", {
                "code": "loop", "silent": False, "store_history": True,
                "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
            while True:  # the loop has begun once it says so
                msg = channels.receive(timeout=30)
                if msg["msg_type"] == "stream" and "started" in msg["content"]["text"]:
                    break
            gateway.interrupt(kernel_id)
            reply, _ = channels.collect(msg_id, timeout=30)
            assert reply["content"]["status"] == "error", reply
            assert reply["content"]["ename"] == "KeyboardInterrupt"
            reply, text = channels.execute("still here")
            assert text.strip() == "still here"
    finally:
        gateway.delete(kernel_id)


def install_gateway_kernels(prefix: Path, names: str, *options: str) -> Path:
    """The three kinds of kernelkit kernel the gateway tests run (built-in Echo, the Deno Echo
    bridge kernel, a Python module:Class), installed under ``prefix`` as ``<names>echo``,
    ``<names>deno-echo`` and ``<names>commands``; the Jupyter path that holds them."""
    support = Path(__file__).resolve().parent
    deno = str(Path(sys.executable).parent / "deno")
    echo_ts = str(support.parents[1] / "examples" / "deno" / "echo.ts")
    for args in (["echo", "--name", f"{names}echo"],
                 ["--name", f"{names}deno-echo", "--", deno, "run", echo_ts],
                 ["kk_testkernels:CommandKernel", "--name", f"{names}commands",
                  "--env", f"PYTHONPATH={support}"]):
        # (options before "--": everything after it is the bridge backend's command line)
        done = subprocess.run([sys.executable, "-m", "kernelkit", "install", "--prefix",
                               str(prefix), *options, *args],
                              cwd=support, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    return prefix / "share" / "jupyter"
