"""kernelkit backend SDK for Python: write a kernel's logic in any Python environment.

(Why ~770 lines in one file: it is copied next to a backend, so it must stay one file
with no imports of its own; the channel, the comms and the two serving modes are its
sections, in that order.)

One file, standard library only: copy it next to your backend (it is
``src/kernelkit/sdk/python/kernelkit_backend.py`` in kernelkit's source tree). The kernelkit host
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
error reply with its traceback; an interrupt (SIGINT, or the ``interrupt`` message of
``interrupt_mode: "message"``) raises KeyboardInterrupt in the running code.
``ctx.input`` raises StdinNotImplementedError when the client does not take input, and
KeyboardInterrupt when the user interrupts while asked. Output
through ``ctx`` names its request: made after ``execute`` returned (from a thread), the
host logs it instead of showing it under another cell. Text written to the real stderr
is flushed before each reply, so that it lands in the cell it was written for.

A backend whose ``info`` says ``"subshells": True`` (bridge protocol 1.1) runs each
request on a thread of its own, so a subshell's cell runs while the notebook's does;
its methods must then be thread-safe. An interrupt raises KeyboardInterrupt in every
running request (in code blocked in a C call, such as ``time.sleep``, once it returns).

Comms (bridge protocol 1.2), the two-way channels Jupyter widgets are built on, are
the module-level ``comms`` (also ``ctx.comms``)::

    from kernelkit_backend import comms

    def echo(comm, msg):                    # the frontend opened a comm to "echo"
        comm.on_msg(lambda m: comm.send({"echo": m["data"]}, buffers=m["buffers"]))

    comms.register_target("echo", echo)     # before serve(): sent in initialize
    ...
    comm = comms.open("my.target", {"x": 1}, buffers=[b"raw"])  # in a cell, or later
    comm.send({"y": 2}); comm.close()

A message given to a callback is a dict ``{"comm_id", "data", "metadata", "buffers"}``,
its buffers ``bytes``; buffers you send may be any bytes-like objects. Targets may also
be given as ``backend.comm_targets`` (a dict name -> function), and registered or
unregistered at any time. Output printed in a callback belongs to the comm message
that called it. A callback that raises refuses the comm (a target) or fails the
message: the host logs the error, the backend goes on. Comm calls are thread-safe, and
may be made from any thread, between requests too (a timer).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import json
import os
import queue
import signal
import sys
import threading
import traceback
import uuid
from collections.abc import Callable
from typing import Any, BinaryIO

BRIDGE_PROTOCOL_VERSION = "1.2"


class _Channel:
    """The protocol's side of stdin/stdout, kept apart from what user code prints."""

    def __init__(self, rfile: BinaryIO, wfile: BinaryIO) -> None:
        self.rfile = rfile
        self.wfile = wfile
        self.next_id = 0
        self.lock = threading.Lock()  # whole lines, from any thread
        self.local = threading.local()  # .request: the host request this thread runs
        # Our input requests waiting for the host, by id -> [event, answer]: the reading
        # thread (serve's, in both modes) hands each its answer. Owned by that thread and
        # the asking one, under ``lock``.
        self.waiters: dict[str, list[Any]] = {}
        self.concurrent = False  # protocol 1.1: each request on a thread of its own

    def send(self, obj: dict[str, Any], strict: bool = False) -> None:
        """Write one line; ``strict``: what JSON cannot hold is a TypeError, not its str()."""
        line = json.dumps(obj, ensure_ascii=False, separators=(",", ":"),
                          default=None if strict else str)
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

    def notify(self, method: str, params: dict[str, Any], request: Any = None,
               strict: bool = False) -> None:
        if request is None:
            request = getattr(self.local, "request", None)
        if request is not None:
            params = {**params, "request": request}
        self.send({"jsonrpc": "2.0", "method": method, "params": params}, strict)

    def read(self) -> dict[str, Any] | None:
        while True:
            line = self.rfile.readline()
            if not line:
                return None
            try:
                msg = json.loads(line)
            except ValueError as exc:  # JSON-RPC 2.0: a parse error answers id null
                self.send({"jsonrpc": "2.0", "id": None,
                           "error": {"code": -32700, "message": f"parse error: {exc}"}})
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
        waiter: list[Any] = [threading.Event(), None]
        with self.lock:
            self.waiters[rid] = waiter
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        waiter[0].wait()
        if waiter[1] is None:
            raise EOFError("the host closed the connection")
        return _answer(waiter[1])

    def answered(self, msg: dict[str, Any]) -> None:
        """The host's answer to one of our requests (on the reading thread)."""
        rid = msg.get("id")
        with self.lock:
            waiter = self.waiters.pop(rid, None) if isinstance(rid, str) else None
        if waiter is not None:
            waiter[1] = msg
            waiter[0].set()

    def closed(self) -> None:
        """End of input: nobody will answer the requests still waiting."""
        with self.lock:
            left, self.waiters = list(self.waiters.values()), {}
        for waiter in left:
            waiter[0].set()


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


# -- comms (bridge protocol 1.2) ----------------------------------------------------------

CommCallback = Callable[[dict[str, Any]], Any]
TargetHandler = Callable[["Comm", dict[str, Any]], Any]


class CommError(Exception):
    """A host comm request this backend refuses: answered with a JSON-RPC error."""

    def __init__(self, message: str, code: int = -32000, ename: str = "CommError",
                 exc: BaseException | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.data: dict[str, Any] = {"ename": ename, "evalue": message}
        if exc is not None:
            self.data["traceback"] = error_content(exc)["traceback"]


def _encode(buffers: Any) -> list[str]:
    """Buffers given to send/open/close (bytes-like objects) as base64 strings."""
    if buffers is None:
        return []
    if isinstance(buffers, (str, bytes, bytearray, memoryview)) or not hasattr(
            buffers, "__iter__"):
        raise TypeError(f"buffers must be a list of bytes-like objects, not "
                        f"{type(buffers).__name__}")
    encoded = []
    for i, item in enumerate(buffers):
        try:
            raw = memoryview(item).tobytes()
        except TypeError:
            raise TypeError(f"buffers[{i}] must be bytes-like, not {type(item).__name__}") \
                from None
        encoded.append(base64.b64encode(raw).decode("ascii"))
    return encoded


def _decode(params: dict[str, Any]) -> dict[str, Any]:
    """The message a callback gets, from a host request's params (buffers: base64 -> bytes)."""
    comm_id, data, metadata = params.get("comm_id"), params.get("data"), params.get("metadata")
    if not isinstance(comm_id, str) or not comm_id:
        raise CommError("comm_id must be a non-empty string", -32602, "InvalidParams")
    if not isinstance(data if data is not None else {}, dict):
        raise CommError("data must be an object", -32602, "InvalidParams")
    if not isinstance(metadata if metadata is not None else {}, dict):
        raise CommError("metadata must be an object", -32602, "InvalidParams")
    raw = params.get("buffers") or []
    if not isinstance(raw, list):
        raise CommError("buffers must be an array of base64 strings", -32602, "InvalidParams")
    buffers = []
    for i, item in enumerate(raw):
        try:
            if not isinstance(item, str):
                raise ValueError
            buffers.append(base64.b64decode(item, validate=True))
        except (ValueError, binascii.Error):
            raise CommError(f"buffers[{i}] is not a base64 string", -32602,
                            "InvalidParams") from None
    return {"comm_id": comm_id, "data": data or {}, "metadata": metadata or {},
            "buffers": buffers}


def _check_dict(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"comm {name} must be a dict, not {type(value).__name__}")
    return value


def _where(exc: BaseException) -> str:
    """Where a callback raised (its innermost frame), for the host's log line.

    The host logs an error response's ``data.ename`` and ``message``, not its traceback.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" (at {last.filename.rsplit('/', 1)[-1]}:{last.lineno} in {last.name})"


class Comm:
    """One comm, opened by either side: send to the frontend, callbacks for what it sends.

    Made by ``comms.open`` or given to a target's handler; never made directly.
    """

    def __init__(self, manager: Comms, comm_id: str, target_name: str) -> None:
        self.comm_id = comm_id
        self.target_name = target_name
        self._manager = manager
        self._closed = False
        # Held while a message for this comm is written: nothing goes out after its close.
        self._lock = threading.Lock()
        self._on_msg: CommCallback | None = None
        self._on_close: CommCallback | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Comm {self.comm_id} {self.target_name!r} {state}>"

    @property
    def closed(self) -> bool:
        return self._closed

    def send(self, data: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
             buffers: Any = None) -> None:
        """Send a comm_msg to the frontend; a RuntimeError once the comm is closed."""
        params = self._manager._params(self.comm_id, data, metadata, buffers)
        with self._lock:
            if self._closed:
                raise RuntimeError(f"comm {self.comm_id} ({self.target_name}) is closed")
            self._manager._notify("comm_msg", params)

    def close(self, data: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
              buffers: Any = None) -> None:
        """Close the comm on both sides (comm_close to the frontend); twice does nothing."""
        params = self._manager._params(self.comm_id, data, metadata, buffers)
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._manager._forget(self)
            self._manager._notify("comm_close", params)

    def on_msg(self, callback: CommCallback | None) -> None:
        """Call ``callback(msg)`` for each comm_msg the frontend sends (None: stop)."""
        self._on_msg = callback

    def on_close(self, callback: CommCallback | None) -> None:
        """Call ``callback(msg)`` when the frontend closes the comm (None: stop)."""
        self._on_close = callback


class Comms:
    """This backend's comm targets and open comms; the module-level ``comms`` is the one.

    Shared state: ``_lock`` guards ``_targets``, ``_comms`` and ``_announced``, and is
    held while a target change is written, so the host sees changes in the order made.
    Callbacks run without any lock held.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._targets: dict[str, TargetHandler] = {}
        self._comms: dict[str, Comm] = {}
        self._channel: _Channel | None = None
        self._announced = False  # initialize was answered: target changes are notifications
        self._host_comms = True  # the host speaks protocol 1.2 or later

    # -- the API -----------------------------------------------------------------------

    def register_target(self, target_name: str, handler: TargetHandler) -> None:
        """Call ``handler(comm, msg)`` when the frontend opens a comm to ``target_name``.

        Before ``serve`` (or while it starts) it is sent in ``initialize``; later, the
        host is told at once. Registering a name again replaces its handler.
        """
        if not isinstance(target_name, str) or not target_name:
            raise TypeError("a comm target name must be a non-empty string")
        if not callable(handler):
            raise TypeError(f"the handler of comm target {target_name!r} must be callable")
        with self._lock:
            new = target_name not in self._targets
            self._targets[target_name] = handler
            if new and self._announced:
                self._tell_target("comm_register_target", target_name)

    def unregister_target(self, target_name: str) -> TargetHandler | None:
        """Stop accepting comms to ``target_name`` (open ones stay); its handler, if any."""
        with self._lock:
            handler = self._targets.pop(target_name, None)
            if handler is not None and self._announced:
                self._tell_target("comm_unregister_target", target_name)
        return handler

    def open(self, target_name: str, data: dict[str, Any] | None = None,
             metadata: dict[str, Any] | None = None, buffers: Any = None,
             comm_id: str | None = None, target_module: str | None = None) -> Comm:
        """Open a comm to the frontend's ``target_name`` (comm_open); the new Comm."""
        if not isinstance(target_name, str):
            raise TypeError(f"target_name must be a string, not {type(target_name).__name__}")
        comm_id = uuid.uuid4().hex if comm_id is None else comm_id
        if not isinstance(comm_id, str) or not comm_id:
            raise TypeError("comm_id must be a non-empty string")
        params = self._params(comm_id, data, metadata, buffers)
        params["target_name"] = target_name
        if target_module is not None:
            params["target_module"] = str(target_module)
        comm = Comm(self, comm_id, target_name)
        with self._lock:
            if self._channel is None or not self._announced:
                raise RuntimeError("comms can be opened once serve() has been initialized "
                                   "by the host: in a request, or later")
            if not self._host_comms:
                raise RuntimeError("this kernelkit host speaks a bridge protocol without "
                                   "comms: they need kernelkit with protocol 1.2")
            if comm_id in self._comms:
                raise ValueError(f"comm {comm_id} is open already")
            self._comms[comm_id] = comm
        try:
            with comm._lock:  # nothing on this comm goes out before its comm_open
                self._notify("comm_open", params)
        except BaseException:
            self._forget(comm)
            comm._closed = True
            raise
        return comm

    def get(self, comm_id: str) -> Comm | None:
        """The open comm with this id, if any."""
        with self._lock:
            return self._comms.get(comm_id)

    @property
    def comms(self) -> dict[str, Comm]:
        """The open comms by id (a copy)."""
        with self._lock:
            return dict(self._comms)

    # -- serve()'s side ----------------------------------------------------------------

    def _attach(self, channel: _Channel) -> None:
        with self._lock:
            self._channel = channel
            self._announced = False
            self._comms.clear()

    def _initialize(self, params: dict[str, Any]) -> list[str]:
        """The targets for initialize's result; notes whether the host has comms."""
        version = str(params.get("protocol_version", ""))
        try:
            self._host_comms = tuple(int(p) for p in version.split(".")) >= (1, 2)
        except ValueError:
            self._host_comms = True  # a host that says something new: assume it can
        with self._lock:
            return sorted(self._targets)

    def _initialized(self, sent: list[str]) -> None:
        """initialize was answered with ``sent``: tell the host what changed since."""
        with self._lock:
            self._announced = True
            for name in sorted(set(self._targets) - set(sent)):
                self._tell_target("comm_register_target", name)
            for name in sorted(set(sent) - set(self._targets)):
                self._tell_target("comm_unregister_target", name)

    def _tell_target(self, method: str, name: str) -> None:
        if self._channel is not None and self._host_comms:
            self._channel.send({"jsonrpc": "2.0", "method": method,
                                "params": {"target_name": name}})

    def _params(self, comm_id: str, data: Any, metadata: Any, buffers: Any) -> dict[str, Any]:
        params: dict[str, Any] = {"comm_id": comm_id, "data": _check_dict("data", data)}
        meta = _check_dict("metadata", metadata)
        if meta:
            params["metadata"] = meta
        encoded = _encode(buffers)
        if encoded:
            params["buffers"] = encoded
        return params

    def _notify(self, method: str, params: dict[str, Any]) -> None:
        channel = self._channel
        if channel is None:
            raise RuntimeError("comms need a running backend (serve)")
        channel.notify(method, params, strict=True)

    def _forget(self, comm: Comm) -> None:
        with self._lock:
            if self._comms.get(comm.comm_id) is comm:
                del self._comms[comm.comm_id]

    def _handle(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """A host request comm_open/comm_msg/comm_close: {} or a CommError."""
        msg = _decode(params)
        comm_id = msg["comm_id"]
        if method == "comm_open":
            target = params.get("target_name")
            if not isinstance(target, str):
                raise CommError("target_name must be a string", -32602, "InvalidParams")
            with self._lock:
                handler = self._targets.get(target)
                if handler is None:
                    raise CommError(f"no comm target {target!r} is registered", ename="NoTarget")
                if comm_id in self._comms:
                    raise CommError(f"comm {comm_id} is open already", ename="CommExists")
                comm = self._comms[comm_id] = Comm(self, comm_id, target)
            try:
                handler(comm, msg)
            except (Exception, KeyboardInterrupt) as exc:
                comm._closed = True  # refused: the host closes it for the frontend
                self._forget(comm)
                raise CommError(f"{exc}{_where(exc)}", ename=type(exc).__name__,
                                exc=exc) from None
            return {}
        with self._lock:
            comm = self._comms.get(comm_id)  # type: ignore[assignment]
        if comm is None:
            raise CommError(f"{method} for comm {comm_id}, which is not open", ename="NoComm")
        if method == "comm_close":
            with comm._lock:
                comm._closed = True
            self._forget(comm)
            callback = comm._on_close
        else:
            callback = comm._on_msg
        if callback is not None:
            try:
                callback(msg)
            except (Exception, KeyboardInterrupt) as exc:
                raise CommError(f"{exc}{_where(exc)}", ename=type(exc).__name__,
                                exc=exc) from None
        return {}


comms = Comms()


class Context:
    """What a running ``execute`` can do; every call becomes output of that cell.

    Its output names the request it was made for, even from another thread: output
    after the reply is then logged by the host, never shown under the next cell.
    """

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        self._request = getattr(channel.local, "request", None)
        self.comms = comms  # the backend's comms (the module-level ``comms``)

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
    comms._attach(channel)
    targets = getattr(backend, "comm_targets", None) or {}
    if not isinstance(targets, dict):
        raise TypeError("backend.comm_targets must be a dict: target name -> handler")
    for name, handler in targets.items():
        comms.register_target(name, handler)
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
    # One request at a time on this thread; a thread of the SDK's reads stdin all along, so
    # that a message-mode interrupt reaches a running request (as SIGINT does), and answers
    # to ctx.input reach it while it waits.
    inbox: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
    threading.Thread(target=_read_all, args=(channel, inbox.put), name="kernelkit-reader",
                     daemon=True).start()
    while True:
        msg = inbox.get()
        if msg is None:
            return
        # (The reader passes on requests only: a method and an id.)
        method, rid, params = str(msg["method"]), msg["id"], msg.get("params") or {}
        # Output names its request, so that the host never shows it under another cell.
        channel.local.request = rid
        try:
            running[0] = True
            try:
                result = _call(backend, channel, outputs, method, params)
            finally:
                running[0] = False
        except (_MethodNotFound, CommError) as exc:
            channel.reply(_refusal(rid, method, exc))
            continue
        except KeyboardInterrupt as exc:  # landed between the method's end and the flag
            result = error_content(exc)
        finally:
            channel.local.request = None
        channel.reply({"jsonrpc": "2.0", "id": rid, "result": result})
        if method == "initialize":
            comms._initialized(result.get("comm_targets", []))
        if method == "shutdown":
            return


def _read_all(channel: _Channel, request: Callable[[dict[str, Any] | None], None]) -> None:
    """The reading thread of the one-at-a-time mode: requests go to ``request`` (None at
    the end), answers to the waiting ``ctx.input``, an ``interrupt`` becomes a SIGINT."""
    while True:
        msg = channel.read()
        if msg is None:
            channel.closed()
            request(None)
            return
        method, rid = msg.get("method"), msg.get("id")
        if method is None:
            channel.answered(msg)
        elif rid is not None:
            request(msg)
            if method == "shutdown":
                # Nothing follows it; and a thread still blocked in stdin's read when
                # serve() returns aborts the interpreter at exit (its buffer's lock).
                return
        elif method == "interrupt":
            # A real signal, not _thread.interrupt_main(): it also wakes a main thread
            # blocked in a system call (time.sleep, a read), as the host's SIGINT would.
            os.kill(os.getpid(), signal.SIGINT)


class _MethodNotFound(Exception):
    pass


def _refusal(rid: Any, method: str, exc: Exception) -> dict[str, Any]:
    """The JSON-RPC error response for a request this backend does not answer."""
    if isinstance(exc, CommError):
        error = {"code": exc.code, "message": str(exc), "data": exc.data}
    else:
        error = {"code": -32601, "message": f"unknown method {method}"}
    return {"jsonrpc": "2.0", "id": rid, "error": error}


def _serve_concurrently(backend: Any, channel: _Channel,
                        outputs: tuple[_Output, _Output]) -> None:
    """Protocol 1.1: this thread reads; each request runs on a thread of its own."""
    channel.concurrent = True
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
        result: dict[str, Any] = {}
        try:
            result = _call(backend, channel, outputs, method, params)
            answer = {"jsonrpc": "2.0", "id": rid, "result": result}
        except (_MethodNotFound, CommError) as exc:
            answer = _refusal(rid, method, exc)
        except KeyboardInterrupt as exc:  # interrupted outside the method's own try
            answer = {"jsonrpc": "2.0", "id": rid, "result": error_content(exc)}
        finally:
            with lock:
                running.pop(threading.get_ident(), None)
            channel.local.request = None
        channel.reply(answer)
        if method == "initialize":
            comms._initialized(result.get("comm_targets", []))
        if method == "shutdown":
            os._exit(0)

    while True:
        msg = channel.read()
        if msg is None:
            channel.closed()
            return
        method, rid, params = msg.get("method"), msg.get("id"), msg.get("params") or {}
        if method is None:  # the host's answer to one of our input requests
            channel.answered(msg)
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
                **getattr(backend, "info", {}), "comm_targets": comms._initialize(params)}
    if method == "shutdown":
        hook = getattr(backend, "shutdown", None)
        if hook is not None:
            hook(params)
        return {"status": "ok", "restart": bool(params.get("restart", False))}
    if method in ("execute", "comm_open", "comm_msg", "comm_close"):
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = outputs  # print() in the cell or callback is its output
        try:
            if method != "execute":
                return comms._handle(method, params)  # a CommError: an error response
            reply = backend.execute(params, Context(channel))
        except (Exception, KeyboardInterrupt) as exc:
            if isinstance(exc, CommError):
                raise
            return error_content(exc)
        finally:
            if not channel.concurrent:  # concurrent mode keeps them for every thread
                sys.stdout, sys.stderr = saved
        return {"status": "ok", "user_expressions": {}, "payload": [], **(reply or {})}
    if method not in _DEFAULTS:
        raise _MethodNotFound(method)
    hook = getattr(backend, method, None) or _DEFAULTS[method]
    try:
        return {"status": "ok", **hook(params)}
    except Exception as exc:
        return error_content(exc)
