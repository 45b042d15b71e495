"""The interrupt gate: when an interrupt may cut a running hook short, per thread.

Theory of operation
===================

An interrupt (SIGINT from the client, or ``interrupt_request`` in "message" mode,
which makes the kernel send itself SIGINT) must stop the *hook* that is running and
nothing else: not a send half done (frames cut mid-message corrupt the socket), not
the bookkeeping around a hook (the reply would be lost), not a request running on
another thread.

What does not work:

* raising ``KeyboardInterrupt`` from the signal handler wherever the main thread
  happens to be: it lands inside sends and between a hook's return and its reply;
* one process-wide "a hook is running" flag: a hook on the control thread, or two
  overlapping hooks on two threads, leave it armed with no hook running, and the
  next SIGINT breaks a ``status`` send (issue: every request gets one reply);
* a generator context manager: the handler cannot tell its code from the hook's.

What does: one ``Gate`` per thread that runs hooks, owned by that thread, with one
state field. ``IDLE`` (no hook: interrupts are ignored) → ``ARMED`` (a hook runs: an
interrupt raises now) → ``SENDING`` (the hook is sending a message: an interrupt
becomes ``PENDING`` and is raised as soon as the send is complete) → back.

The main thread's gate is driven by the SIGINT handler, which Python runs on the
main thread itself between bytecodes, so owner and handler never run at once. Each
owner transition is a load, a compare and a store with no call or backward jump in
between, which is where CPython runs signal handlers, so none runs in the middle of
one. The handler recognises the code of ``Gate.leave`` and ``Guard.__exit__`` and
never raises there: the hook's work is done and its reply must go out.

Other threads (subshells) never receive signals. Their gates are interrupted from
the control thread by posting an asynchronous ``KeyboardInterrupt`` to the thread
(``PyThreadState_SetAsyncExc``), under the gate's lock and only while ``ARMED``
(state ``POSTED`` then). A send withdraws a posted exception that has not fired yet
and raises it after the send instead; leaving the hook withdraws it. Such an
exception fires at the thread's next bytecode: a hook blocked in C code
(``time.sleep``, a socket read) sees it only when that call returns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import signal
else:  # the C module: ``signal`` builds three enums when imported, ~0.4 ms of start-up
    import _signal as signal

IDLE = "idle"
ARMED = "armed"
SENDING = "sending"
PENDING = "pending"
POSTED = "posted"  # thread gates only: an asynchronous KeyboardInterrupt is on its way

OnInterrupt = Callable[[FrameType | None], bool]


class Gate:
    """The main thread's gate, interrupted by SIGINT (see the module docstring)."""

    __slots__ = ("entries", "ident", "on_interrupt", "state")

    def __init__(self, ident: int | None = None) -> None:
        self.ident = ident if ident is not None else threading.get_ident()  # the owner
        self.state = IDLE
        self.on_interrupt: OnInterrupt | None = None
        # Blocks entered so far: which hook is armed now (the server's SIGINT chase must
        # not reach a hook that began after the signal it chases).
        self.entries = 0

    def __call__(self, on_interrupt: OnInterrupt | None = None) -> Guard:
        """A context manager for a block (a hook) that an interrupt may cut short."""
        return Guard(self, on_interrupt)

    @property
    def armed(self) -> bool:
        return self.state is not IDLE

    # -- owner transitions ---------------------------------------------------------

    def enter(self, on_interrupt: OnInterrupt | None) -> tuple[str, OnInterrupt | None]:
        saved = (self.state, self.on_interrupt)
        self.entries += 1
        self.on_interrupt = on_interrupt
        self.state = ARMED
        return saved

    def leave(self, saved: tuple[str, OnInterrupt | None]) -> None:
        # A pending interrupt is dropped: the hook it was meant for is over.
        self.state = ARMED if saved[0] is not IDLE else IDLE
        self.on_interrupt = saved[1]

    def begin_send(self) -> None:
        if self.state is ARMED:
            self.state = SENDING

    def end_send(self) -> None:
        if self.state is PENDING:
            self.state = ARMED
            raise KeyboardInterrupt
        if self.state is SENDING:
            self.state = ARMED

    # -- the interrupter -------------------------------------------------------------

    def on_sigint(self, frame: FrameType | None) -> None:
        """Called by the SIGINT handler (on the owner thread): raise, defer or ignore."""
        state = self.state
        if state is IDLE or state is PENDING:
            return
        if state is SENDING:
            self.state = PENDING
            return
        if frame is not None and frame.f_code in _NEVER_RAISE_IN:
            return
        if self.on_interrupt is not None and self.on_interrupt(frame):
            return
        raise KeyboardInterrupt

    def interrupt(self) -> None:
        """Interrupt the owner from another thread (interrupt_mode "message")."""
        signal.pthread_kill(self.ident, signal.SIGINT)


class ThreadGate(Gate):
    """The gate of a thread other than the main one, interrupted from another thread."""

    __slots__ = ("_lock",)

    def __init__(self, ident: int | None = None) -> None:
        super().__init__(ident)
        self._lock = threading.Lock()

    def enter(self, on_interrupt: OnInterrupt | None) -> tuple[str, OnInterrupt | None]:
        with self._lock:
            saved = (self.state, self.on_interrupt)
            self.entries += 1
            self.on_interrupt = on_interrupt
            self.state = ARMED
            return saved

    def leave(self, saved: tuple[str, OnInterrupt | None]) -> None:
        while True:
            try:
                with self._lock:
                    if self.state is POSTED:
                        _withdraw(self.ident)
                    self.state = ARMED if saved[0] is not IDLE else IDLE
                    self.on_interrupt = saved[1]
                    return
            except KeyboardInterrupt:
                # The posted exception fired here; it fires once, so the retry completes.
                continue

    def begin_send(self) -> None:
        with self._lock:
            if self.state is ARMED:
                self.state = SENDING
            elif self.state is POSTED:
                _withdraw(self.ident)
                self.state = PENDING

    def end_send(self) -> None:
        with self._lock:
            state = self.state
            if state is SENDING or state is PENDING:
                self.state = ARMED
        if state is PENDING:
            raise KeyboardInterrupt

    def settle(self) -> None:
        """Back to IDLE between requests, whatever an interrupt did to the hook's exit."""
        self.leave((IDLE, None))

    def interrupt(self) -> None:
        with self._lock:
            if self.state is ARMED:
                _post(self.ident)
                self.state = POSTED
            elif self.state is SENDING:
                self.state = PENDING


class Guard:
    """``with gate(on_interrupt):`` around a hook.

    A class, not a generator, so that the SIGINT handler can recognise ``__exit__``
    by its code object and never raise there.
    """

    __slots__ = ("_gate", "_on_interrupt", "_saved")

    def __init__(self, gate: Gate, on_interrupt: OnInterrupt | None) -> None:
        self._gate = gate
        self._on_interrupt = on_interrupt
        self._saved: tuple[str, OnInterrupt | None] = (IDLE, None)

    def __enter__(self) -> None:
        self._saved = self._gate.enter(self._on_interrupt)

    def __exit__(self, *exc_info: object) -> None:
        self._gate.leave(self._saved)


_NEVER_RAISE_IN = frozenset({Gate.leave.__code__, Guard.__exit__.__code__})


def _post(ident: int) -> None:
    import ctypes  # only kernels that interrupt a subshell pay for it

    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(KeyboardInterrupt)
    )


def _withdraw(ident: int) -> None:
    import ctypes

    null: Any = None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), null)
