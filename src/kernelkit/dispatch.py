"""From msg_type to hook: status bracketing, reply shapes, errors and aborts.

(Why ~780 lines in one file: it is one class whose handlers share the per-thread
request state and the bracketing; what could leave already has — hook signatures in
``hooks``, kernel_info in ``kernelinfo``, request contents in ``requests``, output in
``streams``, comms in ``comms``, kernels' own handler tables in ``tables``. The next
handlers to grow, the comm ones, delegate.)

The dispatcher knows the messaging spec's request/reply rules but not how bytes
travel (it talks to a ``Transport``) nor what a kernel does (it calls hooks on
an object shaped like ``kernelkit.Kernel``). Rules it enforces for every kernel:

* every request on shell or control is bracketed by ``status: busy`` and
  ``status: idle`` on IOPub, with the request as parent ("Request-Reply");
* every request that expects a reply gets exactly one, even when the hook
  raises, returns nonsense or is interrupted;
* ``execution_count`` grows before the hook runs, only when ``silent`` is false
  and ``store_history`` is true ("Execute");
* after an execute fails with ``stop_on_error`` (the default), executes already
  queued behind it — in the same subshell — are answered ``aborted`` without running;
* what a hook returns is copied, never changed in place.

Where hooks run. Each shell request runs on its subshell's thread (the main shell:
the main thread). Requests kernelkit answers itself (kernel_info, comm_info, the
subshell messages, interrupt) run wherever they arrive, at once. Requests that call
the kernel's hooks are serialised by one lock unless the kernel class sets
``concurrent_hooks = True``: wrapper kernels that drive one interpreter (a pexpect
session, say) are not thread-safe, and a subshell request waits its turn instead.
On control, where nothing may wait, such a request runs at once if no hook is
running and is otherwise answered ``KernelBusy`` (messaging spec: control is
"identical to Shell" but must not be blocked); ``shutdown_request`` waits briefly,
then shuts down without calling ``do_shutdown``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from types import FrameType
from typing import Any, Protocol

from . import requests as _req
from . import tables
from .hooks import HOOK_ARGS, HookError, check_hooks
from .kernelinfo import complete, kernel_info_problems
from .literals import KEPT
from .streams import Coalescer, OutStream
from .wire import JSONDict, Message

__all__ = ["Dispatcher", "HookError", "StdinNotImplementedError", "Transport",
           "check_hooks", "error_content", "kernel_info_problems"]


class Transport(Protocol):
    """What the dispatcher needs from the server."""

    def send(
        self,
        channel: str,
        msg_type: str,
        content: JSONDict,
        parent: Message | None = None,
        metadata: JSONDict | None = None,
        buffers: list[bytes] | tuple[bytes, ...] = (),
    ) -> JSONDict: ...

    def request_input(self, parent: Message, prompt: str, password: bool) -> str: ...

    def interruptible(
        self, on_interrupt: Callable[[FrameType | None], bool] | None = None
    ) -> AbstractContextManager[None]: ...

    def interrupt(self) -> None: ...

    def stop(self, exit_code: int = 0) -> None: ...

    def queued(self, channel: str = "shell") -> list[Message]: ...

    def wait_for_subscriber(self, timeout: float) -> bool: ...

    def create_subshell(self) -> str: ...

    def delete_subshell(self, subshell_id: str) -> bool: ...

    def list_subshells(self) -> list[str]: ...


# How long after a failed execute a request may still be in flight (s): only then is
# its header date compared with the failure, so clock skew cannot abort later work.
IN_FLIGHT_WINDOW_S = 0.5
# How long the first execute waits for a client's IOPub subscription (s); see _handle_one.
FIRST_SUBSCRIBER_WAIT = 1.0
# How long shutdown_request on control waits for a running hook before it shuts down
# without calling do_shutdown (s).
SHUTDOWN_HOOK_WAIT = 1.0
# Shell requests kernelkit answers itself, on the thread that read them (Dispatcher.immediate).
IMMEDIATE = frozenset({"kernel_info_request", "comm_info_request"})


# Where a SIGINT becomes a KeyboardInterrupt: frames of these are not the user's code.
_INTERRUPTER_MODULES = frozenset({"kernelkit.server", "kernelkit.interrupts"})


def error_content(exc: BaseException, skip_frames: int = 1) -> JSONDict:
    """The ename/evalue/traceback triple of the spec's error replies."""
    import traceback

    tb = exc.__traceback__
    for _ in range(skip_frames):
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    if isinstance(exc, KeyboardInterrupt):
        # An interrupt is raised by kernelkit's SIGINT handler, called on top of the user's
        # frame: end the traceback at the user's line, as a Python prompt would show it.
        frames = list(traceback.walk_tb(tb))
        while frames and frames[-1][0].f_globals.get("__name__") in _INTERRUPTER_MODULES:
            frames.pop()
        lines = ["Traceback (most recent call last):\n",
                 *traceback.StackSummary.extract(iter(frames)).format(),
                 *traceback.format_exception_only(type(exc), exc)]
    else:
        lines = traceback.format_exception(type(exc), exc, tb)
    return {
        "status": "error",
        "ename": type(exc).__name__,
        "evalue": str(exc),
        "traceback": [line.rstrip("\n") for line in lines],
    }


class Dispatcher:
    """Routes each authentic message to its handler and shapes the reply."""

    def __init__(self, kernel: Any, transport: Transport,
                 streams: tuple[OutStream, OutStream] | None = None) -> None:
        self.kernel = kernel
        self.transport = transport
        self.plans = check_hooks(kernel)
        # Per thread (each subshell, control): parent, channel, stop_on_error state and
        # the private event loop of async hooks. Owned by that thread alone.
        self._local = threading.local()
        self._iopub_checked = False
        self.subshells = bool(getattr(kernel, "supports_subshells", True))
        self.concurrent = bool(getattr(kernel, "concurrent_hooks", False))
        # The bridge's early send (see _execute); None for every other kernel.
        self._early_start: Callable[..., None] | None = getattr(kernel, "_start_execute", None)
        # Held while a hook runs, unless the kernel's hooks may run concurrently.
        self._hook_lock = threading.Lock()
        self._count_lock = threading.Lock()  # execution_count, shared by every subshell
        # Whether the kernel routes some messages itself (ipykernel's tables; tables.py).
        self._tables = hasattr(kernel, "shell_handlers") or hasattr(kernel, "control_handlers")
        self._handlers: dict[str, Callable[[str, Message], JSONDict | None]] = {
            "execute_request": self._execute,
            "kernel_info_request": self._kernel_info,
            "complete_request": self._complete,
            "inspect_request": self._inspect,
            "history_request": self._history,
            "is_complete_request": self._is_complete,
            "comm_info_request": self._comm_info,
            "shutdown_request": self._shutdown,
            "interrupt_request": self._interrupt,
            "create_subshell_request": self._create_subshell,
            "delete_subshell_request": self._delete_subshell,
            "list_subshell_request": self._list_subshell,
            "comm_open": self._comm_open,
            "comm_msg": self._comm_msg,
            "comm_close": self._comm_close,
        }
        # Stream text of every request, merged into few messages (streams.py).
        self.streams = Coalescer(self._send_stream)
        # The comm package (ipywidgets, anywidget) gets this kernel's comm manager.
        from . import comms

        comms.install(lambda: kernel.comm_manager)
        # The streams may already be sys.stdout and sys.stderr (early_streams): a kernel
        # may have changed them in its __init__, as metakernel replaces stdout's write.
        self.stdout, self.stderr = streams or (OutStream("stdout", self), OutStream("stderr", self))
        self.stdout.publisher = self.stderr.publisher = self

    # -- the author-facing side (used by kernelkit.Kernel) ----------------------

    @property
    def parent(self) -> Message | None:
        """The request being handled on the calling thread."""
        return getattr(self._local, "parent", None)

    def publish(
        self,
        msg_type: str,
        content: JSONDict,
        metadata: JSONDict | None = None,
        buffers: list[bytes] | tuple[bytes, ...] = (),
        parent: Message | None = None,
    ) -> JSONDict:
        """Publish on IOPub as a child of ``parent`` (default: the calling thread's request).

        A plain ``stream`` message (name and text, nothing else) joins the request's
        other stream text (streams.Coalescer): it returns the header of the message
        sent now, or {} while its text waits. Anything else first sends the text
        waiting for the same request, so output keeps the order it was made in.
        """
        parent = parent or self.parent
        if parent is not None:
            if msg_type == "stream" and not metadata and not buffers and _plain_stream(content):
                return self.streams.write(parent, content["name"], content["text"], True) or {}
            self.streams.flush(parent)
        return self.transport.send("iopub", msg_type, content, parent, metadata, buffers)

    def input(self, prompt: str, password: bool) -> str:
        parent = self.parent
        if parent is None or parent.msg_type != "execute_request":
            raise StdinNotImplementedError("input is only possible while executing code")
        if not parent.content.get("allow_stdin", True):
            raise StdinNotImplementedError(
                "input was requested, but this client does not support input (allow_stdin is false)"
            )
        self.flush_streams()
        return self.transport.request_input(parent, prompt, password)

    def flush_streams(self) -> None:
        """Send the stream text waiting for the calling thread's request, now."""
        parent = self.parent
        if parent is not None:
            self.streams.flush(parent)

    def _send_stream(self, parent: Message, name: str, text: str) -> JSONDict:
        """Send one (merged) stream message; the streams.Coalescer calls it, under its lock."""
        return self.transport.send("iopub", "stream", {"name": name, "text": text}, parent)

    def capture_output(self) -> None:
        """Route print() and sys.stderr written during hooks to the client, as ipykernel does."""
        if sys.stdout is not self.stdout:
            self.stdout.fallback = sys.stdout
        if sys.stderr is not self.stderr:
            self.stderr.fallback = sys.stderr
        sys.stdout = self.stdout
        sys.stderr = self.stderr

    # -- the transport-facing side ----------------------------------------------

    def handle(self, channel: str, msg: Message) -> None:
        local = self._local
        abort = channel == "shell" and self._sent_before_error(msg)
        self._handle_one(channel, msg, abort_executes=abort)
        queued = getattr(local, "queued_behind_error", ())
        local.queued_behind_error = ()
        for behind in queued:
            self._handle_one(channel, behind, abort_executes=True)

    def immediate(self, msg: Message) -> bool:
        """Whether a shell request is answered at once by the thread that read it.

        kernel_info and comm_info call no hook and must not wait behind a long cell:
        JupyterLab's subshell console waits for a kernel_info_reply on the main shell.
        """
        return msg.msg_type in IMMEDIATE

    def reject(self, channel: str, msg: Message, ename: str, evalue: str) -> None:
        """Answer a request that cannot run (unknown or deleted subshell) with an error."""
        self._bracketed(channel, msg, lambda: _error_reply(ename, evalue))

    def _handle_one(self, channel: str, msg: Message, abort_executes: bool = False) -> None:
        msg_type = msg.msg_type
        if not self._iopub_checked and msg_type == "execute_request":
            # A client may send its first execute as soon as kernel_info is answered,
            # before its IOPub subscription has reached us (jupyter console does):
            # its output and idle status would then reach nobody. Wait for it, briefly.
            self._iopub_checked = True
            self.transport.wait_for_subscriber(FIRST_SUBSCRIBER_WAIT)
        if abort_executes and msg_type == "execute_request":
            self._bracketed(channel, msg, lambda: {"status": "aborted"})
            return
        custom = tables.custom_handler(self.kernel, channel, msg_type) if self._tables else None
        if custom is not None:  # the kernel's own handler (ipykernel's shell_handlers)
            self._bracketed(channel, msg, lambda: tables.run(self, channel, msg, custom))
            return
        handler = self._handlers.get(msg_type)
        if handler is not None:
            # A backend's execute goes out before busy too (see _execute): busy is owed.
            later = msg_type == "execute_request" and self._early_start is not None
            self._bracketed(channel, msg, lambda: handler(channel, msg), busy_later=later)
        elif msg_type.endswith("_request"):
            self._bracketed(
                channel,
                msg,
                lambda: _error_reply(
                    "NotImplementedError", f"{msg_type} is not supported by this kernel"
                ),
            )
        else:
            _log("info", "ignored unknown message type %s on %s", msg_type, channel)
            self._bracketed(channel, msg, lambda: None)

    def _bracketed(
        self, channel: str, msg: Message, work: Callable[[], JSONDict | None],
        busy_later: bool = False,
    ) -> None:
        """busy, the work, its reply (if any), idle: the shape of every request.

        ``busy_later``: the work sends busy itself (``_busy``), first on IOPub for this
        request but after something it does first; whatever happens, busy precedes the
        reply and idle.
        """
        local = self._local
        local.parent = msg
        local.channel = channel
        local.busy_owed = busy_later
        if not busy_later:
            self.transport.send("iopub", "status", {"execution_state": "busy"}, msg)
        try:
            try:
                reply = work()
            except Exception as exc:  # a handler of ours failed: still one reply
                reply = error_content(exc, skip_frames=0)
            if reply is not None:
                if busy_later:
                    self._busy()
                self._send_reply(channel, msg, reply)
        finally:
            if busy_later:
                self._busy()
            self.streams.close(msg)  # all of its output before its idle
            self.transport.send("iopub", "status", {"execution_state": "idle"}, msg)
            local.parent = None
            if msg.kept:  # the JSON text of its big strings (literals.py): no longer needed
                KEPT.drop(msg.kept)
                msg.kept = ()

    def _busy(self) -> None:
        """Send the busy status that _bracketed left to the work, unless it was sent."""
        local = self._local
        if getattr(local, "busy_owed", False):
            local.busy_owed = False
            self.transport.send("iopub", "status", {"execution_state": "busy"}, local.parent)

    def _send_reply(self, channel: str, msg: Message, reply: JSONDict) -> None:
        """Send the reply; one that cannot be encoded as JSON becomes an error reply."""
        reply_type = _reply_type(msg.msg_type)
        self.streams.flush(msg)  # the reply comes after the output written before it
        try:
            self.transport.send(channel, reply_type, reply, msg)
        except (TypeError, ValueError, RecursionError) as exc:
            # Nothing was sent (encoding comes first): the client still gets its one reply.
            evalue = f"the {reply_type} content could not be encoded as JSON: {exc}"
            content = _error_reply(type(exc).__name__, evalue)
            count = reply.get("execution_count")
            if isinstance(count, int) and not isinstance(count, bool):
                content["execution_count"] = count
            self.transport.send(channel, reply_type, content, msg)

    # -- kernels with their own handlers (tables.py) ------------------------------

    def run_kernel_code(self, fn: Callable[[], Any]) -> Any:
        """Call a handler of the kernel's own; an async one runs on this thread's loop.

        It takes no hook lock (as comm callbacks take none), so that it can call
        kernelkit's default handler, which may run a hook.
        """
        result = fn()
        if hasattr(result, "__await__"):
            result = self._await(result)
        return result

    def run_default(self) -> None:
        """kernelkit's handling of the calling thread's request (a kernel's handler's super())."""
        msg = self.parent
        if msg is None:
            raise RuntimeError("the default handler runs only while a request is handled")
        channel = getattr(self._local, "channel", "shell")
        handler = self._handlers.get(msg.msg_type)
        reply = handler(channel, msg) if handler is not None else None
        if reply is not None and not getattr(self._local, "replied", False):
            self._local.replied = True
            self._send_reply(channel, msg, reply)

    # -- calling hooks ------------------------------------------------------------

    def _call(self, name: str, *args: Any,
              _before: tuple[Callable[[], None], Callable[[], None]] | None = None,
              **kwargs: Any) -> JSONDict:
        """Run a hook; any exception, interrupt or bad return value becomes an error reply.

        The reply is a copy of what the hook returned: a kernel may return the same
        dict every time (a module-level constant), and the dispatcher fills in fields.
        ``_before = (start, announce)``: under the hook lock, ``start()`` then ``announce()``
        run just before the hook, outside the interrupt guard, as the bookkeeping before a
        hook always does (an interrupt there is ignored: ``start`` must not block); only
        ``announce()`` if the hook is not run (kernel busy).
        """
        hook = getattr(self.kernel, name)
        plan = self.plans[name]
        kwargs = {k: v for k, v in kwargs.items() if k in plan.optional}
        if plan.by_keyword:  # ipykernel 7's convention (hooks.py)
            kwargs.update(zip(HOOK_ARGS[name], args, strict=True))
            args = ()
        lock = None if self.concurrent else self._hook_lock
        if lock is not None:
            if getattr(self._local, "channel", "shell") == "control":
                if name == "do_shutdown":
                    got = lock.acquire(timeout=SHUTDOWN_HOOK_WAIT)
                else:
                    got = lock.acquire(blocking=False)
                if not got:
                    if _before is not None:
                        _before[1]()
                    return _error_reply(
                        "KernelBusy",
                        f"{name} was not run: the kernel is running another request, and "
                        f"{type(self.kernel).__name__} runs one hook at a time",
                    )
            else:
                lock.acquire()
        try:
            if _before is not None:
                start, announce = _before
                try:
                    start()
                except (Exception, KeyboardInterrupt) as exc:  # still exactly one reply
                    announce()
                    return self._failed(exc)
                announce()
            guard = self.transport.interruptible()
            try:
                with guard:
                    result = hook(*args, **kwargs)
                    if hasattr(result, "__await__"):
                        result = self._await(result)
            except (Exception, KeyboardInterrupt) as exc:
                # Leave again: an interrupt posted to a subshell thread (interrupts.py)
                # can fire as the block is left, before its state was restored.
                guard.__exit__(None, None, None)
                return self._failed(exc)
        finally:
            if lock is not None:
                lock.release()
        # (The hook's stream text goes out before the reply: _send_reply flushes it.)
        if not isinstance(result, dict):
            wrong = TypeError(
                f"{type(self.kernel).__name__}.{name} returned "
                f"{type(result).__name__}, expected a dict"
            )
            return self._failed(wrong, skip_frames=0)
        reply = dict(result)
        reply.setdefault("status", "ok")
        return reply

    def _failed(self, exc: BaseException, skip_frames: int = 1) -> JSONDict:
        """Error reply content for a failed hook, also published on IOPub as ``error``.

        Not for a silent execute: the spec's ``silent`` means nothing on IOPub but
        status ("Execute": "will not broadcast output on the IOPUB channel"), and
        the error reply still carries the traceback. Bridge kernels do the same.
        """
        content = error_content(exc, skip_frames)
        self.flush_streams()
        if not _is_silent(self.parent):
            self.publish("error", {k: v for k, v in content.items() if k != "status"})
        return content

    def _await(self, awaitable: Any) -> Any:
        """Run an async hook to completion on a private event loop.

        An interrupt that lands inside the event loop's own code must not raise
        there (asyncio would lose track of the task and hang); it cancels the
        task instead. One that lands in the hook's code raises as usual, which
        also stops an async hook stuck in a loop without awaits, at the price of
        that event loop.
        """
        # asyncio costs import time: only kernels with async hooks pay for it.
        import asyncio
        import selectors

        loop: Any = getattr(self._local, "loop", None)
        if loop is None:
            loop = self._local.loop = asyncio.new_event_loop()
        task = asyncio.ensure_future(awaitable, loop=loop)
        machinery = (os.path.dirname(asyncio.__file__), selectors.__file__)
        cancelled_by_interrupt = False

        def on_interrupt(frame: FrameType | None) -> bool:
            nonlocal cancelled_by_interrupt
            if frame is None or not frame.f_code.co_filename.startswith(machinery):
                return False
            cancelled_by_interrupt = True
            loop.call_soon_threadsafe(task.cancel)
            return True

        try:
            guard = self.transport.interruptible(on_interrupt)
            guard.__enter__()
        except KeyboardInterrupt:
            # Interrupted before the loop ran the hook: end the task without running it.
            task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(task)
            raise
        try:
            return loop.run_until_complete(task)
        except asyncio.CancelledError:
            if cancelled_by_interrupt:
                raise KeyboardInterrupt from None
            raise
        except (KeyboardInterrupt, SystemExit):
            # Raised from inside the running loop, it leaves stale callbacks behind
            # that would stop the next run early: start a fresh loop next time.
            self._local.loop = None
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: asyncio must not report it later as lost
            with contextlib.suppress(Exception):
                loop.close()
            raise
        finally:
            guard.__exit__(None, None, None)

    # -- handlers -----------------------------------------------------------------

    def _execute(self, channel: str, msg: Message) -> JSONDict:
        try:
            (code, silent, store_history, user_expressions, allow_stdin, stop_on_error,
             cell_id) = _req.execute(msg.content, msg.metadata)
        except _req.InvalidRequest as exc:
            self._busy()
            return self._invalid(msg, exc)
        kernel = self.kernel
        with self._count_lock:
            if store_history:
                kernel.execution_count += 1
            count = kernel.execution_count
        start = self._early_start

        def announce() -> None:
            if start is not None:  # (busy is owed: see _handle_one)
                self._busy()
            if not silent:
                self.publish("execute_input", {"code": code, "execution_count": count})

        # A kernel whose work runs in another process (the bridge) hands the execute over
        # first, under the hook lock, and the process works while busy and execute_input are
        # encoded, signed and sent (10 MB of code: its execute_input's encoding and signing
        # overlap with the backend's work; what a small one gains is measured in
        # docs/benchmarks.md, "The execute before busy"). ``_start_execute`` is the engine's
        # own, not an author's hook: do_execute is called next, with the same values.
        before: tuple[Callable[[], None], Callable[[], None]] | None = None
        if start is not None:
            def started() -> None:
                start(code, silent, store_history, user_expressions, allow_stdin, cell_id)

            before = (started, announce)
        else:
            announce()
        reply = self._call(
            "do_execute",
            code,
            silent,
            store_history,
            user_expressions,
            allow_stdin,
            cell_id=cell_id,
            _before=before,
        )
        reply.setdefault("execution_count", count)
        if reply["status"] == "ok":
            reply.setdefault("user_expressions", {})
            reply.setdefault("payload", [])
        elif (
            reply["status"] == "error"
            and not silent
            and stop_on_error
            and channel == "shell"
        ):
            # Taken before the error reply goes out, so that nothing a client sends
            # after seeing the error can be mistaken for a request queued behind it.
            self._local.queued_behind_error = self.transport.queued(channel)
            # Executes still in flight then were sent before the error too: their
            # header date says so (see _sent_before_error).
            self._local.error_at = (time.time(), time.monotonic() + IN_FLIGHT_WINDOW_S)
        return reply

    def _sent_before_error(self, msg: Message) -> bool:
        """Whether an execute arriving just after a failed one was sent before that failure."""
        error_at = getattr(self._local, "error_at", None)
        if error_at is None or msg.msg_type != "execute_request":
            return False
        wall, until = error_at
        if time.monotonic() > until:
            self._local.error_at = None
            return False
        date = msg.header.get("date")
        try:
            sent = datetime.fromisoformat(str(date).replace("Z", "+00:00")).timestamp()
        except ValueError:
            return False
        if sent < wall:
            return True
        self._local.error_at = None  # the first request sent after the error ends the window
        return False

    def _kernel_info(self, channel: str, msg: Message) -> JSONDict:
        """The kernel's info, completed and checked: a raising property is an error reply."""
        try:
            info = self.kernel_info()
        except Exception as exc:
            return error_content(exc)
        problems = kernel_info_problems(info)
        if problems:
            return _error_reply(
                "InvalidKernelInfo",
                f"{type(self.kernel).__name__} kernel_info: " + "; ".join(problems),
            )
        return {"status": "ok", **info}

    def kernel_info(self) -> JSONDict:
        """kernel_info_reply content from the kernel, completed (see kernelinfo.complete)."""
        return complete(self.kernel, self.subshells)

    def _invalid(self, msg: Message, exc: _req.InvalidRequest) -> JSONDict:
        """The error reply to a request whose content breaks the spec (nothing ran).

        An execute's also goes to IOPub as ``error`` (unless silent), as a failed cell's
        does: notebook frontends show a cell's errors from IOPub, not from its reply.
        """
        content = _error_reply(exc.ename, exc.evalue)
        if msg.msg_type == "execute_request":
            content["execution_count"] = self.kernel.execution_count
            if not _is_silent(msg):
                self.publish("error", {"ename": exc.ename, "evalue": exc.evalue,
                                       "traceback": [exc.evalue]})
        return content

    def _complete(self, channel: str, msg: Message) -> JSONDict:
        try:
            code, cursor_pos = _req.complete(msg.content)
        except _req.InvalidRequest as exc:
            return self._invalid(msg, exc)
        return self._call("do_complete", code, cursor_pos)

    def _inspect(self, channel: str, msg: Message) -> JSONDict:
        try:
            code, cursor_pos, detail_level, omit_sections = _req.inspect(msg.content)
        except _req.InvalidRequest as exc:
            return self._invalid(msg, exc)
        return self._call(
            "do_inspect", code, cursor_pos, detail_level, omit_sections=omit_sections
        )

    def _history(self, channel: str, msg: Message) -> JSONDict:
        try:
            args = _req.history(msg.content)
        except _req.InvalidRequest as exc:
            return self._invalid(msg, exc)
        return self._call("do_history", *args)

    def _is_complete(self, channel: str, msg: Message) -> JSONDict:
        try:
            code = _req.is_complete(msg.content)
        except _req.InvalidRequest as exc:
            return self._invalid(msg, exc)
        return self._call("do_is_complete", code)

    def _comm_info(self, channel: str, msg: Message) -> JSONDict:
        try:
            _req.comm_info(msg.content)
        except _req.InvalidRequest as exc:
            return self._invalid(msg, exc)
        manager = self._comms(create=False)
        target = msg.content.get("target_name")
        comms = manager.comm_info(target if isinstance(target, str) else None) if manager else {}
        return {"status": "ok", "comms": comms}

    def _comms(self, create: bool = True) -> Any:
        """The kernel's comm manager (kernelkit.comms), made on first need; None if it has none.

        Comm callbacks are kernel code but take no hook lock: JupyterLab sends widget
        traffic over a subshell so that it is handled while a cell runs (as ipykernel 7).
        """
        kernel = self.kernel
        if not create and getattr(kernel, "_comm_manager", None) is None:
            return None
        try:
            return getattr(kernel, "comm_manager", None)
        except Exception as exc:
            _log("warning", "the kernel's comm_manager raised %r", exc)
            return None

    def _comm_open(self, channel: str, msg: Message) -> None:
        manager = self._comms()
        if manager is not None:
            manager.comm_open(msg)
            return
        # No comm targets exist: the spec asks for an immediate comm_close.
        comm_id = msg.content.get("comm_id")
        if isinstance(comm_id, str):
            self.publish("comm_close", {"comm_id": comm_id, "data": {}})

    def _comm_msg(self, channel: str, msg: Message) -> None:
        manager = self._comms(create=False)
        if manager is not None:
            manager.comm_msg(msg)

    def _comm_close(self, channel: str, msg: Message) -> None:
        manager = self._comms(create=False)
        if manager is not None:
            manager.comm_close(msg)

    def _ignore(self, channel: str, msg: Message) -> None:
        return None

    def _shutdown(self, channel: str, msg: Message) -> JSONDict:
        try:
            restart = _req.shutdown(msg.content)
        except _req.InvalidRequest as exc:
            return self._invalid(msg, exc)
        reply = self._call("do_shutdown", restart)
        if reply.get("ename") == "KernelBusy":
            # A hook is still running: exit without do_shutdown, as a busy kernel must
            # still shut down (the running hook is unwound on the way out).
            _log("warning", "shutdown without do_shutdown: a hook was still running")
            reply = {"status": "ok"}
        reply.setdefault("restart", restart)
        # Some clients watch IOPub rather than the reply to learn of a shutdown.
        self.publish("shutdown_reply", reply)
        self.transport.stop(0)
        return reply

    def _interrupt(self, channel: str, msg: Message) -> JSONDict:
        self.transport.interrupt()
        return {"status": "ok"}

    # -- subshells (JEP 91; control channel) ----------------------------------------

    def _create_subshell(self, channel: str, msg: Message) -> JSONDict:
        if not self.subshells:
            return _error_reply("SubshellsNotSupported", "this kernel does not support subshells")
        return {"status": "ok", "subshell_id": self.transport.create_subshell()}

    def _delete_subshell(self, channel: str, msg: Message) -> JSONDict:
        subshell_id = msg.content.get("subshell_id")
        if not isinstance(subshell_id, str):
            return _bad_request("delete_subshell_request content 'subshell_id' must be a string")
        if not self.transport.delete_subshell(subshell_id):
            return _error_reply("SubshellNotFound", f"no subshell with id {subshell_id!r}")
        return {"status": "ok"}

    def _list_subshell(self, channel: str, msg: Message) -> JSONDict:
        return {"status": "ok", "subshell_id": self.transport.list_subshells()}


class StdinNotImplementedError(RuntimeError):
    """Input was requested, but the client cannot answer (allow_stdin false)."""


def _reply_type(msg_type: str) -> str:
    base = msg_type[: -len("_request")] if msg_type.endswith("_request") else msg_type
    return f"{base}_reply"


def _bad_request(reason: str) -> JSONDict:
    return _error_reply("BadRequest", reason)


def _error_reply(ename: str, evalue: str) -> JSONDict:
    return {"status": "error", "ename": ename, "evalue": evalue, "traceback": [evalue]}


def _plain_stream(content: JSONDict) -> bool:
    """Whether a stream message's content is just its name and text (so it can be merged)."""
    return (
        isinstance(content, dict)
        and len(content) == 2
        and isinstance(content.get("name"), str)
        and isinstance(content.get("text"), str)
    )


def _is_silent(msg: Message | None) -> bool:
    return msg is not None and msg.msg_type == "execute_request" and (
        msg.content.get("silent") is True
    )


def _log(level: str, text: str, *args: object) -> None:
    from .logs import logger  # logging costs start-up time: imported once there is a line

    getattr(logger(), level)(text, *args)
