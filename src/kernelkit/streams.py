"""Output capture: the stream text of running requests, merged into few ``stream`` messages.

Kernel authors print while debugging, and ipykernel sends what a wrapper kernel
prints to the client as ``stream`` messages. Text belongs to the request that
produced it: ``OutStream`` (``sys.stdout`` and ``sys.stderr`` while hooks run) hands
it over with the writing thread's request as parent, and ``Dispatcher.publish``
hands over ``stream`` messages (``send_response``, a bridge backend's output) with the
parent they name, from whatever thread publishes them. Text written on a thread
that handles no request (start-up messages, the author's own threads) goes to the
process's real stream.

Coalescing
==========

A loop that prints 100,000 lines must not become 100,000 messages: each costs the
kernel a signed send and the client a parse and a re-render (40 MB of stderr from a
bridge backend became ~7 M messages and the request was still running 200 s later).
``Coalescer`` merges consecutive text of one stream name for one request into one
message, by these rules:

* at most one message per ``INTERVAL`` per stream of a request; text written in
  between waits, and the flusher thread sends it when the interval is over (or the
  writer does, at its next write after that);
* sparse output is not delayed: text that completes a line (or that the program
  flushes) after a quiet interval goes out at once, so ``print("a"); time.sleep(10)``
  shows "a" immediately; a partial line without a flush waits one ``INTERVAL``;
* memory is bounded: ``MAX_PENDING`` characters waiting for one request are sent at
  once, and merged text makes no larger message (a bigger write joining waiting text
  is sent in pieces; a request's first write goes out whole, as it was written);
* order is kept: text of the other stream name is sent before text of a new name is
  taken; ``Dispatcher`` flushes a request's text before any other message for it
  (display_data, error, clear_output, input_request, its reply) and the request's end
  sends the rest before ``status: idle``.

``INTERVAL`` is 50 ms. ipykernel waits 200 ms (``flush_interval``) before it sends
anything; kernelkit sends the first line at once, so the interval only paces a
continuous stream: 20 messages a second per stream, each carrying everything written
since the last, is few enough for a client to keep up with and frequent enough to
look live (people read 100 ms as instant).

Shared state and its owner
==========================

Everything shared between threads — which requests have text waiting, the text, the
times of their last messages, and when the flusher will next look — lives in one
``Coalescer`` and belongs to its lock (``Coalescer._lock``; the flusher waits on it
through ``_cond``). Writers (the main shell thread, subshells, control, the bridge's
reader) and the flusher thread take it.
**A stream message is sent while the lock is held**: taking text out and sending it
is one step, so the end of a request — which flushes under the same lock, then sends
its reply and idle — waits for a timer flush that already took its text, and that
flush went out with the parent stored beside the text, never the flushing thread's.
Nothing else is done under the lock (no hook, no wait), and ``transport.send`` takes
only the IOPub lock after it, which never waits for this one: no cycle.

The flusher thread starts when text first has to wait, and ends ``LINGER`` seconds
after text last had to. A request whose output goes out at once (the Echo kernel's
one message) never involves it; a print's partial line arms it, and while it runs
that costs no wake-up (``Coalescer._run``).
"""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any, Protocol

# At most one stream message per interval (s) for each stream of a request (see above).
INTERVAL = 0.05
# Characters of text waiting for one request (at most 1 MiB as UTF-8) that are sent at
# once; also the largest text of one message. Clients take a 256 Ki-character message
# without trouble; a stream faster than that per interval (~5 MB/s) goes out in pieces
# of this size as it comes, sent by its writer.
MAX_PENDING = 256 * 1024
# How long the flusher thread keeps looking after text last had to wait, before it ends (s).
LINGER = 2.0

_NEVER = float("-inf")

# Sends one stream message: (parent request, stream name, text) -> the header sent.
SendStream = Callable[[Any, str, str], Any]


class _Pending:
    """What one request has written and not yet sent (fields belong to Coalescer._lock)."""

    __slots__ = ("deadline", "last", "name", "parent", "parts", "ready", "size")

    def __init__(self, parent: Any) -> None:
        self.parent = parent  # the request the text belongs to; timer flushes use it
        self.name = ""  # stream name of the parts
        self.parts: list[str] = []
        self.size = 0  # characters in parts
        self.ready = False  # parts hold a complete line or a flush: no reason to wait
        self.deadline: float | None = None  # when the flusher sends parts
        self.last: dict[str, float] = {}  # stream name -> when its last message went out

    def quiet(self, now: float, interval: float) -> bool:
        return not self.parts and all(now - t >= interval for t in self.last.values())


class Coalescer:
    """Stream text of every running request, sent as few messages (see the module docstring)."""

    def __init__(
        self,
        send: SendStream,
        interval: float = INTERVAL,
        max_pending: int = MAX_PENDING,
        clock: Callable[[], float] = time.monotonic,
        lock: Any = None,
    ) -> None:
        self.send = send
        self.interval = interval
        self.max_pending = max_pending
        self.clock = clock  # tests replace it to control what counts as quiet
        # Reentrant: a send that writes (a transport that logs to a captured stream,
        # a test's hook) must not deadlock. ``lock`` is for tests that watch contention.
        self._lock = lock if lock is not None else threading.RLock()
        self._cond = threading.Condition(self._lock)  # the flusher waits on it
        self._pending: dict[Any, _Pending] = {}  # by parent request (identity)
        self._wake_at: float | None = None  # when the flusher looks next; None: not armed
        self._armed_at = 0.0  # when text last had to wait (time.monotonic)
        self._thread: threading.Thread | None = None

    # -- writers -----------------------------------------------------------------

    def write(self, parent: Any, name: str, text: str, ready: bool) -> Any:
        """Take ``text`` of stream ``name`` for ``parent``; send now if nothing says wait.

        ``ready``: the text ends something (a whole message, a line, a flush), so it
        may go out at once after a quiet interval. Returns the header of the message
        sent now, or None if the text waits.
        """
        if not text:
            return None
        with self._lock:
            now = self.clock()
            pending = self._pending.get(parent)
            if pending is None:
                if self._pending:
                    self._prune_locked(now)
                pending = self._pending[parent] = _Pending(parent)
                if ready:
                    # The request's first text (the Echo kernel's only message): at once,
                    # whole however big (it is in memory already; pieces would bound nothing).
                    pending.last[name] = now
                    return self.send(parent, name, text)
            elif pending.parts and pending.name != name:
                self._send_locked(pending, now)  # the other stream's text was first
            pending.name = name
            pending.parts.append(text)
            pending.size += len(text)
            if ready:
                pending.ready = True
            return self._decide_locked(pending, now)

    def ready(self, parent: Any, name: str) -> None:
        """The program flushed stream ``name``: its text need not wait for more."""
        if parent not in self._pending:
            return
        with self._lock:
            pending = self._pending.get(parent)
            if pending is not None and pending.parts and pending.name == name:
                pending.ready = True
                self._decide_locked(pending, self.clock())

    def flush(self, parent: Any) -> None:
        """Send what ``parent`` has waiting, now: something else for it is about to be sent."""
        if parent not in self._pending:  # nothing written, or sent and closed: no lock needed
            return
        with self._lock:
            pending = self._pending.get(parent)
            if pending is not None and pending.parts:
                self._send_locked(pending, self.clock())

    def close(self, parent: Any) -> None:
        """The request ends: send its text and forget it (its idle status comes next)."""
        if parent not in self._pending:
            return
        with self._lock:
            pending = self._pending.pop(parent, None)
            if pending is not None and pending.parts:
                self._send_locked(pending, self.clock())

    # -- under the lock --------------------------------------------------------------

    def _decide_locked(self, pending: _Pending, now: float) -> Any:
        """Send ``pending`` now, or make sure the flusher will."""
        last = pending.last.get(pending.name, _NEVER)
        if pending.size >= self.max_pending or (pending.ready and now >= last + self.interval):
            return self._send_locked(pending, now)
        due = last + self.interval if pending.ready else now + self.interval
        if pending.deadline is None or due < pending.deadline:
            pending.deadline = due
            self._arm_locked(due)
        return None

    def _send_locked(self, pending: _Pending, now: float) -> Any:
        text = "".join(pending.parts)
        name = pending.name
        # The record is clean before the send: a write from inside the send (the lock
        # is reentrant) starts afresh instead of being sent twice.
        pending.parts = []
        pending.size = 0
        pending.ready = False
        pending.deadline = None
        pending.last[name] = now
        limit = self.max_pending
        if len(text) <= limit:
            return self.send(pending.parent, name, text)
        header = None
        for start in range(0, len(text), limit):
            header = self.send(pending.parent, name, text[start : start + limit])
        return header

    def _prune_locked(self, now: float) -> None:
        """Forget requests with nothing waiting and no recent message (stray output)."""
        for parent, pending in list(self._pending.items()):
            if pending.quiet(now, self.interval):
                del self._pending[parent]

    def _arm_locked(self, due: float) -> None:
        """Make the flusher look by ``due`` (waking it only if it would look later)."""
        self._armed_at = time.monotonic()
        if self._thread is None:
            self._wake_at = due
            self._thread = threading.Thread(
                target=self._run, name="kernelkit-streams", daemon=True
            )
            self._thread.start()
        elif self._wake_at is None or due < self._wake_at:
            self._wake_at = due
            self._cond.notify()

    # -- the flusher thread ------------------------------------------------------------

    def _run(self) -> None:
        """Send text whose time has come; tick while output is recent, then end.

        While text was armed in the last ``LINGER`` seconds the flusher looks at least
        every ``interval`` even with nothing due, so that the next arm (a print's
        partial line, before its newline) falls after its next look and needs no
        wake-up: a cell printing a line then costs no thread switch.
        """
        with self._lock:
            while True:
                now = self.clock()
                wake: float | None = None
                for pending in list(self._pending.values()):
                    due = pending.deadline
                    if due is None:
                        continue
                    if due <= now:
                        try:
                            self._send_locked(pending, now)
                        except Exception as exc:  # the kernel is closing its sockets, say
                            _log_failure(exc)
                    elif wake is None or due < wake:
                        wake = due
                self._prune_locked(now)
                if wake is None:
                    if time.monotonic() - self._armed_at >= LINGER:
                        self._wake_at = None
                        self._thread = None  # under the lock: the next arm starts a new one
                        return
                    wake = now + self.interval
                self._wake_at = wake
                self._cond.wait(wake - now)


class _Publisher(Protocol):
    @property
    def parent(self) -> Any: ...

    @property
    def streams(self) -> Coalescer: ...


class _Unattached:
    """The publisher of a stream made before its kernel's dispatcher: nothing is a request yet."""

    parent = None
    streams: Any = None


def early_streams() -> tuple[OutStream, OutStream]:
    """sys.stdout and sys.stderr as OutStreams, before the kernel class is constructed.

    ipykernel builds a kernel after its output streams, and kernels rely on it:
    metakernel replaces ``sys.stdout.write`` in ``__init__``. Until the dispatcher
    takes them over, writes go to the real streams. ``restore`` undoes it.
    """
    out = OutStream("stdout", _Unattached(), sys.stdout)
    err = OutStream("stderr", _Unattached(), sys.stderr)
    sys.stdout, sys.stderr = out, err
    return out, err


def restore(streams: tuple[OutStream, OutStream]) -> None:
    """Put the real streams back (a kernel that did not start says why on them)."""
    out, err = streams
    if sys.stdout is out and out.fallback is not None:
        sys.stdout = out.fallback
    if sys.stderr is err and err.fallback is not None:
        sys.stderr = err.fallback


class OutStream(io.TextIOBase):
    """A text stream whose text becomes ``stream`` output of the writing thread's request."""

    def __init__(self, name: str, publisher: _Publisher, fallback: IO[str] | None = None) -> None:
        super().__init__()
        self.name_ = name
        self.publisher = publisher
        self.fallback = fallback

    encoding = "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        publisher = self.publisher
        parent = publisher.parent
        if parent is None:
            if self.fallback is not None:
                self.fallback.write(text)
            return len(text)
        publisher.streams.write(parent, self.name_, text, "\n" in text)
        return len(text)

    def flush(self) -> None:
        """Show what was written soon (at once after a quiet interval), as a terminal would."""
        publisher = self.publisher
        parent = publisher.parent
        if parent is None:
            if self.fallback is not None:
                self.fallback.flush()
            return
        publisher.streams.ready(parent, self.name_)

    def fileno(self) -> int:
        if self.fallback is None:
            raise io.UnsupportedOperation("fileno")
        return self.fallback.fileno()


def _log_failure(exc: BaseException) -> None:
    from .logs import logger  # logging costs start-up time: imported once there is a line

    logger().warning("stream output could not be sent: %s: %s", type(exc).__name__, exc)
