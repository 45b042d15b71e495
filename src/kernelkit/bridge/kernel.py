"""``BridgeKernel``: a ``kernelkit.Kernel`` whose hooks are answered by a backend process.

The host owns everything Jupyter-specific (execution_count, status, parents,
signing); the backend only sees request parameters and sends output as
notifications. Whatever the backend does — crash, hang, print garbage — the
request gets exactly one reply and the kernel lives on; a dead backend is
started afresh on the next request.

(Why ~680 lines in one class: every hook goes through the same request cycle, the
backend's start, restart and interrupt handling, which the hooks share; comms and the
subshells' shared backend are modules of their own.)
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any

from ..kernel import Kernel
from ..kernelinfo import LANGUAGE_TYPES
from ..literals import KEPT
from ..logs import logger
from ..requests import describe
from . import jsonrpc
from .comms import COMM_NOTIFICATIONS, BackendComms
from .jsonrpc import BRIDGE_PROTOCOL_VERSION, Codec
from .process import BackendProcess, Exited, Line, Stderr, TooLong, launch
from .replies import error as _error
from .replies import reply_of
from .shared import Shared

# How long a backend may take to answer `initialize` (s).
INIT_TIMEOUT = 20.0
# After an interrupt, how long the backend gets to end the request itself before
# it is killed (s): a tight loop in JavaScript never sees a signal handler run.
INTERRUPT_GRACE = 2.0
# The longest execute line sent early (before execute_input) by the thread that runs the
# request; a longer one gets a writer thread (see _send_request). Below any pipe's size.
INLINE_MAX = 1 << 15
# How long `shutdown` may take before the backend is killed (s).
SHUTDOWN_TIMEOUT = 3.0

# Backend notifications that become IOPub messages of the running request.
OUTPUT_NOTIFICATIONS = {
    "stream",
    "display_data",
    "update_display_data",
    "clear_output",
    "execute_result",
}


class BackendStartError(RuntimeError):
    """The backend could not be started or did not answer ``initialize``."""


class BridgeKernel(Kernel):
    """Forwards each hook to a backend speaking docs/bridge-protocol.md on stdio."""

    # A backend answers one request at a time unless its initialize result says
    # "subshells": true (bridge protocol 1.1); then hooks run concurrently (shared.py).
    supports_subshells = False

    def __init__(
        self,
        argv: list[str],
        init_timeout: float = INIT_TIMEOUT,
        max_line: int | None = None,
        backend: BackendProcess | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not argv:
            raise BackendStartError("no backend command given")
        self.argv = list(argv)
        self.init_timeout = init_timeout
        self.max_line = max_line  # None: process.MAX_LINE or $KERNELKIT_BRIDGE_MAX_LINE
        self.codec = Codec()
        self.backend: BackendProcess | None = None
        self.interrupt_mode = "signal"
        self._shared: Shared | None = None
        self._start_lock = threading.Lock()  # one thread (re)starts the backend
        # The execute _start_execute sent, until do_execute awaits it, on the thread that
        # runs the request (with subshells, hooks run on several threads at once):
        # ``started`` = (code, count, what _send_request returned), or with subshells
        # ``slot`` = (backend, what Shared.start returned).
        self._early = threading.local()
        # Comms (protocol 1.2): the host's table of the backend's comms and targets.
        self._comms = BackendComms(self)
        self.comm_manager = self._comms.manager
        # backend: one launch(argv) started already (kernelkit bridge does, to overlap its
        # start-up with the host's); it is answered 'initialize' here like a fresh one.
        self._start_backend(backend)

    # -- backend lifecycle ---------------------------------------------------------

    def _start_backend(self, launched: BackendProcess | None = None) -> None:
        name = os.path.basename(self.argv[0])
        try:
            backend = launched if launched is not None else launch(self.argv, self.max_line)
        except OSError as exc:
            raise BackendStartError(
                f"cannot run backend {self.argv[0]!r}: {exc.strerror}"
            ) from None
        try:
            info = self._initialize(backend, name)
            self._apply_info(info, name)
        except BaseException:
            backend.stop(0.2)  # refused, timed out, invalid, or the kernel is exiting
            raise
        backend.on_idle_line = self._idle_line
        backend.on_end = self._comms.backend_gone  # however it ends, its comms close
        backend.end()  # from here, output between requests is logged
        self.backend = backend

    def _initialize(self, backend: BackendProcess, name: str) -> Any:
        """Send ``initialize`` and wait for its result; BackendStartError if it does not come."""
        rid, line = self.codec.request(
            "initialize",
            {
                "protocol_version": BRIDGE_PROTOCOL_VERSION,
                "kernelkit_version": self.implementation_version,
            },
        )
        backend.send(line)
        deadline = time.monotonic() + self.init_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BackendStartError(
                    f"backend {name} did not answer 'initialize' within {self.init_timeout:g} s"
                    + _tail(backend)
                )
            event = backend.next_event(remaining)
            if event is None:
                continue
            if isinstance(event, Exited):
                raise BackendStartError(
                    f"backend {name} {backend.describe_exit()} before answering 'initialize'"
                    + _tail(backend)
                )
            if isinstance(event, TooLong):
                raise BackendStartError(
                    f"backend {name} wrote a line of more than {event.limit:,} bytes on its "
                    "stdout (the maximum) before answering 'initialize'"
                )
            if isinstance(event, Stderr):  # also kept in the tail, for the messages above
                logger().warning("backend stderr: %s", event.text[:1000].rstrip("\n"))
                continue
            msg = Codec.parse(event.data)
            if isinstance(msg, jsonrpc.Response) and msg.id == rid:
                if msg.error is not None:
                    raise BackendStartError(
                        f"backend {name} refused 'initialize': {msg.error.get('message')}"
                    )
                return msg.result
            if isinstance(msg, jsonrpc.Notification) and msg.method in COMM_NOTIFICATIONS:
                self._comms.notification(msg, None)  # e.g. a target registered early
            elif isinstance(msg, jsonrpc.Text):
                logger().warning("backend stdout before initialize: %.200s", msg.text)
            else:
                logger().warning("backend sent %.200r before answering initialize", msg)

    def _apply_info(self, info: Any, name: str = "backend") -> None:
        problems = info_problems(info)
        if problems or not isinstance(info, dict):
            raise BackendStartError(
                f"backend {name} answered 'initialize' with an invalid result: "
                + "; ".join(problems)
            )
        for key in ("implementation", "implementation_version", "language_version", "banner"):
            if key in info:
                setattr(self, key, info[key])
        self.language_info = dict(info["language_info"])
        self.language = self.language_info["name"]
        if "help_links" in info:
            self.help_links = info["help_links"]
        self.interrupt_mode = info.get("interrupt_mode", "signal")
        self._comms.set_targets(info.get("comm_targets", []))
        if info.get("subshells") is True and self._shared is None:
            self.supports_subshells = self.concurrent_hooks = True
            self._shared = Shared(self, INTERRUPT_GRACE)

    def _ensure_backend(self) -> BackendProcess:
        with self._start_lock:
            backend = self.backend
            if backend is None or not backend.alive():
                self.backend = None
                if backend is not None:
                    backend.stop(0.1)
                self._start_backend()
            assert self.backend is not None
            return self.backend

    # -- one request ---------------------------------------------------------------

    def _request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send a request and serve the backend until it answers; always returns reply content."""
        return self._answer(self._send_request(method, params))

    def _answer(self, sent: tuple[BackendProcess, int] | dict[str, Any]) -> dict[str, Any]:
        """What _send_request returned, answered: the reply it already is, or the awaited one."""
        return sent if isinstance(sent, dict) else self._await_reply(*sent)

    def _send_request(
        self, method: str, params: dict[str, Any], early: bool = False
    ) -> tuple[BackendProcess, int] | dict[str, Any]:
        """Hand a request to the backend: (backend, id) to await, or the reply if that failed.

        ``early`` (the execute sent before execute_input, outside any interrupt guard): the
        call must not block. A line of up to INLINE_MAX goes straight into the pipe, which
        has room for it (the backend has read every line before it, since it answered them);
        a bigger one may wait on a backend that does not read, so a writer thread of its own
        writes it, and the request waits for its answer in do_execute, where an interrupt
        reaches it (and ends a backend that does not take it in time, which ends the write).
        """
        try:
            backend = self._ensure_backend()
        except BackendStartError as exc:
            return _error("BackendStartError", str(exc))
        if self._shared is not None:
            return self._shared.request(backend, method, params)
        rid, line = self.codec.request(method, params)
        running = self._dispatcher.parent if self._dispatcher is not None else None
        self._comms.sent(rid, running)
        # Output from here on is this request's; what came before it is logged.
        backend.begin()
        if early and len(line) > INLINE_MAX:
            threading.Thread(target=backend.send, args=(line, len(line)), daemon=True,
                             name="kernelkit-bridge-writer").start()
            return backend, rid
        try:
            if not backend.send(line):
                reply = self._died(backend)
                backend.end()
                return reply
        except BaseException:
            self._abandon(backend)
            raise
        return backend, rid

    def _await_reply(self, backend: BackendProcess, rid: int) -> dict[str, Any]:
        """Serve the backend until it answers request ``rid``."""
        deadline: float | None = None
        try:
            while True:
                try:
                    if deadline is None:
                        event = backend.next_event()
                    else:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            backend.stop(0.2)
                            self.backend = None
                            return _error(
                                "KeyboardInterrupt",
                                f"the backend did not stop within {INTERRUPT_GRACE:g} s of the "
                                "interrupt; it was ended and will be restarted",
                            )
                        event = backend.next_event(remaining)
                    if event is None:
                        continue
                    reply = self._serve(backend, rid, event)
                    if reply is not None:
                        return reply
                except KeyboardInterrupt:
                    if deadline is None:
                        deadline = time.monotonic() + INTERRUPT_GRACE
                        self._forward_interrupt(backend)
        except BaseException:
            self._abandon(backend)
            raise
        finally:
            backend.end()

    def _abandon(self, backend: BackendProcess) -> None:
        """Before an exception that leaves a request unanswered (see the caller)."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, Exception):
            # The kernel is exiting (SIGTERM) in the middle of a request, or an interrupt
            # cut the request line short. The backend runs in its own session and may be
            # stuck where it never sees its stdin close: it must not outlive the kernel.
            self.backend = None
            while True:
                try:
                    backend.stop(0.5)
                    return
                except KeyboardInterrupt:
                    # Pressing stop again while this one is carried out (the guard is still
                    # armed) must not leave the backend half stopped: finish it.
                    continue

    def _serve(self, backend: BackendProcess, rid: int, event: Any) -> dict[str, Any] | None:
        if isinstance(event, Exited):
            return self._died(backend)
        if isinstance(event, TooLong):
            return self._too_long(backend, event.limit)
        if isinstance(event, Stderr):
            self._publish("stream", {"name": "stderr", "text": event.text})
            return None
        assert isinstance(event, Line)
        msg = Codec.parse(event.data, keep=True)
        event.data = b""  # a line of many MB: let it go before its message is published
        if isinstance(msg, jsonrpc.Notification):
            try:  # its big strings go to IOPub as the JSON text they came in (literals.py)
                self._serve_notification(msg, rid)
            finally:
                if msg.kept:
                    KEPT.drop(msg.kept)
            return None
        if isinstance(msg, jsonrpc.Response):
            if msg.id != rid:
                logger().warning("backend answered unknown request id %r; ignored", msg.id)
                return None
            # Stderr it wrote before this reply is in the pipe now: it belongs to this cell.
            text = backend.drain_stderr()
            if text:
                self._publish("stream", {"name": "stderr", "text": text})
            return reply_of(msg)
        if isinstance(msg, jsonrpc.Request):
            self._backend_request(backend, msg)
        elif isinstance(msg, jsonrpc.Text):
            self._publish("stream", {"name": "stdout", "text": msg.text + "\n"})
        else:
            logger().warning("malformed line from backend (%s): %.200s", msg.reason, msg.line)
        return None

    def _serve_notification(self, msg: jsonrpc.Notification, rid: int) -> None:
        if msg.method in COMM_NOTIFICATIONS:  # state, not output: never late
            self._comms.notification(msg, self._dispatcher.parent if self._dispatcher
                                     else None)
            return
        if _late(msg.params.get("request"), rid):
            _log_late(msg)
            return
        self._notification(msg)

    def _notification(
        self, msg: jsonrpc.Notification, parent: Any = None, count: int | None = None
    ) -> None:
        if msg.method not in OUTPUT_NOTIFICATIONS:
            logger().warning("backend sent unknown notification %r; ignored", msg.method)
            return
        content = dict(msg.params)
        content.pop("request", None)  # protocol 1.1: which request it belongs to
        problem = _check_output(msg.method, content)
        if problem:
            logger().warning("backend %s notification ignored: %s", msg.method, problem)
            return
        if msg.method == "execute_result":
            content["execution_count"] = self.execution_count if count is None else count
            content.setdefault("metadata", {})
        elif msg.method in ("display_data", "update_display_data"):
            content.setdefault("metadata", {})
            content.setdefault("transient", {})
        self._publish(msg.method, content, parent)

    def _backend_request(self, backend: BackendProcess, msg: jsonrpc.Request) -> None:
        if msg.method != "input":
            backend.send(
                Codec.error(msg.id, jsonrpc.METHOD_NOT_FOUND, f"unknown method {msg.method}")
            )
            return
        prompt = msg.params.get("prompt", "")
        password = bool(msg.params.get("password", False))
        try:
            value = self.getpass(str(prompt)) if password else self.raw_input(str(prompt))
        except KeyboardInterrupt:
            backend.send(
                Codec.error(
                    msg.id, jsonrpc.INTERNAL_ERROR, "interrupted", {"ename": "KeyboardInterrupt"}
                )
            )
            raise
        except Exception as exc:
            backend.send(
                Codec.error(
                    msg.id,
                    jsonrpc.INTERNAL_ERROR,
                    f"{type(exc).__name__}: {exc}",
                    {"ename": type(exc).__name__},
                )
            )
            return
        backend.send(Codec.result(msg.id, {"value": value}))

    def _publish(self, msg_type: str, content: dict[str, Any], parent: Any = None,
                 metadata: dict[str, Any] | None = None, buffers: list[bytes] | None = None
                 ) -> None:
        """Publish as output of ``parent`` (a request message), or of this thread's request."""
        try:
            if self._dispatcher is not None and (parent is not None or metadata or buffers
                                                 or msg_type.startswith("comm_")):
                self._dispatcher.publish(msg_type, content, metadata, buffers or (),
                                         parent=parent)
            else:
                self.send_response(self.iopub_socket, msg_type, content)
        except (TypeError, ValueError) as exc:
            logger().warning("backend %s could not be sent: %s", msg_type, exc)

    def _idle_line(self, data: bytes | bytearray) -> bool:
        """A line between requests: a comm notification is published, the rest logged."""
        if not _maybe_comm(data):
            return False
        msg = Codec.parse(data)
        if isinstance(msg, jsonrpc.Notification) and msg.method in COMM_NOTIFICATIONS:
            self._comms.notification(msg, None)
            return True
        return False

    def _forward_interrupt(self, backend: BackendProcess) -> None:
        if self.interrupt_mode == "message":
            backend.send(Codec.notification("interrupt", {}))
        else:
            backend.signal(signal.SIGINT)

    def _too_long(self, backend: BackendProcess, limit: int) -> dict[str, Any]:
        """The backend wrote a stdout line over the maximum: end it; the request fails."""
        backend.stop(0.1)
        if self.backend is backend:
            self.backend = None
        return _error(
            "BackendError",
            f"the backend wrote a line of more than {limit:,} bytes on its stdout (the "
            "maximum line size); it was ended and will be restarted for the next request",
        )

    def _died(self, backend: BackendProcess) -> dict[str, Any]:
        how = backend.describe_exit()
        tail = list(backend.stderr_tail)
        backend.stop(0.1)
        if self.backend is backend:
            self.backend = None
        return _error(
            "BackendDied",
            f"the backend {how}; it will be restarted for the next request",
            [f"backend {how}", *(["last lines of its stderr:", *tail] if tail else [])],
        )

    # -- hooks -----------------------------------------------------------------------

    def _start_execute(self, *args: Any) -> None:
        """The dispatcher, just before it publishes busy and execute_input (dispatch.py), with
        do_execute's arguments in their order: send the request now, so that the backend
        works meanwhile; do_execute awaits the answer. With subshells, only when no other
        request is in flight (Shared.start). A backend that must be (re)started first is
        started in do_execute, with the rest of a restart's handling."""
        early = self._early
        early.started = early.slot = None
        backend = self.backend
        if backend is None or not backend.alive():
            return
        params = self._execute_params(*args)
        if self._shared is not None:
            slot = self._shared.start(backend, params, INLINE_MAX)
            if slot is not None:
                early.slot = (backend, slot)
            return
        early.started = (args[0], params["execution_count"],
                         self._send_request("execute", params, early=True))

    def _execute_params(
        self,
        code: str,
        silent: bool,
        store_history: bool,
        user_expressions: dict[str, Any] | None,
        allow_stdin: bool,
        cell_id: str | None,
    ) -> dict[str, Any]:
        return {
            "code": code,
            "silent": silent,
            "store_history": store_history,
            "user_expressions": user_expressions or {},
            "allow_stdin": allow_stdin,
            "execution_count": self.execution_count,
            "cell_id": cell_id,
        }

    def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool = False,
        *,
        cell_id: str | None = None,
    ) -> dict[str, Any]:
        early = self._early
        started, slot = getattr(early, "started", None), getattr(early, "slot", None)
        early.started = early.slot = None
        if slot is not None:
            # Sent through Shared by _start_execute (dispatch.py calls do_execute next, with
            # the same values): waiting for it also ends its hold on the reader role.
            assert self._shared is not None
            reply = self._shared.wait(*slot)
        elif started is not None and started[0] is code and started[1] == self.execution_count:
            reply = self._answer(started[2])  # sent by _start_execute, for this very execute
        else:
            reply = self._request("execute", self._execute_params(
                code, silent, store_history, user_expressions, allow_stdin, cell_id))
        if reply.get("status") == "error" and not silent:
            self._publish("error", {k: reply.get(k) for k in ("ename", "evalue", "traceback")})
        return reply

    def _optional(
        self, method: str, params: dict[str, Any], default: dict[str, Any]
    ) -> dict[str, Any]:
        """A request the backend may not implement: method-not-found means the default."""
        reply = self._request(method, params)
        if reply.get("status") == "error" and reply.get("ename") == "MethodNotFound":
            return default
        return reply

    def do_complete(self, code: str, cursor_pos: int) -> dict[str, Any]:
        return self._optional(
            "complete",
            {"code": code, "cursor_pos": cursor_pos},
            super().do_complete(code, cursor_pos),
        )

    def do_inspect(
        self, code: str, cursor_pos: int, detail_level: int = 0, omit_sections: Any = ()
    ) -> dict[str, Any]:
        return self._optional(
            "inspect",
            {"code": code, "cursor_pos": cursor_pos, "detail_level": detail_level},
            super().do_inspect(code, cursor_pos, detail_level),
        )

    def do_is_complete(self, code: str) -> dict[str, Any]:
        return self._optional("is_complete", {"code": code}, super().do_is_complete(code))

    def do_history(
        self,
        hist_access_type: str,
        output: bool,
        raw: bool,
        session: int | None = None,
        start: int | None = None,
        stop: int | None = None,
        n: int | None = None,
        pattern: str | None = None,
        unique: bool = False,
    ) -> dict[str, Any]:
        params = {
            "hist_access_type": hist_access_type,
            "output": output,
            "raw": raw,
            "session": session,
            "start": start,
            "stop": stop,
            "n": n,
            "pattern": pattern,
            "unique": unique,
        }
        return self._optional("history", params, super().do_history(hist_access_type, output, raw))

    def do_shutdown(self, restart: bool) -> dict[str, Any]:
        backend = self.backend
        if backend is not None:
            # Shutting down (or restarting): the frontend forgets the comms itself; closing
            # them now would tear down widget views that should show as disconnected.
            backend.on_end = None
            if backend.alive():
                # Its answer and goodbyes are nobody's output: not logged as if they were.
                backend.begin()
                _rid, line = self.codec.request("shutdown", {"restart": restart})
                if backend.send(line):
                    backend.wait(SHUTDOWN_TIMEOUT)
            backend.stop(0.5)  # and whatever it started, even if it left by itself
        self.backend = None
        return {"status": "ok", "restart": restart}


def _late(tag: Any, rid: int) -> bool:
    """Whether output names a request other than the running one (protocol 1.1 ``request``)."""
    return isinstance(tag, int) and not isinstance(tag, bool) and tag != rid


def _log_late(msg: jsonrpc.Notification) -> None:
    logger().warning(
        "backend %s for request %s, which has been answered: logged, not shown",
        msg.method, msg.params.get("request"),
    )


# initialize result fields: type, and whether the host needs it.
_INFO_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "implementation": ((str,), True),
    "implementation_version": ((str,), False),
    "language_version": ((str,), False),
    "banner": ((str,), False),
    "help_links": ((list,), False),
    "language_info": ((dict,), True),
    "interrupt_mode": ((str,), False),
    "subshells": ((bool,), False),
    "comm_targets": ((list,), False),
}
_JSON_NAMES = {str: "a string", dict: "an object", list: "an array", bool: "a boolean"}


def info_problems(info: Any) -> list[str]:
    """What is wrong with an ``initialize`` result, field by field ([] when it can be used).

    Wrong types are refused, not skipped: a kernel that says it is language 42 would
    otherwise start, and ``kernelkit install`` would write a kernelspec with no language.
    """
    if not isinstance(info, dict):
        return [f"the result is {describe(info)}, not an object"]
    problems = []
    for key, (types, required) in _INFO_FIELDS.items():
        if key not in info:
            if required:
                problems.append(f"{key} is missing")
        elif not isinstance(info[key], types):
            problems.append(f"{key} must be {_names(types)}, not {describe(info[key])}")
    lang = info.get("language_info")
    if isinstance(lang, dict):
        for key, types in LANGUAGE_TYPES.items():
            if key in lang and not isinstance(lang[key], types):
                problems.append(
                    f"language_info.{key} must be {_names(types)}, not {describe(lang[key])}"
                )
        if "name" not in lang:
            problems.append("language_info.name is missing")
        elif isinstance(lang["name"], str) and not lang["name"].strip():
            problems.append("language_info.name must not be empty")
    if isinstance(info.get("implementation"), str) and not info["implementation"].strip():
        problems.append("implementation must be a non-empty string")
    if isinstance(info.get("interrupt_mode"), str) and info["interrupt_mode"] not in (
        "signal", "message"
    ):
        problems.append(
            f"interrupt_mode must be 'signal' or 'message', not {info['interrupt_mode']!r}"
        )
    targets = info.get("comm_targets")
    for i, name in enumerate(targets if isinstance(targets, list) else []):
        if not isinstance(name, str) or not name:
            problems.append(f"comm_targets[{i}] must be a non-empty string, not {describe(name)}")
    links = info.get("help_links")
    for i, link in enumerate(links if isinstance(links, list) else []):
        if not (isinstance(link, dict) and isinstance(link.get("text"), str)
                and isinstance(link.get("url"), str)):
            problems.append(f"help_links[{i}] must be an object with text and url strings")
    return problems


def _names(types: tuple[type, ...]) -> str:
    return " or ".join(_JSON_NAMES[t] for t in types)


def _tail(backend: BackendProcess) -> str:
    lines = list(backend.stderr_tail)
    return ("\nlast lines of its stderr:\n  " + "\n  ".join(lines)) if lines else ""


def _check_output(method: str, content: dict[str, Any]) -> str | None:
    """Why a backend's output notification cannot be published, or None if it can."""
    if method == "stream":
        if content.get("name") not in ("stdout", "stderr"):
            return "stream name must be 'stdout' or 'stderr'"
        if not isinstance(content.get("text"), str):
            return "stream text must be a string"
    elif method in ("display_data", "update_display_data", "execute_result"):
        if not isinstance(content.get("data"), dict):
            return "data must be an object of MIME type to value"
        if not isinstance(content.get("metadata", {}), dict):
            return "metadata must be an object"
        if method == "update_display_data" and not isinstance(
            (content.get("transient") or {}).get("display_id"), str
        ):
            return "update_display_data needs transient.display_id"
    elif method == "clear_output":
        content["wait"] = bool(content.get("wait", False))
    return None


def _maybe_comm(data: bytes | bytearray) -> bool:
    """Cheap test before parsing a line read between requests: could it be a comm message?"""
    return b'"comm_' in data
