"""kernelkit backend SDK for Python: write a kernel's logic in any Python environment.

One file, standard library only: copy it next to your backend, or import it from
an installed kernelkit (``kernelkit.sdk.kernelkit_backend``). The kernelkit host
(``kernelkit bridge -- python mybackend.py``) speaks Jupyter; this module speaks the
bridge protocol (docs/bridge-protocol.md) on stdin/stdout::

    from kernelkit_backend import serve

    class Echo:
        info = {"implementation": "Echo", "implementation_version": "1.0",
                "language_info": {"name": "Any text", "mimetype": "text/plain",
                                  "file_extension": ".txt"}}

        def execute(self, request, ctx):
            if not request["silent"]:
                ctx.stream("stdout", request["code"])

    serve(Echo())

``print()`` inside ``execute`` becomes output of the cell; an exception becomes an
error reply with its traceback; SIGINT (an interrupt) raises KeyboardInterrupt in
the running code. ``ctx.input`` raises StdinNotImplementedError when the client does
not take input, and KeyboardInterrupt when the user interrupts while asked. Output
through ``ctx`` names its request: made after ``execute`` returned (from a thread), the
host logs it instead of showing it under another cell. Text written to the real stderr
is flushed before each reply, so that it lands in the cell it was written for.

A backend whose ``info`` says ``"subshells": True`` (bridge protocol 1.1) runs each
request on a thread of its own, so a subshell's cell runs while the notebook's does;
its methods must then be thread-safe. An interrupt raises KeyboardInterrupt in every
running request (in code blocked in a C call, such as ``time.sleep``, once it returns).
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import sys
import threading
import traceback
from typing import Any, BinaryIO

BRIDGE_PROTOCOL_VERSION = "1.1"


class _Channel:
    """The protocol's side of stdin/stdout, kept apart from what user code prints."""

    def __init__(self, rfile: BinaryIO, wfile: BinaryIO) -> None:
        self.rfile = rfile
        self.wfile = wfile
        self.next_id = 0
        self.pending: list[dict[str, Any]] = []  # requests that arrived while waiting for input
        self.lock = threading.Lock()  # whole lines, from any thread
        self.local = threading.local()  # .request: the host request this thread runs
        # Concurrent mode: our input requests waiting for the host, by id -> [event, answer].
        self.waiters: dict[str, list[Any]] | None = None

    def send(self, obj: dict[str, Any]) -> None:
        line = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)
        with self.lock:
            self.wfile.write(line.encode("utf-8", "surrogatepass") + b"\n")
            self.wfile.flush()

    def reply(self, obj: dict[str, Any]) -> None:
        """Send a response; what went to the real stderr first is flushed before it.

        The host shows stderr written before a reply in that request's cell, and reads
        the pipe when the reply arrives: text still in Python's buffer would miss it.
        """
        stderr = sys.__stderr__
        if stderr is not None:
            with contextlib.suppress(OSError, ValueError):  # closed, or a broken pipe
                stderr.flush()
        self.send(obj)

    def notify(self, method: str, params: dict[str, Any], request: Any = None) -> None:
        if request is None:
            request = getattr(self.local, "request", None)
        if request is not None:
            params = {**params, "request": request}
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def read(self) -> dict[str, Any] | None:
        while True:
            line = self.rfile.readline()
            if not line:
                return None
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict):
                return msg

    def ask(self, method: str, params: dict[str, Any]) -> Any:
        """Send a request to the host and wait for its answer."""
        with self.lock:
            self.next_id += 1
            rid = f"py{self.next_id}"
        request = getattr(self.local, "request", None)
        if request is not None:
            params = {**params, "request": request}
        if self.waiters is not None:  # concurrent: the reading thread hands us the answer
            waiter: list[Any] = [threading.Event(), None]
            self.waiters[rid] = waiter
            self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
            waiter[0].wait()
            return _answer(waiter[1])
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        while True:
            msg = self.read()
            if msg is None:
                raise EOFError("the host closed the connection")
            if msg.get("id") == rid and "method" not in msg:
                return _answer(msg)
            if msg.get("method") == "interrupt" and "id" not in msg:
                raise KeyboardInterrupt
            self.pending.append(msg)


class _Output(io.TextIOBase):
    """sys.stdout / sys.stderr while code runs: text becomes stream notifications."""

    def __init__(self, channel: _Channel, name: str) -> None:
        super().__init__()
        self.channel = channel
        self.name_ = name

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if text:
            self.channel.notify("stream", {"name": self.name_, "text": text})
        return len(text)


class Context:
    """What a running ``execute`` can do; every call becomes output of that cell.

    Its output names the request it was made for, even from another thread: output
    after the reply is then logged by the host, never shown under the next cell.
    """

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        self._request = getattr(channel.local, "request", None)

    def _notify(self, method: str, params: dict[str, Any]) -> None:
        self._channel.notify(method, params, self._request)

    def stream(self, name: str, text: str) -> None:
        self._notify("stream", {"name": name, "text": str(text)})

    def display(self, data: dict[str, Any], metadata: dict[str, Any] | None = None,
                transient: dict[str, Any] | None = None) -> None:
        self._notify("display_data", {"data": data, "metadata": metadata or {},
                                      "transient": transient or {}})

    def update_display(self, data: dict[str, Any], display_id: str,
                       metadata: dict[str, Any] | None = None) -> None:
        self._notify("update_display_data", {
            "data": data, "metadata": metadata or {}, "transient": {"display_id": display_id}})

    def clear_output(self, wait: bool = False) -> None:
        self._notify("clear_output", {"wait": wait})

    def result(self, data: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
        self._notify("execute_result", {"data": data, "metadata": metadata or {}})

    def input(self, prompt: str = "", password: bool = False) -> str:
        answer = self._channel.ask("input", {"prompt": str(prompt), "password": password})
        return str((answer or {}).get("value", ""))

    def getpass(self, prompt: str = "") -> str:
        return self.input(prompt, password=True)


class StdinNotImplementedError(RuntimeError):
    """The client does not take input (its ``allow_stdin`` is false)."""


def _answer(msg: dict[str, Any] | None) -> Any:
    if msg is None:
        raise EOFError("the host closed the connection")
    error = msg.get("error")
    if error:
        message = str(error.get("message", "input failed")) if isinstance(error, dict) else ""
        data = error.get("data") if isinstance(error, dict) else None
        ename = data.get("ename") if isinstance(data, dict) else None
        if ename == "KeyboardInterrupt":  # the user interrupted while asked for input
            raise KeyboardInterrupt
        if ename == "StdinNotImplementedError":
            raise StdinNotImplementedError(message)
        raise RuntimeError(message)
    return msg.get("result")


def error_content(exc: BaseException) -> dict[str, Any]:
    """The error triple of a Jupyter error reply, from an exception."""
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {"status": "error", "ename": type(exc).__name__, "evalue": str(exc),
            "traceback": [line.rstrip("\n") for line in lines]}


_DEFAULTS: dict[str, Any] = {
    "complete": lambda p: {"matches": [], "cursor_start": p.get("cursor_pos", 0),
                           "cursor_end": p.get("cursor_pos", 0), "metadata": {}},
    "inspect": lambda p: {"found": False, "data": {}, "metadata": {}},
    "is_complete": lambda p: {"status": "unknown"},
    "history": lambda p: {"history": []},
}


def serve(backend: Any, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
    """Answer the host's requests with ``backend``'s methods until shutdown or end of input."""
    channel = _Channel(stdin or sys.stdin.buffer, stdout or sys.stdout.buffer)
    outputs = (_Output(channel, "stdout"), _Output(channel, "stderr"))
    if (getattr(backend, "info", {}) or {}).get("subshells") is True:
        _serve_concurrently(backend, channel, outputs)
        return
    # SIGINT interrupts the backend's own code only: one that lands just after a reply
    # (the user interrupted as the cell ended) must not end the backend, nor cut a line.
    running = [False]

    def on_sigint(signum: int, frame: Any) -> None:
        if running[0]:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    while True:
        msg = channel.pending.pop(0) if channel.pending else channel.read()
        if msg is None:
            return
        method, rid, params = msg.get("method"), msg.get("id"), msg.get("params") or {}
        if method is None or rid is None:
            continue  # responses nobody waits for, and notifications (interrupt while idle)
        # Output names its request, so that the host never shows it under another cell.
        channel.local.request = rid
        try:
            running[0] = True
            try:
                result = _call(backend, channel, outputs, method, params)
            finally:
                running[0] = False
        except _MethodNotFound:
            channel.reply({"jsonrpc": "2.0", "id": rid,
                           "error": {"code": -32601, "message": f"unknown method {method}"}})
            continue
        except KeyboardInterrupt as exc:  # landed between the method's end and the flag
            result = error_content(exc)
        finally:
            channel.local.request = None
        channel.reply({"jsonrpc": "2.0", "id": rid, "result": result})
        if method == "shutdown":
            return


class _MethodNotFound(Exception):
    pass


def _serve_concurrently(backend: Any, channel: _Channel,
                        outputs: tuple[_Output, _Output]) -> None:
    """Protocol 1.1: this thread reads; each request runs on a thread of its own."""
    channel.waiters = {}
    running: dict[int, int] = {}  # thread ident -> host request id
    lock = threading.Lock()

    def interrupt(*_: Any) -> None:
        import ctypes

        with lock:
            for ident in running:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(ident), ctypes.py_object(KeyboardInterrupt))

    signal.signal(signal.SIGINT, interrupt)
    sys.stdout, sys.stderr = outputs  # each thread's text is tagged with its request

    def run(rid: Any, method: str, params: dict[str, Any]) -> None:
        channel.local.request = rid
        with lock:
            running[threading.get_ident()] = rid
        try:
            result = _call(backend, channel, outputs, method, params)
            answer = {"jsonrpc": "2.0", "id": rid, "result": result}
        except _MethodNotFound:
            answer = {"jsonrpc": "2.0", "id": rid,
                      "error": {"code": -32601, "message": f"unknown method {method}"}}
        except KeyboardInterrupt as exc:  # interrupted outside the method's own try
            answer = {"jsonrpc": "2.0", "id": rid, "result": error_content(exc)}
        finally:
            with lock:
                running.pop(threading.get_ident(), None)
        channel.reply(answer)
        if method == "shutdown":
            import os

            os._exit(0)

    while True:
        msg = channel.read()
        if msg is None:
            for waiter in list(channel.waiters.values()):
                waiter[0].set()
            return
        method, rid, params = msg.get("method"), msg.get("id"), msg.get("params") or {}
        if method is None:  # the host's answer to one of our input requests
            waiter = channel.waiters.pop(rid, None) if isinstance(rid, str) else None
            if waiter is not None:
                waiter[1] = msg
                waiter[0].set()
            continue
        if rid is None:
            if method == "interrupt":
                interrupt()
            continue
        if method in ("initialize", "shutdown"):
            run(rid, method, params)  # in order, on this thread
            continue
        threading.Thread(target=run, args=(rid, method, params), daemon=True).start()


def _call(backend: Any, channel: _Channel, outputs: tuple[_Output, _Output], method: str,
          params: dict[str, Any]) -> dict[str, Any]:
    if method == "initialize":
        return {"implementation": "kernelkit-python", "implementation_version": "0.0",
                "banner": "", "help_links": [], "interrupt_mode": "signal",
                **getattr(backend, "info", {})}
    if method == "shutdown":
        hook = getattr(backend, "shutdown", None)
        if hook is not None:
            hook(params)
        return {"status": "ok", "restart": bool(params.get("restart", False))}
    if method == "execute":
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = outputs
        try:
            reply = backend.execute(params, Context(channel))
        except (Exception, KeyboardInterrupt) as exc:
            return error_content(exc)
        finally:
            if channel.waiters is None:  # concurrent mode keeps them for every thread
                sys.stdout, sys.stderr = saved
        return {"status": "ok", "user_expressions": {}, "payload": [], **(reply or {})}
    if method not in _DEFAULTS:
        raise _MethodNotFound(method)
    hook = getattr(backend, method, None) or _DEFAULTS[method]
    try:
        return {"status": "ok", **hook(params)}
    except Exception as exc:
        return error_content(exc)
