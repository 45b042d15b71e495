"""The interrupt gate (kernelkit.interrupts) on its own: states and forced interleavings."""

from __future__ import annotations

import os
import random
import threading
import time
from types import SimpleNamespace

import pytest

from kernelkit import server
from kernelkit.interrupts import ARMED, IDLE, PENDING, SENDING, Gate, ThreadGate


def test_thread_gate_states() -> None:
    gate = ThreadGate()
    assert gate.state is IDLE
    gate.interrupt()  # idle: ignored
    assert gate.state is IDLE
    with gate():
        assert gate.state is ARMED
        gate.begin_send()
        assert gate.state is SENDING
        gate.interrupt()  # during a send: deferred
        assert gate.state is PENDING
        try:
            gate.end_send()
        except KeyboardInterrupt:
            raised = True
        else:
            raised = False
        assert raised and gate.state is ARMED
    assert gate.state is IDLE


def test_a_subshell_loop_is_interrupted_from_another_thread() -> None:
    ready, result = threading.Event(), []

    def worker() -> None:
        gate = ThreadGate()
        gates.append(gate)
        try:
            with gate():
                ready.set()
                while True:
                    pass
        except KeyboardInterrupt:
            result.append(gate.state)

    gates: list[ThreadGate] = []
    t = threading.Thread(target=worker, daemon=True)
    t.start()
    assert ready.wait(5)
    gates[0].interrupt()
    t.join(5)
    assert result == [IDLE]


def test_interrupt_storm_on_a_thread_gate_never_escapes_or_leaves_it_armed() -> None:
    """Interrupts posted at random moments around a guarded block on another thread."""
    gate_box: list[ThreadGate] = []
    stop = threading.Event()
    counts = {"rounds": 0, "interrupted": 0, "left_armed": 0, "escaped": 0}
    started = threading.Event()

    def worker() -> None:
        gate = ThreadGate()
        gate_box.append(gate)
        started.set()
        while not stop.is_set():
            try:
                counts["rounds"] += 1
                guard = gate()
                try:
                    with guard:
                        sum(range(50))
                except KeyboardInterrupt:
                    guard.__exit__(None, None, None)  # as the dispatcher does
                    counts["interrupted"] += 1
                if gate.state is not IDLE:
                    counts["left_armed"] += 1
                    gate.settle()
            except KeyboardInterrupt:
                counts["escaped"] += 1

    t = threading.Thread(target=worker, daemon=True)
    t.start()
    assert started.wait(5)
    rng = random.Random(11)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        gate_box[0].interrupt()
        time.sleep(rng.uniform(0, 0.0003))
    stop.set()
    t.join(5)
    assert counts["interrupted"] > 100, counts
    assert counts["escaped"] == 0, counts
    assert counts["left_armed"] == 0, counts


def test_a_chased_sigint_never_reaches_a_hook_that_began_after_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The control thread re-sends a SIGINT whose handler has not run lately (the chase,
    server.py). Forced here: the handler ran more than HANDLED_JUST_NOW_S before the control
    thread read the wake-up pipe (a slow host), the interrupted hook ended, and the next
    cell's hook is armed. The chase must not interrupt that cell; the same chase still
    fires while the hook it was for runs."""
    sent: list[int] = []
    monkeypatch.setattr(server.signal, "pthread_kill", lambda ident, signum: sent.append(signum))
    rx, tx = os.pipe()
    gate = Gate(threading.get_ident())
    fake = SimpleNamespace(
        _signal_rx=rx, main_gate=gate, shell=SimpleNamespace(gates=lambda: []),
        _sigint_runs=0, _sigint_last_run=0.0, _chase=0, _chase_seen=0, _chase_entry=0,
        _chase_next=0.0, _main_ident=gate.ident, stop=lambda code: None,
        _ending_signums=lambda: [])
    try:
        for next_cell in (True, False):
            saved = gate.enter(None)  # the cell that the client interrupts
            fake._sigint_runs += 1  # its handler ran (and raised) ...
            fake._sigint_last_run = time.monotonic() - 10 * server.HANDLED_JUST_NOW_S
            os.write(tx, bytes([int(server.signal.SIGINT)]))
            server.Server._signals_arrived(fake)  # ... long before this read
            assert fake._chase  # (it cannot tell that the handler ran for this signal)
            if next_cell:
                gate.leave(saved)
                saved = gate.enter(None)  # the next cell, within CHASE_INTERVAL_S
            fake._chase_next = 0.0  # its interval is over
            server.Server._chase_interrupt(fake)
            gate.leave(saved)
            assert sent == ([] if next_cell else [int(server.signal.SIGINT)]), next_cell
            fake._chase = 0
    finally:
        os.close(rx)
        os.close(tx)
