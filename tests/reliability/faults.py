"""Faults: vanishing clients, signals under load, interrupt storms, parent death, backend kills."""

from __future__ import annotations

import contextlib
import functools
import os
import random
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psutil
import zmq
from raw import (
    CHANNELS,
    Client,
    KernelProcess,
    gone,
    heartbeat_ok,
    stdout_text,
    wait_until,
    zmq_context,
)

from kernelkit.wire import Message

from .common import (
    COMMANDS,
    FAULTY_BRIDGE,
    answered_correctly,
    has_output,
    run_and_check,
    started,
)
from .report import Result

# -- 3. faults -----------------------------------------------------------------------------------


def vanishing_clients(rounds: int = 20, queued: int = 20) -> Result:
    """Clients that disappear mid-request, mid-input and mid-handshake; raw TCP garbage."""
    result = Result("vanish", "Clients that vanish")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kk-vanish-") as tmp, zmq_context() as ctx:
        kernel = KernelProcess(COMMANDS, Path(tmp))
        survivor = Client(ctx, kernel)
        try:
            survivor.wait_ready()
            executes = 0
            # 1. sends a slow execute and a queue behind it, and is gone while the kernel
            #    runs the first: every reply goes to a peer that no longer exists.
            assert survivor.iopub is not None
            for i in range(rounds):
                own = zmq.Context()
                gone = Client(own, kernel, ("shell", "control"), iopub=False)
                first = gone.execute("sleep 0.1")
                for j in range(queued):
                    gone.execute(f"queued {i} {j}")
                gone.send("control", "kernel_info_request", {})
                result.check(wait_until(functools.partial(has_output, survivor, first), 30),
                             "the vanishing client's execute never started")
                for sock in gone.sockets.values():
                    sock.close(linger=5000)  # what was sent reaches the kernel; then it is gone
                own.term()
                executes += 1 + queued
            # Counts are global: once the kernel has worked through what they left, count
            # says so (another client's requests may be served in between: fair queueing).
            deadline = time.monotonic() + 120
            counted = ""
            while time.monotonic() < deadline:
                msg_id = survivor.execute("count")
                survivor.reply(msg_id)
                executes += 1
                counted = stdout_text(survivor.iopub.wait_idle(msg_id))
                if counted == str(executes):
                    break
                time.sleep(0.1)
            result.check(counted == str(executes),
                         f"count says {counted} after {executes} executes")
            # 2. asked for input, then gone: an interrupt frees the kernel.
            own = zmq.Context()
            gone = Client(own, kernel, ("shell", "stdin"), iopub=False)
            asked = gone.execute("input who?", allow_stdin=True)
            request = gone.recv("stdin", 60)
            result.check(request is not None and request.msg_type == "input_request",
                         "no input_request for the client that then vanished")
            gone.close()
            own.destroy(linger=0)
            os.kill(kernel.proc.pid, signal.SIGINT)
            executes += 1
            assert survivor.iopub is not None
            survivor.iopub.wait_idle(asked)  # its error reply went nowhere; the kernel is free
            run_and_check(survivor, "after input", "after input", result)
            executes += 1
            # 3. raw TCP connections that send garbage, half a greeting, or nothing, then reset.
            garbage = 0
            for channel in CHANNELS:
                port = kernel.info[f"{channel}_port"]
                for k in range(30):
                    s = socket.create_connection(("127.0.0.1", port), timeout=5)
                    payload = [b"", os.urandom(64), b"\xff" + b"\x00" * 8 + b"\x7f",
                               b"GET / HTTP/1.1\r\n\r\n", b"\xff" * 10_000][k % 5]
                    with contextlib.suppress(OSError):
                        s.sendall(payload)
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.close()
                    garbage += 1
            run_and_check(survivor, "after garbage", "after garbage", result)
            result.check(heartbeat_ok(ctx, kernel), "heartbeat silent after raw TCP garbage")
            answered_correctly(survivor, result)
            result.check(kernel.alive(), "kernel died")
            result.figures["clients that vanished with requests queued"] = rounds
            result.figures["requests they left behind"] = rounds * (queued + 2)
            result.figures["client that vanished while asked for input"] = 1
            result.figures["raw TCP connections with garbage, reset (5 ports)"] = garbage
            result.figures["kernel still up and answering"] = kernel.alive()
        finally:
            survivor.close()
            kernel.kill()
    result.seconds = time.monotonic() - t0
    return result


def sigterm_under_load(rounds: int = 3) -> Result:
    """SIGTERM while requests are queued, output is flowing or input is awaited: exit 0, fast."""
    result = Result("sigterm", "SIGTERM under load")
    t0 = time.monotonic()
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="kk-term-") as tmp, zmq_context() as ctx:
        cases = [("queued executes", COMMANDS), ("waiting for input", COMMANDS),
                 ("bridge, backend busy", FAULTY_BRIDGE)]
        for r in range(rounds):
            for label, args in cases:
                kernel = KernelProcess(args, Path(tmp) / f"{r}-{len(times)}")
                client = Client(ctx, kernel, ("shell", "stdin"))
                try:
                    client.wait_ready()
                    backend: psutil.Process | None = None
                    if label == "queued executes":
                        ids = [client.execute(f"print {'y' * 1000} {i}") for i in range(200)]
                        wait_until(functools.partial(has_output, client, ids[0]), 10)  # under way
                    elif label == "waiting for input":
                        client.execute("input ?", allow_stdin=True)
                        result.check(client.recv("stdin", 30) is not None, "no input_request")
                    else:  # the backend is stuck in a loop that never reads its stdin
                        hang = client.execute("hang")
                        result.check(wait_until(functools.partial(started, client, hang), 30),
                                     "hang did not start")
                        backend = kernel.ps.children()[0]
                    start = time.monotonic()
                    kernel.proc.send_signal(signal.SIGTERM)
                    try:
                        code = kernel.proc.wait(20)
                    except subprocess.TimeoutExpired:
                        code = None
                    took = time.monotonic() - start
                    times.append(took)
                    result.check(code == 0, f"{label}: exit code {code}")
                    err = kernel.stderr()
                    result.check("Traceback" not in err, f"{label}: traceback {err[-1500:]}")
                    if backend is not None:
                        result.check(wait_until(functools.partial(gone, backend), 10),
                                     f"{label}: backend {backend.pid} outlived the kernel")
                finally:
                    client.close()
                    kernel.kill()
    result.figures["SIGTERMs (queued executes / awaiting input / busy bridge)"] = len(times)
    result.figures["clean exits (code 0)"] = len(times) - sum(
        1 for f in result.failures if "exit code" in f)
    result.figures["slowest exit (s)"] = round(max(times), 2) if times else None
    result.seconds = time.monotonic() - t0
    return result


def interrupt_storm(signals: int = 2_000, executes: int = 300, messages: int = 1_000,
                    seed: int = 7) -> Result:
    """SIGINTs by the thousand (signal mode) and interrupt_requests (message mode) while
    executes run: every request gets exactly one reply, the kernel stays up."""
    result = Result("interrupts", "Interrupt storm")
    t0 = time.monotonic()
    rng = random.Random(seed)
    codes = ["sleep 0.01", "print hello", "loop", "count", "x"]
    with tempfile.TemporaryDirectory(prefix="kk-storm-") as tmp, zmq_context() as ctx:
        kernel = KernelProcess(COMMANDS, Path(tmp) / "signal")
        client = Client(ctx, kernel, ("shell", "control"))
        try:
            client.wait_ready()
            idle_signals = signals // 4
            for _ in range(idle_signals):
                os.kill(kernel.proc.pid, signal.SIGINT)
            run_and_check(client, "idle storm survived", "idle storm survived", result)
            busy_signals = 0
            stop = threading.Event()

            def storm() -> None:
                nonlocal busy_signals
                # At least signals - idle_signals, and on until every request is answered.
                while not stop.is_set() or busy_signals < signals - idle_signals:
                    os.kill(kernel.proc.pid, signal.SIGINT)
                    busy_signals += 1
                    time.sleep(rng.random() * 0.004)

            ids = []
            control_ids = []
            thread = threading.Thread(target=storm)
            thread.start()
            try:
                for i in range(executes):
                    ids.append(client.execute(codes[i % len(codes)], stop_on_error=False))
                    if i % 10 == 0:
                        control_ids.append(client.send("control", "kernel_info_request", {}))
                outcomes = _collect_replies(
                    client, ids, result, "signal",
                    lambda: os.kill(kernel.proc.pid, signal.SIGINT))
            finally:
                stop.set()
                thread.join(120)
            answered = _count_replies(client, control_ids, "control")
            result.check(answered == len(control_ids),
                         f"{answered} of {len(control_ids)} control requests answered in the storm")
            run_and_check(client, "after the storm", "after the storm", result)
            result.check(kernel.alive(), "kernel died in the signal storm")
            result.figures["SIGINTs while idle"] = idle_signals
            result.figures["SIGINTs while executing"] = busy_signals
            result.figures["executes in the storm, each answered exactly once"] = len(ids)
            result.figures["  of which ok / interrupted"] = (
                f"{outcomes['ok']} / {outcomes['KeyboardInterrupt']}")
            result.figures["control requests in the storm, each answered"] = answered
        finally:
            client.close()
            kernel.kill()

        kernel = KernelProcess(COMMANDS, Path(tmp) / "message")
        client = Client(ctx, kernel, ("shell", "control"))
        stormer = Client(ctx, kernel, ("control",), iopub=False)
        try:
            client.wait_ready()
            interrupt_ids: list[str] = []
            stop = threading.Event()

            def message_storm() -> None:  # its own socket: sockets stay on one thread
                while not stop.is_set() or len(interrupt_ids) < messages:
                    interrupt_ids.append(stormer.send("control", "interrupt_request", {}))
                    time.sleep(rng.random() * 0.008)

            ids = []
            thread = threading.Thread(target=message_storm)
            thread.start()
            try:
                for i in range(executes):
                    ids.append(client.execute(codes[i % len(codes)], stop_on_error=False))
                outcomes = _collect_replies(
                    client, ids, result, "message",
                    lambda: client.send("control", "interrupt_request", {}))
            finally:
                stop.set()
                thread.join(120)
            answered = _count_replies(stormer, interrupt_ids, "control", "interrupt_reply")
            result.check(answered == len(interrupt_ids),
                         f"{answered} of {len(interrupt_ids)} interrupt_requests answered")
            run_and_check(client, "after the messages", "after the messages", result)
            result.check(kernel.alive(), "kernel died in the interrupt_request storm")
            result.figures["interrupt_requests sent, each answered exactly once"] = answered
            result.figures["executes among them, each answered exactly once"] = len(ids)
            result.figures["  of which ok / interrupted "] = (
                f"{outcomes['ok']} / {outcomes['KeyboardInterrupt']}")
        finally:
            stormer.close()
            client.close()
            kernel.kill()
    result.seconds = time.monotonic() - t0
    return result


def _count_replies(client: Client, ids: list[str], channel: str,
                   msg_type: str | None = None) -> int:
    """How many of ids got exactly one reply (of msg_type, status ok) on channel."""
    answered = 0
    for mid in ids:
        try:
            reply = client.reply(mid, channel, 30)
        except TimeoutError:
            continue
        answered += reply.content.get("status") == "ok" and (
            msg_type is None or reply.msg_type == msg_type)
    client.drain(channel)
    return answered - sum(1 for mid in ids if client.replies.get(mid))


def _collect_replies(client: Client, ids: list[str], result: Result, label: str,
                     unstick: Callable[[], object], timeout: float = 60) -> Counter[str]:
    """Exactly one reply per id; a loop that outlived the storm gets another interrupt."""
    outcomes: Counter[str] = Counter()
    for mid in ids:
        deadline = time.monotonic() + timeout
        reply: Message | None = None
        while reply is None and time.monotonic() < deadline and client.kernel.alive():
            try:
                reply = client.reply(mid, timeout=1)
            except TimeoutError:
                if client.kernel.alive():
                    unstick()
        if reply is None:
            result.check(False, f"{label}: no reply to {mid} within {timeout} s "
                                f"{'' if client.kernel.alive() else '(the kernel died)'}: "
                                f"{client.kernel.stderr()[-3000:]}")
            break
        status = reply.content.get("status")
        outcomes["ok" if status == "ok" else str(reply.content.get("ename"))] += 1
        if status != "ok":
            result.check(reply.content.get("ename") == "KeyboardInterrupt",
                         f"{label}: unexpected reply {reply.content}")
    client.drain("shell")
    extra = [m for mid in ids for m in client.replies.get(mid, [])]
    result.check(not extra, f"{label}: {len(extra)} requests were answered twice")
    if client.iopub is not None:
        for mid in ids:
            try:
                states = [m.content.get("execution_state") for m in client.iopub.wait_idle(mid, 30)
                          if m.msg_type == "status"]
            except TimeoutError:
                states = []
            if states != ["busy", "idle"]:
                result.check(False, f"{label}: status sequence {states}")
                break
    return outcomes


def parent_death(rounds: int = 2) -> Result:
    """The process that launched the kernel (JPY_PARENT_PID) is killed while the kernel is
    idle, busy in a loop, or (bridge) waiting on a backend stuck in a loop: the kernel exits,
    and no backend outlives it."""
    result = Result("parent", "Parent death")
    t0 = time.monotonic()
    times: list[float] = []
    cases = [("idle", COMMANDS, None), ("busy in a loop", COMMANDS, "loop"),
             ("bridge, backend stuck", FAULTY_BRIDGE, "hang")]
    with tempfile.TemporaryDirectory(prefix="kk-parent-") as tmp, zmq_context() as ctx:
        for r in range(rounds):
            for label, args, code in cases:
                kernel = KernelProcess(args, Path(tmp) / f"{r}-{len(times)}", parent=True)
                client = Client(ctx, kernel, ("shell",))
                try:
                    client.wait_ready()
                    backends = kernel.ps.children()
                    if code is not None:
                        msg_id = client.execute(code)
                        result.check(wait_until(functools.partial(started, client, msg_id), 30),
                                     f"{label}: {code} did not start")
                    start = time.monotonic()
                    kernel.proc.kill()  # the launcher
                    kernel.proc.wait(10)
                    exited = wait_until(functools.partial(gone, kernel.ps), 20)
                    times.append(time.monotonic() - start)
                    result.check(exited, f"{label}: kernel still running 20 s after its parent "
                                         f"died: {kernel.stderr()[-1000:]}")
                    for b in backends:
                        result.check(wait_until(functools.partial(gone, b), 5),
                                     f"{label}: backend {b.pid} outlived the kernel")
                finally:
                    client.close()
                    kernel.kill()
    result.figures["parents killed (kernel idle / busy / bridge backend stuck)"] = len(times)
    result.figures["kernels that exited"] = sum(
        1 for _ in times) - sum(1 for f in result.failures if "still running" in f)
    result.figures["orphaned backends"] = sum(1 for f in result.failures if "outlived" in f)
    result.figures["slowest exit (s)"] = round(max(times), 2) if times else None
    result.seconds = time.monotonic() - t0
    return result


def bridge_sigkill(executes: int = 300, min_kills: int = 30, seed: int = 11) -> Result:
    """Kill the bridge backend with SIGKILL at random moments during runs of executes.

    Runs of ``executes`` repeat until at least ``min_kills`` kills have landed, so that
    a fast machine (a short run) still sees as many as a slow one.
    """
    result = Result("bridge_kill", "Bridge backend killed at random")
    t0 = time.monotonic()
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="kk-kill-") as tmp, zmq_context() as ctx:
        kernel = KernelProcess(FAULTY_BRIDGE, Path(tmp))
        client = Client(ctx, kernel, ("shell",))
        kills = 0
        stop = threading.Event()
        pids: set[int] = set()

        def killer() -> None:
            nonlocal kills
            while not stop.is_set():
                time.sleep(rng.random() * 0.05)
                with contextlib.suppress(psutil.Error):
                    for child in kernel.ps.children():
                        pids.add(child.pid)
                        child.send_signal(signal.SIGKILL)
                        kills += 1

        try:
            client.wait_ready()
            thread = threading.Thread(target=killer)
            thread.start()
            ids: dict[str, str] = {}
            outcomes: Counter[str] = Counter()
            try:
                while len(ids) == 0 or (kills < min_kills and time.monotonic() - t0 < 300):
                    batch: dict[str, str] = {}
                    for i in range(len(ids), len(ids) + executes):
                        code = f"echo {i}" if i % 7 else f"big {rng.randrange(1, 200_000)}"
                        batch[client.execute(code, stop_on_error=False)] = code
                    ids.update(batch)
                    for mid, code in batch.items():
                        try:
                            reply = client.reply(mid, timeout=60)
                        except TimeoutError as exc:
                            result.check(False, str(exc))
                            continue
                        status = reply.content.get("status")
                        outcomes["ok" if status == "ok" else str(reply.content.get("ename"))] += 1
                        if status == "ok" and not code.startswith("big"):
                            msgs = client.iopub.wait_idle(mid) if client.iopub else []
                            out = stdout_text(msgs)
                            result.check(out == code, f"{code!r} printed {out[:80]!r}")
            finally:
                stop.set()
                thread.join()
            client.drain("shell")
            extra = sum(len(client.replies.get(mid, [])) for mid in ids)
            result.check(extra == 0, f"{extra} executes answered twice")
            result.check(set(outcomes) <= {"ok", "BackendDied", "BackendStartError"},
                         f"unexpected outcomes {dict(outcomes)}")
            reply = run_and_check(client, "after the kills", "after the kills", result)
            result.check(reply is not None, "no reply after the kills")
            result.check(kernel.alive(), "kernel died")
            orphans = [p for p in pids if psutil.pid_exists(p) and not gone(psutil.Process(p))]
            result.check(not orphans, f"backends left running: {orphans}")
            result.check(kills >= min_kills, f"only {kills} kills landed in 300 s")
            result.figures["executes"] = len(ids)
            result.figures["SIGKILLs sent to the backend"] = kills
            result.figures["backend processes started"] = len(pids)
            result.figures["replies: exactly one per execute"] = sum(outcomes.values())
            result.figures["  ok / BackendDied / BackendStartError"] = (
                f"{outcomes['ok']} / {outcomes['BackendDied']} / {outcomes['BackendStartError']}")
        finally:
            client.close()
            kernel.kill()
    result.seconds = time.monotonic() - t0
    return result
