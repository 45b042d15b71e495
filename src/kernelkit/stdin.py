"""The stdin channel: asking the client that sent a request for a line of input.

One conversation at a time: a thread that asks holds ``lock`` (and with it the
socket) until its ``input_reply`` arrives, so that two subshells asking at once
each get their own answer; the other waits its turn.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import zmq

from .droplog import DropLog
from .shell import send_frames
from .wire import Message, ProtocolError, Session


class StdinChannel:
    """The stdin ROUTER socket and the input_request/input_reply exchange."""

    def __init__(
        self,
        sock: zmq.Socket[bytes],
        session: Session,
        running: Callable[[], bool],
        warn: Callable[[str], None],
        drops: DropLog,
    ) -> None:
        self.sock = sock
        self.session = session
        self.lock = threading.Lock()
        self._running = running
        self._warn = warn
        self._drops = drops

    def request_input(self, parent: Message, prompt: str, password: bool) -> str:
        """Send ``input_request`` to the client that sent ``parent`` and wait for its reply."""
        with self.lock:
            # Replies to earlier, abandoned requests must not answer this one.
            self._discard_waiting()
            header = self.session.header("input_request")
            frames = self.session.serialize(
                "input_request",
                {"prompt": prompt, "password": password},
                parent.raw_header or parent.header,
                identities=parent.identities,
                header=header,
            )
            send_frames(self.sock, frames)
            return self._wait_for_reply(header["msg_id"])

    def _wait_for_reply(self, msg_id: str) -> str:
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        while True:
            if not poller.poll(1000):
                if not self._running():
                    raise EOFError("kernel is shutting down")
                continue
            frames = self.sock.recv_multipart()
            try:
                reply = self.session.deserialize(frames)
            except ProtocolError as exc:
                self._drops.dropped("stdin", str(exc))
                continue
            if reply.msg_type != "input_reply":
                self._warn(f"unexpected {reply.msg_type} on stdin; ignored")
                continue
            if reply.parent_header.get("msg_id") not in (None, msg_id):
                continue
            value = reply.content.get("value", "")
            if not isinstance(value, str):
                raise ValueError("input_reply value is not a string")
            return value

    def discard_idle(self) -> None:
        """Between conversations, throw away what arrives (control thread, periodically).

        Nothing sent to stdin outside a conversation can answer anything, and left
        unread it would sit in libzmq's queues: a stranger could park gigabytes there
        while the kernel is idle.
        """
        if not self.lock.acquire(blocking=False):
            return  # a conversation reads for itself
        try:
            if not self.sock.closed:
                self._discard_waiting()
        finally:
            self.lock.release()

    def _discard_waiting(self) -> None:
        while True:
            try:
                self.sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return

    def close(self) -> None:
        with self.lock:
            self.sock.close()
