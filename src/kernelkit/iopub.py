"""The IOPub channel: an XPUB socket shared by every thread that publishes.

Protocol 5.5 makes IOPub an XPUB socket so that the kernel sees subscriptions and
answers each with ``iopub_welcome``; that is how a client knows its subscription
has arrived. The socket belongs to ``lock``; the control thread polls its file
descriptor (which never touches the socket) and calls ``welcome``.

Subscriptions arrive before anything is authenticated, from anyone who can reach the
port, so answering them must cost the kernel little whatever is sent:

* welcomes are **coalesced**: one welcome per distinct topic per batch read, and per
  topic at most one per ``WELCOME_INTERVAL_S`` (later ones wait for the interval in
  ``_due``, bounded by ``MAX_PENDING_TOPICS``). A welcome published on topic T reaches
  every subscriber whose subscription is a prefix of T, so one welcome answers all who
  subscribed to T since the last one, and a flood of subscriptions becomes a trickle;
* the lock is let go every ``WELCOME_BATCH`` subscriptions, so that output and replies
  are not held up behind a flood;
* only **harmless topics** are answered: the empty one that Jupyter clients use, or a
  short UTF-8 one that is not the ``<IDS|MSG>`` delimiter (that welcome would reach
  every client and break their parsing of it); others are subscribed (libzmq does
  that) but not welcomed.

Output held for subscribers that do not read is bounded in **bytes**: large frames are
sent zero-copy with a tracker, ``held_bytes`` is what libzmq still holds of them, and
the server cuts the connections that stall (``connections.ConnectionGuard``) when it
passes ``max_bytes``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import zmq

from .shell import send_frames
from .wire import DELIMITER, Session, welcome_content

WELCOME_INTERVAL_S = 0.1
WELCOME_BATCH = 1000
MAX_PENDING_TOPICS = 64
# Welcomes on topics other than the empty one, per interval, whatever their number:
# each reaches every subscriber to the empty topic (every Jupyter client).
MAX_TOPIC_WELCOMES = 4
MAX_TOPIC_BYTES = 256
# Frames at least this big are sent zero-copy and tracked until libzmq lets them go.
TRACK_MIN_BYTES = 64 * 1024
DEFAULT_MAX_BYTES = 128 * 1024 * 1024


def answerable(topic: bytes) -> bool:
    """Whether a subscription's topic may be answered with a welcome published on it."""
    if not topic:
        return True
    if len(topic) > MAX_TOPIC_BYTES or topic == DELIMITER:
        return False
    try:
        topic.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class IOPub:
    """The IOPub XPUB socket, safe to use from several threads."""

    def __init__(
        self,
        socket: zmq.Socket[bytes],
        session: Session,
        max_bytes: int = DEFAULT_MAX_BYTES,
        on_full: Callable[[], None] | None = None,
    ) -> None:
        self.socket = socket
        self.session = session
        self.lock = threading.Lock()  # owns the socket and everything below
        self.subscribed = threading.Event()  # set once any client has subscribed
        self.max_bytes = max_bytes
        # topic -> when it was last welcomed; topics waiting for their interval
        self._last_welcome: dict[bytes, float] = {}
        self._due: dict[bytes, float] = {}
        self._topic_window = (0.0, 0)  # (start, non-empty welcomes sent in it)
        self.subscription_bytes = 0  # of subscriptions read (the guard resets it)
        self.flood_bytes: int | None = None  # stop reading when past this (for the guard)
        self.subscriptions = 0
        # Tracked large sends: (tracker, bytes), oldest first.
        self._tracked: deque[tuple[zmq.MessageTracker, int]] = deque()
        self._held = 0
        self.over = False  # held passed max_bytes at the last tracked send (a hint)
        self._on_full = on_full

    # -- publishing -------------------------------------------------------------------

    def send(self, frames: list[bytes]) -> None:
        with self.lock:
            big = 0
            for frame in frames:
                if len(frame) >= TRACK_MIN_BYTES:
                    big += len(frame)
            if big:
                self._send_tracked(frames, big)
            else:
                send_frames(self.socket, frames)
            # A send may consume the wake-up of a pending subscription that the control
            # thread polls for. Until the first client has subscribed, look right away
            # (the first execute waits for it); later ones the control thread's
            # periodic look catches.
            if not self.subscribed.is_set() and self._readable():
                self._welcome_locked(time.monotonic())

    def _send_tracked(self, frames: list[bytes], size: int) -> None:
        last = len(frames) - 1
        tracker: zmq.MessageTracker | None = None
        for i, frame in enumerate(frames):
            flags = zmq.SNDMORE if i < last else 0
            if len(frame) >= TRACK_MIN_BYTES:
                t = self.socket.send(frame, flags, copy=False, track=True)
                assert isinstance(t, zmq.MessageTracker)
                tracker = t
            else:
                self.socket.send(frame, flags)
        assert tracker is not None
        self._tracked.append((tracker, size))
        self._held += size
        self._release_done()
        if self._held > self.max_bytes:
            self.over = True
            if self._on_full is not None:
                self._on_full()  # the control thread looks for subscribers to cut

    def _release_done(self) -> None:
        while self._tracked and self._tracked[0][0].done:
            self._held -= self._tracked.popleft()[1]

    def wait_for_room(self, timeout: float) -> bool:
        """Wait (a publishing thread) until IOPub holds less than its bound; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.held_bytes() > self.max_bytes:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        self.over = False
        return True

    def held_bytes(self) -> int:
        """Bytes of large output libzmq still holds for subscribers that have not taken it."""
        with self.lock:
            self._release_done()
            if self._tracked and not self._tracked[0][0].done:
                # Later sends may be done while an older one waits: count exactly.
                return sum(size for t, size in self._tracked if not t.done)
            return self._held

    # -- welcomes -----------------------------------------------------------------------

    def welcome(self) -> None:
        """Answer waiting subscriptions and welcomes whose interval is over (control thread).

        Returns early once ``subscription_bytes`` passes ``flood_bytes``, so that the
        guard can cut the sender before libzmq takes in more.
        """
        now = time.monotonic()
        for _ in range(64):  # a flood is read in batches, letting go of the lock between
            with self.lock:
                more = self._readable() and self._welcome_locked(now)
                if not more:
                    self._send_due(now)
                    return
            if self.flood_bytes is not None and self.subscription_bytes > self.flood_bytes:
                return

    def next_due(self) -> float | None:
        """When the next deferred welcome is due (monotonic time), if any."""
        with self.lock:
            return min(self._due.values()) if self._due else None

    def _readable(self) -> bool:
        return bool(int(self.socket.getsockopt(zmq.EVENTS)) & zmq.POLLIN)

    def _welcome_locked(self, now: float) -> bool:
        """Read up to a batch of subscription events; True if more may be waiting."""
        topics: set[bytes] = set()
        n = 0
        more = False
        while True:
            if self.flood_bytes is not None and self.subscription_bytes > self.flood_bytes:
                more = True  # a flood, most likely: let the guard look at once
                break
            if n >= WELCOME_BATCH:
                more = True
                break
            try:
                event = self.socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            n += 1
            self.subscription_bytes += len(event)
            if event[:1] != b"\x01":  # first byte 1 = subscribe, 0 = unsubscribe
                continue
            self.subscriptions += 1
            topic = event[1:]
            if answerable(topic):
                topics.add(topic)
        if topics:
            self.subscribed.set()
        for topic in topics:
            last = self._last_welcome.get(topic)
            if (last is None or now - last >= WELCOME_INTERVAL_S) and self._may_send(topic, now):
                self._send_welcome(topic, now)
            elif topic in self._due or len(self._due) < MAX_PENDING_TOPICS:
                self._due[topic] = max(now, (last or now) + WELCOME_INTERVAL_S)
        return more

    def _may_send(self, topic: bytes, now: float) -> bool:
        if not topic:
            return True
        start, sent = self._topic_window
        if now - start >= WELCOME_INTERVAL_S:
            start, sent = now, 0
        if sent >= MAX_TOPIC_WELCOMES:
            self._topic_window = (start, sent)
            return False
        self._topic_window = (start, sent + 1)
        return True

    def _send_due(self, now: float) -> None:
        for topic, due in list(self._due.items()):
            if due <= now and self._may_send(topic, now):
                del self._due[topic]
                self._send_welcome(topic, now)
            elif due <= now:
                self._due[topic] = now + WELCOME_INTERVAL_S
        if len(self._last_welcome) > 4 * MAX_PENDING_TOPICS:  # forget old topics
            for topic, when in list(self._last_welcome.items()):
                if now - when >= WELCOME_INTERVAL_S:
                    del self._last_welcome[topic]

    def _send_welcome(self, topic: bytes, now: float) -> None:
        self._last_welcome[topic] = now
        ids = [topic] if topic else []
        frames = self.session.serialize(
            "iopub_welcome", welcome_content(topic.decode("utf-8")), identities=ids
        )
        send_frames(self.socket, frames)

    def close(self) -> None:
        with self.lock:
            self.socket.close()
