"""The interrupt gate (kernelkit.interrupts) on its own: states and forced interleavings."""

from __future__ import annotations

import random
import threading
import time

from kernelkit.interrupts import ARMED, IDLE, PENDING, SENDING, ThreadGate


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
