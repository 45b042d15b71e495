"""The shell channel: one reader thread, a queue per subshell, sends from any thread.

Subshells (JEP 91) need shell requests read while the main shell runs a long cell,
so no thread that runs hooks may own the socket's reading. Ownership:

* until the first subshell is created, the **main thread** reads the socket itself
  between requests (no thread hand-off: the round trip stays as short as it was);
* from then on (``routed``), the **reader thread** receives, authenticates and routes
  every message by ``header.subshell_id`` to its subshell's queue (the main shell's
  is ``None``), and the main thread takes the main shell's queue; each **child
  subshell** has a thread and a queue of its own, made by ``create``, ended by
  ``delete``. Whoever reads holds ``read_lock`` across reading and routing, so the
  main shell's requests keep their order across the switch;
* any of them sends a reply. The socket is guarded by ``lock``: the reader never
  blocks in ``zmq_poll`` on the socket (that would touch it without the lock) but
  polls its file descriptor, which only says "look at me"; a send may consume that
  notice, so the sender looks itself and wakes the reader if input is waiting.

This module knows nothing of what messages mean: the handler answers unknown
subshell ids and requests left in a deleted subshell's queue (``Handler.reject``).
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time

# SimpleQueue is this C class; importing queue itself costs ~1 ms of start-up.
from _queue import Empty, SimpleQueue
from collections.abc import Callable
from typing import Protocol

import zmq

from .droplog import DropLog
from .interrupts import Gate, ThreadGate
from .wire import Message, ProtocolError, Session, new_id

# The reader looks at the socket at least this often even without a wake-up (s): a
# safety net only, as every path that can hide input wakes it.
READER_POLL_S = 1.0
# Before the first subshell, the reader thread reads for a main thread that has been
# busy this long (s): kernel_info (JupyterLab's subshell console) is answered while a
# cell runs, and short requests never pay for a thread hand-off.
HANDOVER_S = 0.1
# How many messages the reader thread takes from the socket at a time.
READ_BATCH = 64

_raw_send = zmq.backend.Socket.send
_raw_recv = zmq.backend.Socket.recv
_raw_get = zmq.backend.Socket.get
_SNDMORE = int(zmq.SNDMORE)
_POLLIN = int(zmq.POLLIN)
_EVENTS = int(zmq.EVENTS)
_RCVMORE = int(zmq.RCVMORE)


def send_frames(sock: zmq.Socket[bytes], frames: list[bytes]) -> None:
    """Send one multipart message (copying small frames, as send_multipart does).

    pyzmq's Socket.send_multipart costs several times what libzmq does per frame
    (flag enums, argument handling); the backend's send is the same call without it.
    """
    last = len(frames) - 1
    for i, frame in enumerate(frames):
        _raw_send(sock, frame, _SNDMORE if i < last else 0)


def recv_frames(sock: zmq.Socket[bytes], flags: int = 0) -> list[bytes]:
    """Receive one multipart message, as recv_multipart does without its option enums.

    pyzmq's sugar wraps every ``getsockopt`` answer in an enum (RCVMORE once per frame,
    seven a request); the backend's calls are the same without that.
    """
    frames: list[bytes] = [_raw_recv(sock, flags)]
    while _raw_get(sock, _RCVMORE):
        frames.append(_raw_recv(sock, flags))
    return frames


def input_waiting(sock: zmq.Socket[bytes]) -> bool:
    """Whether a message can be read now (ZMQ_EVENTS, which also processes libzmq's commands)."""
    return bool(int(_raw_get(sock, _EVENTS)) & _POLLIN)


class Handler(Protocol):
    """What the transport hands each authentic message to (the dispatcher)."""

    def handle(self, channel: str, msg: Message) -> None: ...

    def immediate(self, msg: Message) -> bool: ...

    def reject(self, channel: str, msg: Message, ename: str, evalue: str) -> None: ...


class Subshell:
    """A child subshell: its id, queue, thread and interrupt gate."""

    def __init__(self, subshell_id: str) -> None:
        self.id = subshell_id
        self.queue: SimpleQueue[Message | None] = SimpleQueue()
        self.deleted = False
        self.gate: ThreadGate | None = None  # set by its thread when it starts
        self.thread: threading.Thread | None = None


class ShellChannel:
    """Reads the shell socket on its own thread and routes requests to subshell queues."""

    def __init__(
        self,
        sock: zmq.Socket[bytes],
        session: Session,
        log: Callable[[], object],
        drops: DropLog,
    ) -> None:
        self.drops = drops
        self.sock = sock
        self.session = session
        self.lock = threading.Lock()  # owns the socket for whoever holds it
        self.read_lock = threading.Lock()  # held by the thread that reads and routes
        self.routed = False  # True once the reader thread reads (the first subshell)
        self._busy_since = 0.0  # when the main thread began its request (0: idle); main writes
        self.main: SimpleQueue[Message | None] = SimpleQueue()
        self.handler: Handler | None = None
        self._subshells: dict[str, Subshell] = {}  # written by control, read by the reader
        self._subshells_lock = threading.Lock()
        self._running = True
        # One wake-up pipe for the reader thread, one for the main thread while it reads.
        self._wake_rx, self._wake_tx = os.pipe()
        self._main_wake_rx, self._main_wake_tx = os.pipe()
        for fd in (self._wake_rx, self._wake_tx, self._main_wake_rx, self._main_wake_tx):
            os.set_blocking(fd, False)
        self._reader: threading.Thread | None = None
        self._local = threading.local()  # .queue: the subshell queue a child thread serves
        self._log = log

    # -- the reader ----------------------------------------------------------------

    def start(self, handler: Handler) -> None:
        self.handler = handler
        self._reader = threading.Thread(target=self._read, name="kernelkit-shell", daemon=True)
        self._reader.start()

    def _hand_reading_over(self) -> None:
        self.routed = True
        self.wake()  # the reader reads from now on; a main thread waiting moves to its queue

    def _poller(self, wake_rx: int) -> select.poll:
        poller = select.poll()
        fd = self.sock.getsockopt(zmq.FD)
        assert isinstance(fd, int)
        poller.register(fd, select.POLLIN)
        poller.register(wake_rx, select.POLLIN)
        return poller

    def _read_once(self, limit: int = 1) -> bool:
        """Receive up to ``limit`` waiting messages and route them; False if there were none.

        The main thread takes one at a time, as it handles them: reading all that wait
        would hold a pipelined burst in memory at once, not in libzmq's bounded queue.
        """
        with self.read_lock:
            batch: list[list[bytes]] = []
            with self.lock:
                sock = self.sock
                if sock.closed:
                    return False
                while len(batch) < limit and input_waiting(sock):
                    try:
                        batch.append(recv_frames(sock, zmq.NOBLOCK))
                    except zmq.Again:
                        break
            for frames in batch:
                self._route(frames)
            return bool(batch)

    @staticmethod
    def _wait(poller: select.poll, wake_rx: int, timeout: float = READER_POLL_S) -> None:
        ready = poller.poll(int(timeout * 1000))
        # Drain the wake-up pipe only when it woke us: a request wakes us through the
        # socket's descriptor, and reading the empty pipe was a system call per request.
        if any(fd == wake_rx for fd, _ in ready):
            with contextlib.suppress(OSError):
                os.read(wake_rx, 4096)

    def _read(self) -> None:
        poller = self._poller(self._wake_rx)
        while self._running and not self.sock.closed:
            if not self.routed:
                since = self._busy_since
                if not since or time.monotonic() - since < HANDOVER_S:
                    time.sleep(HANDOVER_S / 2)  # the main thread reads for itself
                    continue
            if not self._read_once(READ_BATCH):
                self._wait(poller, self._wake_rx,
                           HANDOVER_S if not self.routed else READER_POLL_S)

    def serve_main(self, deliver: Callable[[Message], None], running: Callable[[], bool]) -> None:
        """The main thread's loop: read the socket itself until routed, then take its queue."""
        poller = self._poller(self._main_wake_rx)
        take = self.main.get
        while running():
            if self.routed:
                msg = take()
                if msg is not None:  # None: a wake-up to look at running() again
                    deliver(msg)
                continue
            got = self._read_once()
            delivered = False
            while True:
                try:
                    msg = self.main.get_nowait()
                except Empty:
                    break
                if msg is not None:
                    delivered = True
                    self._busy_since = time.monotonic()
                    try:
                        deliver(msg)
                    finally:
                        self._busy_since = 0.0
            # Wait only when the socket had nothing: what was read may have been answered
            # at once or dropped, and the socket's read notice is spent either way.
            if not got and not delivered and not self.routed and running():
                self._wait(poller, self._main_wake_rx)

    def _route(self, frames: list[bytes]) -> None:
        try:
            msg = self.session.deserialize(frames, keep=True)
        except ProtocolError as exc:
            self.drops.dropped("shell", str(exc))
            return
        except Exception as exc:  # nothing a client sends may end the reader
            self.drops.dropped("shell", f"could not be parsed: {exc!r}")
            return
        assert self.handler is not None
        target = msg.header.get("subshell_id")
        if self.handler.immediate(msg) and (
            target is None or (isinstance(target, str) and target in self._subshells)
        ):
            try:
                self.handler.handle("shell", msg)
            except Exception as exc:
                _warn(self._log, f"internal error answering {msg.msg_type}: {exc!r}")
            return
        if target is None:
            self.main.put(msg)
            return
        sub = self._subshells.get(target) if isinstance(target, str) else None
        if sub is None and not _is_request(msg):
            # A comm message for a subshell that is gone: JupyterLab closes its comms on a
            # subshell and deletes it a millisecond later, and the deletion (control) may
            # come first. It expects no reply and must not be lost: the main shell runs it.
            self.main.put(msg)
            return
        if sub is None:
            try:
                self.handler.reject("shell", msg, "SubshellNotFound",
                                    f"no subshell with id {target!r}")
            except Exception as exc:
                _warn(self._log, f"could not answer a request for unknown subshell: {exc!r}")
            return
        sub.queue.put(msg)

    def wake(self) -> None:
        """Wake the reader thread (and the main thread, should it be the one reading)."""
        for fd in (self._wake_tx, self._main_wake_tx):
            with contextlib.suppress(OSError):  # a full pipe already means "wake up"
                os.write(fd, b"x")

    # -- sending -------------------------------------------------------------------

    def send(self, frames: list[bytes]) -> None:
        with self.lock:
            send_frames(self.sock, frames)
            # The send may have consumed the socket's read notice: look for the reader.
            if input_waiting(self.sock):
                self.wake()

    # -- queues ----------------------------------------------------------------------

    def queued(self) -> list[Message]:
        """Requests waiting in the calling thread's subshell queue (for stop_on_error)."""
        q = self._queue_of_caller()
        if not self.routed and q is self.main:
            while self._read_once(READ_BATCH):  # the main thread reads for itself
                pass
        out: list[Message] = []
        while True:
            try:
                msg = q.get_nowait()
            except Empty:
                return out
            if msg is None:  # a stop marker: leave it for the loop that waits for it
                q.put(None)
                return out
            out.append(msg)

    def _queue_of_caller(self) -> SimpleQueue[Message | None]:
        q: SimpleQueue[Message | None] = getattr(self._local, "queue", self.main)
        return q

    # -- subshells -------------------------------------------------------------------

    def create(self, on_start: Callable[[ThreadGate], None] | None = None) -> str:
        self._hand_reading_over()
        sub = Subshell(new_id())
        started = threading.Event()

        def run() -> None:
            sub.gate = ThreadGate()
            self._local.queue = sub.queue
            if on_start is not None:
                on_start(sub.gate)
            started.set()
            self._serve_subshell(sub)

        sub.thread = threading.Thread(target=run, name=f"kernelkit-subshell-{sub.id[:8]}",
                                      daemon=True)
        with self._subshells_lock:
            self._subshells[sub.id] = sub
        sub.thread.start()
        started.wait()
        return sub.id

    def delete(self, subshell_id: str) -> Subshell | None:
        """Remove a subshell: new requests for it are refused; its thread ends after its
        current request, and requests still queued are answered with an error. Comm
        messages (no reply expected) still queued are run, and later ones go to the main
        shell: a widget closed just before its subshell is deleted is closed."""
        with self._subshells_lock:
            sub = self._subshells.pop(subshell_id, None)
        if sub is not None:
            sub.deleted = True
            sub.queue.put(None)
        return sub

    def ids(self) -> list[str]:
        with self._subshells_lock:
            return list(self._subshells)

    def subshells(self) -> list[Subshell]:
        with self._subshells_lock:
            return list(self._subshells.values())

    def _serve_subshell(self, sub: Subshell) -> None:
        handler = self.handler
        assert handler is not None and sub.gate is not None
        while True:
            msg = sub.queue.get()
            if msg is None:
                if sub.deleted or not self._running:
                    break
                continue
            if sub.deleted and _is_request(msg):  # queued before the deletion: answered, not run
                self._reject_deleted(sub, msg)
                continue
            try:
                handler.handle("shell", msg)
            except BaseException as exc:  # the thread must live on to answer the next one
                _warn(self._log, f"internal error on subshell {sub.id}: {exc!r}")
            sub.gate.settle()
        while True:
            try:
                msg = sub.queue.get_nowait()
            except Empty:
                return
            if msg is None:
                continue
            if _is_request(msg):
                self._reject_deleted(sub, msg)
            else:
                self.main.put(msg)  # behind the deletion marker: run by the main shell
                self.wake()

    def _reject_deleted(self, sub: Subshell, msg: Message) -> None:
        assert self.handler is not None
        try:
            self.handler.reject("shell", msg, "SubshellDeleted", f"subshell {sub.id} was deleted")
        except Exception as exc:
            _warn(self._log, f"could not answer a request for deleted subshell: {exc!r}")

    def wake_main(self) -> None:
        """Make the main thread look at its loop's condition again."""
        self.main.put(None)
        self.wake()

    def close(self) -> None:
        """Stop the reader and the subshell threads (their current hooks run on)."""
        self._running = False
        self.wake_main()
        for sub in self.subshells():
            sub.queue.put(None)
        if self._reader is not None:
            self._reader.join(2 * READER_POLL_S)
        with self.lock:
            self.sock.close()
        for fd in (self._wake_rx, self._wake_tx, self._main_wake_rx, self._main_wake_tx):
            with contextlib.suppress(OSError):
                os.close(fd)

    def gates(self) -> list[Gate]:
        return [sub.gate for sub in self.subshells() if sub.gate is not None]


def _warn(log: Callable[[], object], text: str) -> None:
    logger = log()
    warning = getattr(logger, "warning", None)
    if callable(warning):
        warning("%s", text)


def _is_request(msg: Message) -> bool:
    """Whether a shell message expects a reply (comm_open/msg/close do not)."""
    return msg.msg_type.endswith("_request")
