"""Load: a long soak, many clients at once, big messages, subscribers that cannot keep up."""

from __future__ import annotations

import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
from raw import (
    Client,
    KernelProcess,
    wait_until,
    zmq_context,
)

from kernelkit.wire import Session

from .common import (
    ECHO,
    FAULTY_BRIDGE,
    run_and_check,
)
from .report import Result

# -- 2. load ------------------------------------------------------------------------------------


# The replay guard keeps the signatures of the last REPLAY_MEMORY (65,536) messages by
# design, as jupyter_client does, so the kernel's memory grows until it is full. The dict
# holding them takes its final size at the first resize after that, when insertions and
# deletions have used up its table: about 87,400 messages. From then on memory is flat, and
# the soak measures growth from a warm-up past that point (RSS is shown all along).
SOAK_WARMUP = 100_000


def soak(n: int = 100_000, window: int = 8, warmup: int = SOAK_WARMUP,
         samples: int = 20) -> Result:
    """n executes on the Echo kernel, ``window`` in flight; memory, fds and threads sampled.

    Every reply and every IOPub message is checked: status ok, execution_count in order,
    the echoed text, busy/idle. Growth is measured from after a warm-up.
    """
    result = Result("soak", f"Soak: {n:,} executes")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kk-soak-") as tmp, zmq_context() as ctx:
        kernel = KernelProcess(ECHO, Path(tmp))
        try:
            _soak_run(result, ctx, kernel, n, window, warmup, samples)
        finally:
            kernel.kill()
    result.seconds = time.monotonic() - t0
    return result


@dataclass
class _SoakRequest:
    """One execute in flight in the soak, and what has come back for it."""

    count: int  # the execution_count its reply must carry
    code: str  # what it prints, which its stream must carry
    replied: bool = False
    statuses: int = 0  # busy and idle seen
    stream_ok: bool = False


def _soak_run(result: Result, ctx: zmq.Context[zmq.Socket[bytes]], kernel: KernelProcess,
              n: int, window: int, warmup: int, samples: int) -> None:
    session = Session(kernel.key.encode())
    shell = ctx.socket(zmq.DEALER)
    shell.linger = 0
    shell.connect(kernel.url("shell"))
    iopub = ctx.socket(zmq.SUB)
    iopub.linger = 0
    iopub.rcvhwm = 0
    iopub.setsockopt(zmq.SUBSCRIBE, b"")
    iopub.connect(kernel.url("iopub"))
    poller = zmq.Poller()
    poller.register(shell, zmq.POLLIN)
    poller.register(iopub, zmq.POLLIN)
    pending: dict[str, _SoakRequest] = {}
    problems: Counter[str] = Counter()
    counts = {"replies": 0, "iopub": 0, "done": 0}
    sent = 0
    series: list[tuple[int, int, int, int]] = []

    def send_one() -> None:
        nonlocal sent
        sent += 1
        code = f"soak {sent} " + "x" * (sent % 50)
        header = session.header("execute_request")
        frames = session.serialize(
            "execute_request",
            {"code": code, "silent": False, "store_history": True, "user_expressions": {},
             "allow_stdin": False},
            header=header,
        )
        pending[header["msg_id"]] = _SoakRequest(count=sent, code=code)
        shell.send_multipart(frames)

    def finish(msg_id: str) -> None:
        entry = pending[msg_id]
        if entry.replied and entry.statuses == 2:
            if not entry.stream_ok:
                problems["stream missing or wrong"] += 1
            del pending[msg_id]
            counts["done"] += 1

    def pump(limit: int) -> None:
        while sent < limit or pending:
            while sent < limit and len(pending) < window:
                send_one()
            events = dict(poller.poll(60_000))
            if not events:
                raise TimeoutError(f"nothing from the kernel for 60 s; {len(pending)} pending")
            if shell in events:
                while True:
                    try:
                        frames = shell.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    msg = session.deserialize(frames)
                    counts["replies"] += 1
                    mid = str(msg.parent_header.get("msg_id"))
                    entry = pending.get(mid)
                    if entry is None or entry.replied:
                        problems["reply to an unknown or answered request"] += 1
                        continue
                    entry.replied = True
                    if msg.content.get("status") != "ok":
                        problems["reply not ok"] += 1
                    if msg.content.get("execution_count") != entry.count:
                        problems["execution_count out of order"] += 1
                    finish(mid)
            if iopub in events:
                while True:
                    try:
                        frames = iopub.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    msg = session.deserialize(frames)
                    counts["iopub"] += 1
                    mid = str(msg.parent_header.get("msg_id"))
                    entry = pending.get(mid)
                    if entry is None:
                        if msg.msg_type != "iopub_welcome":
                            problems["IOPub message for an unknown request"] += 1
                        continue
                    if msg.msg_type == "status":
                        entry.statuses += 1
                        if entry.statuses == 2:
                            finish(mid)
                    elif msg.msg_type == "stream":
                        entry.stream_ok = msg.content.get("text") == entry.code

    trace = [(0, kernel.rss())]
    step = max(1, (warmup + n) // samples)
    while sent < warmup:
        pump(min(warmup, sent + step))
        trace.append((sent, kernel.rss()))
    rss0, fds0, threads0 = kernel.resources()
    series.append((0, rss0, fds0, threads0))
    started = time.monotonic()
    done_measured = 0
    while done_measured < n:
        done_measured = min(n, done_measured + step)
        pump(warmup + done_measured)
        rss, fds, threads = kernel.resources()
        series.append((done_measured, rss, fds, threads))
        trace.append((warmup + done_measured, rss))
    elapsed = time.monotonic() - started
    shell.close()
    iopub.close()
    rss1, fds1, threads1 = series[-1][1:]
    growth = 100.0 * (rss1 - rss0) / rss0
    peak = max(s[1] for s in series)
    result.check(growth < 5.0, f"RSS grew {growth:.2f} % ({rss0} -> {rss1} bytes)")
    result.check(fds1 <= fds0, f"open file descriptors grew {fds0} -> {fds1}")
    result.check(threads1 <= threads0, f"threads grew {threads0} -> {threads1}")
    result.check(not problems, f"problems: {dict(problems)}")
    result.check(counts["done"] == warmup + n,
                 f"{counts['done']} of {warmup + n} executes completed")
    result.check(kernel.alive(), "kernel died")
    result.figures[f"executes (after a warm-up of {warmup:,})"] = n
    result.figures["in flight at once"] = window
    result.figures["rate (executes/s)"] = round(n / elapsed)
    result.figures["replies checked"] = counts["replies"]
    result.figures["IOPub messages checked"] = counts["iopub"]
    result.figures["RSS after warm-up / at end / peak (MiB)"] = (
        f"{rss0 / 2**20:.1f} / {rss1 / 2**20:.1f} / {peak / 2**20:.1f}")
    result.figures["RSS growth (%)"] = round(growth, 2)
    result.figures["open fds after warm-up / at end"] = f"{fds0} / {fds1}"
    result.figures["threads after warm-up / at end"] = f"{threads0} / {threads1}"
    result.figures["problems"] = sum(problems.values())
    result.figures["RSS (MiB) after N executes, warm-up included"] = ", ".join(
        f"{k // 1000}k: {v / 2**20:.1f}" for k, v in trace)


def many_clients(clients: int = 8, each: int = 500, window: int = 4) -> Result:
    """``clients`` clients at once, each with its own shell and IOPub sockets, on one kernel.

    Each client must get exactly its own replies, and see on IOPub the busy, execute_input,
    stream and idle of each of its requests; execution counts across all clients must be
    exactly 1..N with no gaps or repeats.
    """
    result = Result("clients", f"{clients} clients at once")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kk-clients-") as tmp, zmq_context() as ctx:
        kernel = KernelProcess(ECHO, Path(tmp))
        try:
            reports: list[dict[str, Any]] = [{} for _ in range(clients)]
            ready = threading.Barrier(clients)
            threads = [
                threading.Thread(target=_one_client,
                                 args=(ctx, kernel, i, each, window, ready, reports[i]))
                for i in range(clients)
            ]
            started = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join(600)
            elapsed = time.monotonic() - started
            counts: list[int] = []
            for i, rep in enumerate(reports):
                result.check(not rep.get("problems"), f"client {i}: {rep.get('problems')}")
                result.check(rep.get("replies") == each,
                             f"client {i} got {rep.get('replies')} of {each} replies")
                counts += rep.get("counts", [])
            total = clients * each
            result.check(sorted(counts) == list(range(1, total + 1)),
                         "execution counts across clients are not exactly 1..N")
            result.check(kernel.alive(), "kernel died")
            result.figures["clients"] = clients
            result.figures["executes per client"] = each
            result.figures["replies, each on its own client"] = sum(
                r.get("replies", 0) for r in reports)
            result.figures["IOPub messages seen (all clients)"] = sum(
                r.get("iopub", 0) for r in reports)
            result.figures["rate (executes/s, all clients)"] = round(total / elapsed)
        finally:
            kernel.kill()
    result.seconds = time.monotonic() - t0
    return result


def _one_client(ctx: zmq.Context[zmq.Socket[bytes]], kernel: KernelProcess, index: int,
                each: int, window: int, ready: threading.Barrier, rep: dict[str, Any]) -> None:
    problems: list[str] = []
    rep["problems"] = problems
    try:
        session = Session(kernel.key.encode())
        shell = ctx.socket(zmq.DEALER)
        shell.linger = 0
        shell.connect(kernel.url("shell"))
        iopub = ctx.socket(zmq.SUB)
        iopub.linger = 0
        iopub.rcvhwm = 0
        iopub.setsockopt(zmq.SUBSCRIBE, b"")
        iopub.connect(kernel.url("iopub"))
        deadline = time.monotonic() + 60
        while not iopub.poll(100):  # the welcome: subscribed
            if time.monotonic() > deadline:
                problems.append("no iopub_welcome")
                return
        ready.wait(60)
        mine: dict[str, str] = {}
        seen: dict[str, list[str]] = defaultdict(list)
        idles = 0
        replies = 0
        iopub_count = 0
        counts: list[int] = []
        sent = 0
        outstanding = 0
        poller = zmq.Poller()
        poller.register(shell, zmq.POLLIN)
        poller.register(iopub, zmq.POLLIN)
        while replies < each or idles < each:
            while sent < each and outstanding < window:
                code = f"client {index} request {sent}"
                header = session.header("execute_request")
                shell.send_multipart(session.serialize(
                    "execute_request", {"code": code, "silent": False, "store_history": True,
                                        "user_expressions": {}, "allow_stdin": False},
                    header=header))
                mine[header["msg_id"]] = code
                sent += 1
                outstanding += 1
            events = dict(poller.poll(60_000))
            if not events:
                problems.append(f"stalled with {outstanding} outstanding")
                return
            if shell in events:
                while True:
                    try:
                        msg = session.deserialize(shell.recv_multipart(zmq.NOBLOCK))
                    except zmq.Again:
                        break
                    parent = str(msg.parent_header.get("msg_id"))
                    if parent not in mine:
                        problems.append(f"got someone else's reply {parent}")
                        continue
                    replies += 1
                    outstanding -= 1
                    if msg.content.get("status") != "ok":
                        problems.append(f"reply {msg.content}")
                    counts.append(int(msg.content.get("execution_count", -1)))
            if iopub in events:
                while True:
                    try:
                        msg = session.deserialize(iopub.recv_multipart(zmq.NOBLOCK))
                    except zmq.Again:
                        break
                    iopub_count += 1
                    parent = str(msg.parent_header.get("msg_id"))
                    if parent not in mine:
                        continue  # another client's output: IOPub is a broadcast
                    if msg.msg_type == "status":
                        state = str(msg.content.get("execution_state"))
                        seen[parent].append(state)
                        idles += state == "idle"
                    elif msg.msg_type == "stream":
                        seen[parent].append("stream")
                        if msg.content.get("text") != mine[parent]:
                            problems.append(f"stream {msg.content} for {mine[parent]!r}")
                    elif msg.msg_type == "execute_input":
                        seen[parent].append("execute_input")
        for msg_id in mine:
            if seen[msg_id] != ["busy", "execute_input", "stream", "idle"]:
                problems.append(f"IOPub for {mine[msg_id]!r}: {seen[msg_id]}")
                break
        rep.update(replies=replies, iopub=iopub_count, counts=counts)
        shell.close()
        iopub.close()
    except Exception as exc:
        problems.append(f"{type(exc).__name__}: {exc}")


def big_messages(size: int = 10 * 1024 * 1024) -> Result:
    """A ``size`` message in (execute code) and ``size`` of output out: Python and bridge."""
    result = Result("big", f"{size / 2**20:g} MiB in and out")
    t0 = time.monotonic()
    block = "0123456789abcdef" * 64 + "\n"
    code = (block * (size // len(block) + 1))[:size]
    with tempfile.TemporaryDirectory(prefix="kk-big-") as tmp, zmq_context() as ctx:
        for label, args in (("Python Echo", ECHO), ("bridge (Python backend)", FAULTY_BRIDGE)):
            kernel = KernelProcess(args, Path(tmp) / label.split()[0])
            client = Client(ctx, kernel, ("shell",))
            try:
                client.wait_ready()
                start = time.monotonic()
                reply = run_and_check(client, code, code, result, timeout=180)
                took = time.monotonic() - start
                result.check(reply is not None, f"{label}: no reply")
                # and the kernel is still fine afterwards
                run_and_check(client, "after", "after", result)
                result.figures[f"{label}: {size:,} bytes in, echoed out, round trip (s)"] = (
                    round(took, 2))
                result.check(kernel.alive(), f"{label}: kernel died")
            finally:
                client.close()
                kernel.kill()
    result.seconds = time.monotonic() - t0
    return result


def slow_subscribers(executes: int = 2_000, out_bytes: int = 20_000) -> Result:
    """IOPub subscribers that never read (high-water marks) or none at all: shell never blocks."""
    result = Result("slow_iopub", "Slow and absent IOPub subscribers")
    t0 = time.monotonic()
    code = "x" * out_bytes
    with tempfile.TemporaryDirectory(prefix="kk-slow-") as tmp, zmq_context() as ctx:
        # a. Nobody subscribed at all.
        kernel = KernelProcess(ECHO, Path(tmp) / "absent")
        client = Client(ctx, kernel, ("shell",), iopub=False)
        try:
            client.wait_ready()
            start = time.monotonic()
            first = client.execute("first")
            client.reply(first, timeout=30)
            first_s = time.monotonic() - start
            start = time.monotonic()
            ids = [client.execute(code) for _ in range(executes // 4)]
            for mid in ids:
                client.reply(mid, timeout=60)
            result.figures["no subscriber: first execute answered in (s)"] = round(first_s, 2)
            result.figures["no subscriber: executes answered"] = len(ids) + 1
            result.figures["no subscriber: rate (executes/s)"] = round(
                len(ids) / (time.monotonic() - start))
            result.check(first_s < 5, f"first execute without subscriber took {first_s:.1f} s")
        except TimeoutError as exc:
            result.check(False, f"no subscriber: {exc}")
        finally:
            client.close()
            kernel.kill()
        # b. Subscribers that never read: one zmq SUB and one raw TCP peer that stalls.
        kernel = KernelProcess(ECHO, Path(tmp) / "slow")
        client = Client(ctx, kernel, ("shell",), iopub=True)
        stalled = ctx.socket(zmq.SUB)
        stalled.rcvhwm = 1
        stalled.setsockopt(zmq.RCVBUF, 4096)
        stalled.setsockopt(zmq.SUBSCRIBE, b"")
        stalled.connect(kernel.url("iopub"))
        try:
            client.wait_ready()
            wait_until(lambda: client.iopub is not None and client.iopub.count >= 2, 10)
            start = time.monotonic()
            worst = 0.0
            window: list[tuple[str, float]] = []
            done = 0
            for _ in range(executes):
                window.append((client.execute(code), time.monotonic()))
                if len(window) >= 8:
                    mid, sent_at = window.pop(0)
                    client.reply(mid, timeout=60)
                    worst = max(worst, time.monotonic() - sent_at)
                    done += 1
            for mid, sent_at in window:
                client.reply(mid, timeout=60)
                worst = max(worst, time.monotonic() - sent_at)
                done += 1
            elapsed = time.monotonic() - start
            got = 0
            while stalled.poll(200):
                stalled.recv_multipart()
                got += 1
            published = 4 * executes
            result.check(done == executes, f"{done} of {executes} answered")
            result.check(got < published, "the stalled subscriber got everything (HWM not hit?)")
            result.check(kernel.alive(), "kernel died")
            result.figures["stalled subscriber: executes answered"] = done
            result.figures["stalled subscriber: IOPub published (MiB)"] = round(
                2 * executes * out_bytes / 2**20, 1)
            result.figures["stalled subscriber: messages it could take before the HWM"] = got
            result.figures["stalled subscriber: slowest reply (s)"] = round(worst, 3)
            result.figures["stalled subscriber: rate (executes/s)"] = round(executes / elapsed)
        except TimeoutError as exc:
            result.check(False, f"stalled subscriber: {exc}")
        finally:
            stalled.close(linger=0)
            client.close()
            kernel.kill()
    result.seconds = time.monotonic() - t0
    return result
