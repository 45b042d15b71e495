"""Several requests in flight on one backend: bridge protocol 1.1, for subshells.

A backend that says ``"subshells": true`` in its ``initialize`` result may get one
request per subshell at a time, all at once, each with its ``subshell_id``. Replies
come back by id; output notifications and input requests name the request they
belong to in ``params.request`` (docs/bridge-protocol.md, "Subshells").

Who does what. Each request waits on its own thread (its subshell's, or control's).
One of them at a time is the **reader** (``reader``, its slot): it reads the backend's
stdout and stderr, files each reply in its request's ``Slot``, publishes output with
that request as parent, hands input requests to the thread that owns the request
(only it may talk to the client's stdin for it), and wakes the others. It stops
reading once its own reply or input has come; another waiting thread then takes
over. All of this state belongs to ``cv``.

An execute that finds nothing in flight is sent early (``start``), before the
dispatcher publishes its busy and execute_input, as without subshells (kernel.py's
``_start_execute``); its slot takes the reader role at once, so that no request
arriving meanwhile reads its output and publishes it ahead of that execute_input.

An interrupt reaches every running request's thread; the first forwards it to the
backend and sets ``kill_at``. Whoever reads when that passes with requests still
unanswered ends the backend, and each of them gets an error reply.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from ..literals import KEPT
from ..logs import logger
from . import jsonrpc
from .comms import COMM_NOTIFICATIONS
from .jsonrpc import Codec
from .process import BackendProcess, Exited, Line, Stderr, TooLong
from .replies import error, reply_of

if TYPE_CHECKING:
    from .kernel import BridgeKernel

# How long the reader waits for the backend before it looks at the others again (s).
READ_SLICE = 0.1


class Slot:
    """One request in flight: who asked (its parent message) and what came back."""

    __slots__ = ("count", "inputs", "main", "parent", "reply", "rid")

    def __init__(self, rid: int, parent: Any, count: Any, main: bool) -> None:
        self.rid = rid
        self.parent = parent
        self.count = count if isinstance(count, int) else None
        self.main = main  # on the main shell (no subshell_id)
        self.reply: dict[str, Any] | None = None
        self.inputs: list[jsonrpc.Request] = []


class Shared:
    """The requests in flight on one backend, and the reader role among their threads."""

    def __init__(self, kernel: BridgeKernel, grace: float) -> None:
        self.kernel = kernel
        self.grace = grace
        self.cv = threading.Condition()
        self.slots: dict[int, Slot] = {}
        self.reader: Slot | None = None  # whose thread reads the backend now
        self.kill_at = 0.0  # when an interrupted backend is ended (0: not interrupted)

    def _open(self, backend: BackendProcess, method: str, params: dict[str, Any]
              ) -> tuple[Slot, bytes]:
        """A new request in flight (called with cv held): its slot and its line."""
        kernel = self.kernel
        parent = kernel._dispatcher.parent if kernel._dispatcher is not None else None
        subshell = parent.header.get("subshell_id") if parent is not None else None
        rid, line = kernel.codec.request(method, {**params, "subshell_id": subshell})
        slot = Slot(rid, parent, params.get("execution_count"), subshell is None)
        kernel._comms.sent(rid, parent)
        if not self.slots:
            backend.begin()  # output from here on is for requests in flight
        self.slots[rid] = slot
        return slot, line

    def request(
        self, backend: BackendProcess, method: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        """Send a request and wait for its reply (reading for everyone when it is our turn)."""
        with self.cv:
            slot, line = self._open(backend, method, params)
        return self.wait(backend, slot, line)

    def start(self, backend: BackendProcess, params: dict[str, Any], inline_max: int
              ) -> Slot | None:
        """Send an execute early, if nothing is in flight: its slot (reader role taken), or
        None (then do_execute sends it through ``request``).

        It must not block: only with nothing in flight has the backend read every line
        before this one (it answered them), so that the pipe has room for a line of up to
        ``inline_max``. A failed send is filed as the slot's reply, for ``wait``.
        """
        with self.cv:
            if self.slots or self.reader is not None:
                return None
            slot, line = self._open(backend, "execute", params)
            if len(line) > inline_max:
                self._close(backend, slot)
                return None
            self.reader = slot
        try:
            sent = backend.send(line)
        except BaseException:
            with self.cv:
                self._close(backend, slot)
            raise
        if not sent:
            with self.cv:
                self._all_died(backend)
        return slot

    def wait(self, backend: BackendProcess, slot: Slot, line: bytes | None = None
             ) -> dict[str, Any]:
        """Send ``line`` (unless ``start`` did), then serve until ``slot`` has its reply."""
        kernel = self.kernel
        try:
            if line is not None and not backend.send(line):
                with self.cv:
                    self._all_died(backend)
            while True:
                try:
                    reply = self._turn(backend, slot)
                except KeyboardInterrupt:
                    self._interrupt(backend)
                    continue
                if reply is not None:
                    return reply
        except BaseException as exc:
            if not isinstance(exc, Exception):
                # The kernel is exiting (SIGTERM) mid-request: the backend must not outlive it.
                backend.stop(0.5)
                kernel.backend = None
            raise
        finally:
            with self.cv:
                self._close(backend, slot)

    def _close(self, backend: BackendProcess, slot: Slot) -> None:
        """``slot`` leaves (called with cv held), and with it any reader role it held."""
        self.slots.pop(slot.rid, None)
        if self.reader is slot:
            self.reader = None
            self.cv.notify_all()
        if not self.slots:
            backend.end()  # output from here on is logged, not shown
            self.kill_at = 0.0

    def _turn(self, backend: BackendProcess, slot: Slot) -> dict[str, Any] | None:
        """Our reply if it came; else answer our inputs, or read for everyone, or wait."""
        with self.cv:
            while True:
                if slot.reply is not None:
                    return slot.reply  # (a reader role start took goes in wait's _close)
                if slot.inputs:
                    inputs, slot.inputs = slot.inputs, []
                    break
                if self.reader is None or self.reader is slot:
                    self.reader = slot
                    inputs = []
                    break
                self.cv.wait(READ_SLICE)
        if inputs:
            for request in inputs:
                self.kernel._backend_request(backend, request)
            return None
        try:
            self._read(backend, slot)
        finally:
            with self.cv:
                self.reader = None
                self.cv.notify_all()
        return None

    def _read(self, backend: BackendProcess, mine: Slot) -> None:
        """Reader: handle the backend's events until our own reply or input has come."""
        while mine.reply is None and not mine.inputs:
            if self.kill_at and time.monotonic() > self.kill_at:
                backend.stop(0.2)
                with self.cv:
                    self._fail_all(
                        "KeyboardInterrupt",
                        f"the backend did not stop within {self.grace:g} s of the interrupt; "
                        "it was ended and will be restarted",
                    )
                    self.kernel.backend = None
                return
            event = backend.next_event(READ_SLICE)
            if event is None:
                continue
            with self.cv:
                self._file(backend, event)
                self.cv.notify_all()

    def _file(self, backend: BackendProcess, event: Any) -> None:
        """Put one event where it belongs (called with cv held)."""
        kernel = self.kernel
        if isinstance(event, Exited):
            self._all_died(backend)
            return
        if isinstance(event, TooLong):
            died = kernel._too_long(backend, event.limit)
            for waiting in self.slots.values():
                if waiting.reply is None:
                    waiting.reply = dict(died)
            self.cv.notify_all()
            return
        if isinstance(event, Stderr):
            self._output("stream", {"name": "stderr", "text": event.text}, None)
            return
        assert isinstance(event, Line)
        msg = Codec.parse(event.data, keep=True)
        event.data = b""  # a line of many MB: let it go before its message is published
        if isinstance(msg, jsonrpc.Notification):
            try:  # its big strings go to IOPub as the JSON text they came in (literals.py)
                self._notification(msg)
            finally:
                if msg.kept:
                    KEPT.drop(msg.kept)
            return
        if isinstance(msg, jsonrpc.Response):
            slot = self.slots.get(msg.id) if isinstance(msg.id, int) else None
            if slot is None:
                logger().warning("backend answered unknown request id %r; ignored", msg.id)
                return
            # Stderr written before this reply is in the pipe now: into a cell still open.
            text = backend.drain_stderr()
            if text:
                self._output("stream", {"name": "stderr", "text": text}, None)
            slot.reply = reply_of(msg)
        elif isinstance(msg, jsonrpc.Request):
            target = self._target(msg.params.get("request"))
            if target is None:
                backend.send(Codec.error(msg.id, jsonrpc.INTERNAL_ERROR, "no request is running"))
                return
            target.inputs.append(msg)
        elif isinstance(msg, jsonrpc.Text):
            self._output("stream", {"name": "stdout", "text": msg.text + "\n"}, None)
        else:
            logger().warning("malformed line from backend (%s): %.200s", msg.reason, msg.line)

    def _notification(self, msg: jsonrpc.Notification) -> None:
        target = self._target(msg.params.get("request"))
        if msg.method in COMM_NOTIFICATIONS:  # state, not output: never late
            self.kernel._comms.notification(msg, target.parent if target else None)
            return
        if target is None:
            logger().warning(
                "backend %s for request %s, which is not running: logged, not shown",
                msg.method, msg.params.get("request"),
            )
            return
        self.kernel._notification(msg, target.parent, target.count)

    def _target(self, rid: Any) -> Slot | None:
        """The request a line belongs to: the one it names, else the only or main one.

        A line that names a request already answered belongs to none: its cell is closed.
        """
        if isinstance(rid, int) and not isinstance(rid, bool):
            return self.slots.get(rid)
        slots = list(self.slots.values())
        if len(slots) <= 1:
            return slots[0] if slots else None
        return next((s for s in slots if s.main), min(slots, key=lambda s: s.rid))

    def _output(self, msg_type: str, content: dict[str, Any], rid: Any) -> None:
        target = self._target(rid)
        if target is None:
            logger().warning("backend output with no request running: %.200s", content)
            return
        self.kernel._publish(msg_type, content, target.parent)

    def _interrupt(self, backend: BackendProcess) -> None:
        """A running request's thread was interrupted: tell the backend once."""
        with self.cv:
            if self.kill_at:
                return
            self.kill_at = time.monotonic() + self.grace
        self.kernel._forward_interrupt(backend)

    def _all_died(self, backend: BackendProcess) -> None:
        """The backend is gone: every request in flight gets the same BackendDied reply."""
        died = self.kernel._died(backend)
        for slot in self.slots.values():
            if slot.reply is None:
                slot.reply = dict(died)
        self.cv.notify_all()

    def _fail_all(self, ename: str, evalue: str) -> None:
        for slot in self.slots.values():
            if slot.reply is None:
                slot.reply = error(ename, evalue)
        self.cv.notify_all()
