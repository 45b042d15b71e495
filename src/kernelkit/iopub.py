"""The IOPub channel: an XPUB socket shared by every thread that publishes.

Protocol 5.5 makes IOPub an XPUB socket so that the kernel sees subscriptions and
answers each with ``iopub_welcome``; that is how a client knows its subscription
has arrived. The socket belongs to ``lock``; the control thread polls its file
descriptor (which never touches the socket) and calls ``welcome``.
"""

from __future__ import annotations

import threading

import zmq

from .shell import send_frames
from .wire import Session, welcome_content


class IOPub:
    """The IOPub XPUB socket, safe to use from several threads."""

    def __init__(self, socket: zmq.Socket[bytes], session: Session) -> None:
        self.socket = socket
        self.session = session
        self.lock = threading.Lock()
        self.subscribed = threading.Event()  # set once any client has subscribed

    def send(self, frames: list[bytes]) -> None:
        with self.lock:
            send_frames(self.socket, frames)
            # A send may consume the wake-up of a pending subscription that the control
            # thread polls for. Until the first client has subscribed, look right away
            # (the first execute waits for it); later ones the control thread's
            # periodic look catches.
            if not self.subscribed.is_set() and self._readable():
                self._welcome_locked()

    def welcome(self) -> None:
        with self.lock:
            if self._readable():
                self._welcome_locked()

    def _readable(self) -> bool:
        return bool(int(self.socket.getsockopt(zmq.EVENTS)) & zmq.POLLIN)

    def _welcome_locked(self) -> None:
        while True:
            try:
                event = self.socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if event[:1] != b"\x01":  # first byte 1 = subscribe, 0 = unsubscribe
                continue  # an unsubscription
            topic = event[1:]
            try:
                subscription = topic.decode("utf-8")
            except UnicodeDecodeError:
                continue
            self.subscribed.set()
            ids = [topic] if topic else []
            frames = self.session.serialize(
                "iopub_welcome", welcome_content(subscription), identities=ids
            )
            send_frames(self.socket, frames)

    def close(self) -> None:
        with self.lock:
            self.socket.close()
