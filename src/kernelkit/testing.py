"""Test doubles for kernel authors and for kernelkit's own tests: no sockets, no threads.

``FakeTransport`` stands where the server stands, so a ``Dispatcher`` runs a request
through a kernel in-process in well under a millisecond and every message it would
have sent can be read back::

    kernel = MyKernel()
    transport, dispatcher = attach(kernel)
    dispatcher.handle("shell", request("execute_request", {"code": "1"}))
    assert transport.reply_to(...)["status"] == "ok"
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from types import FrameType
from typing import Any

from .wire import PROTOCOL_VERSION, JSONDict, Message, utcnow_iso

_ids = itertools.count(1)


def request(
    msg_type: str,
    content: JSONDict | None = None,
    subshell_id: str | None = None,
    **header: Any,
) -> Message:
    """A request as the server would hand it to the dispatcher."""
    hdr: JSONDict = {
        "msg_id": f"test-{next(_ids)}",
        "msg_type": msg_type,
        "session": "test-session",
        "username": "test",
        "date": utcnow_iso(),
        "version": PROTOCOL_VERSION,
        **header,
    }
    if subshell_id is not None:
        hdr["subshell_id"] = subshell_id
    return Message(hdr, {}, {}, dict(content or {}), identities=[b"client"])


class Sent:
    """One message the dispatcher sent."""

    __slots__ = ("buffers", "channel", "content", "metadata", "msg_type", "parent", "thread")

    def __init__(
        self,
        channel: str,
        msg_type: str,
        content: JSONDict,
        parent: Message | None,
        metadata: JSONDict | None,
        buffers: list[bytes] | tuple[bytes, ...],
    ) -> None:
        self.channel = channel
        self.msg_type = msg_type
        self.content = content
        self.parent = parent
        self.metadata = metadata or {}
        self.buffers = list(buffers)
        self.thread = threading.current_thread().name

    @property
    def parent_id(self) -> str | None:
        return None if self.parent is None else self.parent.msg_id

    def __repr__(self) -> str:
        return f"<Sent {self.channel} {self.msg_type} for {self.parent_id}: {self.content!r:.80}>"


class FakeTransport:
    """An in-memory Transport: records what is sent; queues and subshells are plain lists."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.queue: list[Message] = []  # what ``queued()`` hands out (stop_on_error)
        self.inputs: list[str] = []  # answers to input requests, in order
        self.input_prompts: list[str] = []
        self.interrupts = 0
        self.stopped: int | None = None
        self.subshells: list[str] = []
        self.on_send: Callable[[Sent], None] | None = None
        self._lock = threading.Lock()
        self._subshell_ids = itertools.count(1)

    # -- the Transport protocol ---------------------------------------------------

    def send(
        self,
        channel: str,
        msg_type: str,
        content: JSONDict,
        parent: Message | None = None,
        metadata: JSONDict | None = None,
        buffers: list[bytes] | tuple[bytes, ...] = (),
    ) -> JSONDict:
        from .wire import dumps

        dumps(content)  # as the server does: content that is not JSON raises before sending
        sent = Sent(channel, msg_type, content, parent, metadata, buffers)
        with self._lock:
            self.sent.append(sent)
        if self.on_send is not None:
            self.on_send(sent)
        return {"msg_id": f"sent-{next(_ids)}", "msg_type": msg_type}

    def request_input(self, parent: Message, prompt: str, password: bool) -> str:
        self.input_prompts.append(prompt)
        if not self.inputs:
            raise EOFError("no input prepared for this test")
        return self.inputs.pop(0)

    def interruptible(
        self, on_interrupt: Callable[[FrameType | None], bool] | None = None
    ) -> AbstractContextManager[None]:
        return contextlib.nullcontext()

    def interrupt(self) -> None:
        self.interrupts += 1

    def stop(self, exit_code: int = 0) -> None:
        self.stopped = exit_code

    def queued(self, channel: str = "shell") -> list[Message]:
        out, self.queue = self.queue, []
        return out

    def wait_for_subscriber(self, timeout: float) -> bool:
        return True

    def create_subshell(self) -> str:
        subshell_id = f"subshell-{next(self._subshell_ids)}"
        self.subshells.append(subshell_id)
        return subshell_id

    def delete_subshell(self, subshell_id: str) -> bool:
        if subshell_id not in self.subshells:
            return False
        self.subshells.remove(subshell_id)
        return True

    def list_subshells(self) -> list[str]:
        return list(self.subshells)

    # -- reading back ---------------------------------------------------------------

    def for_request(self, msg: Message) -> list[Sent]:
        """Everything sent with ``msg`` as its parent, in order."""
        with self._lock:
            return [s for s in self.sent if s.parent is msg]

    def replies(self, msg: Message) -> list[Sent]:
        return [s for s in self.for_request(msg) if s.channel != "iopub"]

    def reply_to(self, msg: Message) -> JSONDict:
        """The content of the one reply to ``msg`` (AssertionError unless exactly one)."""
        replies = self.replies(msg)
        assert len(replies) == 1, f"{len(replies)} replies to {msg.msg_type}: {replies}"
        return replies[0].content

    def iopub(self, msg: Message, msg_type: str | None = None) -> list[Sent]:
        return [
            s
            for s in self.for_request(msg)
            if s.channel == "iopub" and (msg_type is None or s.msg_type == msg_type)
        ]

    def statuses(self, msg: Message) -> list[str]:
        return [s.content["execution_state"] for s in self.iopub(msg, "status")]

    @contextlib.contextmanager
    def sending_hook(self, hook: Callable[[Sent], None]) -> Iterator[None]:
        """Run ``hook`` on each message as it is sent (to force an interleaving)."""
        previous, self.on_send = self.on_send, hook
        try:
            yield
        finally:
            self.on_send = previous


def attach(kernel: Any, transport: Any = None) -> tuple[Any, Any]:
    """Attach ``kernel`` to a dispatcher over ``transport`` (a new FakeTransport by default)."""
    from .dispatch import Dispatcher

    transport = FakeTransport() if transport is None else transport
    dispatcher = Dispatcher(kernel, transport)
    kernel._dispatcher = dispatcher
    return transport, dispatcher
