"""Attacks on what ZeroMQ does before a message is authenticated, and on the kernel's files.

Each needs nothing but the kernel's ports (no key), except where it says so: that is
what any local process has. See tests/attacks.py for how they are run and reported.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import zmq
from raw import (
    Client,
    KernelProcess,
    handshake,
    heartbeat_ok,
    serving,
    stdout_text,
    wait_until,
)

from attacks import Outcome, attack, context, kernel_args, mib, start
from kernelkit.wire import ProtocolError, Session


def _probe(client: Client, code: str, timeout: float = 30) -> tuple[float | None, str]:
    """Run ``code``; (seconds to its reply or None, the stdout it printed)."""
    t0 = time.monotonic()
    msg_id = client.execute(code)
    try:
        client.reply(msg_id, timeout=timeout)
    except TimeoutError:
        return None, ""
    took = time.monotonic() - t0
    text = ""
    if client.iopub is not None:
        with contextlib.suppress(TimeoutError):
            text = stdout_text(client.iopub.wait_idle(msg_id, 10))
    return took, text


def _secs(value: float | None) -> str:
    return "no reply" if value is None else f"{value:.2f} s"


# Sends subscriptions from a process of its own: libzmq's XSUB crashes its own process
# at exit after sending a very large subscription, which must not end the run.
_FLOOD = """
import os, sys, time, zmq
url, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = zmq.Context()
sock = ctx.socket(zmq.XSUB)
sock.sndhwm = 0
sock.connect(url)
if mode == "same":
    topics = (b"" for _ in range(n))
elif mode == "distinct":
    topics = (os.urandom(8).hex().encode() for _ in range(n))
else:
    topics = iter([b"<IDS|MSG>", b"x" * n])
for topic in topics:
    sock.send(b"\\x01" + topic)
print("sent", flush=True)
time.sleep(600)
"""


class SubscriptionFlood:
    """A process that sends subscriptions to a kernel's IOPub (no key is needed for these)."""

    def __init__(self, url: str, mode: str, n: int) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _FLOOD, url, mode, str(n)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def wait_sent(self, timeout: float = 60) -> bool:
        assert self.proc.stdout is not None
        ready = select.select([self.proc.stdout], [], [], timeout)[0]
        return bool(ready) and self.proc.stdout.readline() == b"sent\n"

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# -- 1. IOPub subscription flood -------------------------------------------------------------


@attack(1, "IOPub subscription flood: 1,000,000 duplicate subscriptions while a client works")
def subscription_flood(target: str, quick: bool) -> Outcome:
    n = 200_000 if quick else 1_000_000
    with start(target) as kernel, context() as ctx:
        client = Client(ctx, kernel)
        client.wait_ready()
        assert client.iopub is not None
        before = client.iopub.count
        flood = SubscriptionFlood(kernel.url("iopub"), "same", n)
        flood.wait_sent()
        took, text = _probe(client, "print('still here')", timeout=60)
        time.sleep(1.0)
        with client.iopub.cond:
            welcomes = sum(1 for msgs in client.iopub.by_parent.values() for m in msgs
                           if m.msg_type == "iopub_welcome")
        received = client.iopub.count - before
        hb = heartbeat_ok(ctx, kernel, 5)
        flood.close()
        client.close()
    held = took is not None and took < 10 and text == "still here\n" and welcomes < 1000
    return Outcome(f"reply in {_secs(took)}; {welcomes:,} welcomes reached the client "
                   f"({received:,} IOPub messages); heartbeat {'up' if hb else 'down'}",
                   held, {"welcomes": welcomes, "reply_s": took})


# -- 2. the welcome's topic ----------------------------------------------------------------------


@attack(2, "welcome topic chosen by a stranger: `<IDS|MSG>` and a 20 MiB topic")
def welcome_topic(target: str, quick: bool) -> Outcome:
    from jupyter_client import BlockingKernelClient

    big = (4 if quick else 20) << 20
    with start(target) as kernel, context() as ctx:
        kc = BlockingKernelClient(connection_file=str(kernel.cf))
        kc.load_connection_file()
        kc.start_channels()
        raw = ctx.socket(zmq.SUB)  # sizes of what a subscriber receives
        raw.setsockopt(zmq.SUBSCRIBE, b"")
        raw.rcvhwm = 0
        raw.connect(kernel.url("iopub"))
        try:
            kc.wait_for_ready(timeout=60)
            time.sleep(0.3)
            while raw.poll(100):
                raw.recv_multipart()
            flood = SubscriptionFlood(kernel.url("iopub"), "topics", big)
            flood.wait_sent()
            time.sleep(2.0)
            errors: list[str] = []
            msg_id = kc.execute("print(1)")
            deadline = time.monotonic() + 10
            idle = False
            while time.monotonic() < deadline and not idle:
                try:
                    msg = kc.get_iopub_msg(timeout=1)
                except (ValueError, KeyError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}"[:80])
                    continue
                except Exception:  # queue.Empty
                    continue
                idle = (msg["parent_header"].get("msg_id") == msg_id
                        and msg["msg_type"] == "status"
                        and msg["content"].get("execution_state") == "idle")
            largest = 0
            while raw.poll(200):
                largest = max(largest, sum(len(f) for f in raw.recv_multipart()))
            flood.close()
        finally:
            kc.stop_channels()
            raw.close(0)
    held = not errors and idle and largest < (1 << 20)
    return Outcome(f"jupyter_client errors: {len(errors)}"
                   + (f" (`{errors[0]}`)" if errors else "")
                   + f"; largest message to a subscriber {mib(largest)}; client saw its idle: "
                   + ("yes" if idle else "no"), held)


# -- 3. memory before authentication ------------------------------------------------------------


@attack(3, "memory before authentication: distinct subscriptions, stdin while idle, "
           "heartbeat pings never read")
def unauthenticated_memory(target: str, quick: bool) -> Outcome:
    subs_bytes = (4 if quick else 16) << 20
    stdin_bytes = (256 if quick else 2048) << 20
    with start(target) as kernel, context() as ctx:
        client = Client(ctx, kernel)
        client.wait_ready()
        base = kernel.rss()
        # (a) distinct 16-byte topics
        flood = SubscriptionFlood(kernel.url("iopub"), "distinct", subs_bytes // 17)
        flood.wait_sent()
        after_subs = base
        for _ in range(30):
            time.sleep(0.1)
            after_subs = max(after_subs, kernel.rss())
        flood.close()
        time.sleep(1.0)
        after_leave = kernel.rss()
        # (b) 1 MiB messages to stdin while the kernel is idle
        dealer = ctx.socket(zmq.DEALER)
        dealer.linger = 0
        dealer.sndhwm = 0
        dealer.connect(kernel.url("stdin"))
        chunk = os.urandom(1 << 20)
        for _ in range(stdin_bytes >> 20):
            dealer.send_multipart([b"<IDS|MSG>", b"", chunk], copy=False)
        time.sleep(3.0)
        after_stdin = kernel.rss()
        dealer.close()
        # (c) heartbeat: 1 MiB pings from a peer that never reads the echoes
        hb = ctx.socket(zmq.DEALER)
        hb.linger = 0
        hb.sndhwm = 0
        hb.rcvhwm = 1
        hb.setsockopt(zmq.RCVBUF, 4096)
        hb.connect(kernel.url("hb"))
        for _ in range(stdin_bytes >> 20):
            hb.send(chunk, copy=False)
        time.sleep(3.0)
        after_hb = kernel.rss()
        took, text = _probe(client, "print('ok')")
        hb_ok = heartbeat_ok(ctx, kernel, 5)
        hb.close()
        client.close()
    growth = {k: (v - base) for k, v in (("subs", after_subs), ("left", after_leave),
                                          ("stdin", after_stdin - after_leave + base),
                                          ("hb", after_hb - after_stdin + base))}
    figure = (f"RSS +{mib(max(0, growth['subs']))} at most while {mib(subs_bytes)} of "
              "subscriptions came in "
              f"(+{mib(max(0, growth['left']))} after the sender left), "
              f"+{mib(max(0, growth['stdin']))} after {mib(stdin_bytes)} to stdin, "
              f"+{mib(max(0, growth['hb']))} after {mib(stdin_bytes)} of pings; "
              f"then reply in {_secs(took)}, heartbeat {'up' if hb_ok else 'down'}")
    held = (growth["subs"] < (64 << 20) and max(growth["left"], growth["stdin"], growth["hb"])
            < (16 << 20) and took is not None and text == "ok\n" and hb_ok)
    return Outcome(figure, held, growth)


# -- 4. file descriptors -----------------------------------------------------------------------


def _limit_files(n: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


@attack(4, "file descriptors: 1,100 idle connections to shell, open files limited to 1,024")
def fd_exhaustion(target: str, quick: bool) -> Outcome:
    n = 1100
    module, args = kernel_args(target)
    with tempfile.TemporaryDirectory(prefix="kk-attack-") as tmp, context() as ctx:
        ctx.set(zmq.MAX_SOCKETS, n + 64)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 1024), hard))
        try:
            kernel = KernelProcess(args, Path(tmp), module=module)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        with kernel:
            client = Client(ctx, kernel)
            client.wait_ready()
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            socks = []
            for _ in range(n):
                s = ctx.socket(zmq.DEALER)
                s.linger = 0
                s.connect(kernel.url("shell"))
                socks.append(s)
            time.sleep(3.0)
            cpu = kernel.ps.cpu_percent(interval=2.0)
            took, _ = _probe(client, "print('ok')")
            hb = heartbeat_ok(ctx, kernel, 5)
            fds = kernel.ps.num_fds()
            # a new client on another channel than the one flooded
            new_ok = False
            with contextlib.suppress(Exception):
                fresh = Client(ctx, kernel, channels=("control",), iopub=False)
                msg_id = fresh.send("control", "kernel_info_request", {})
                new_ok = fresh.reply(msg_id, "control", 10).msg_type == "kernel_info_reply"
                fresh.close()
            for s in socks:
                s.close()
            client.close()
            log = kernel.stderr()
    cut = "cut a connection" in log
    held = cpu < 50 and took is not None and hb and new_ok
    return Outcome(f"idle kernel at {cpu:.0f} % CPU, {fds:,} fds; existing client: reply in "
                   f"{_secs(took)}; heartbeat {'up' if hb else 'down'}; new control client "
                   f"{'answered' if new_ok else 'not answered'}"
                   + ("; connections beyond the cap cut" if cut else ""), held)


# -- 5. taking over a client's identity --------------------------------------------------------


@attack(5, "a stranger connects with a client's routing identity (its session id, public on IOPub)")
def identity_takeover(target: str, quick: bool) -> Outcome:
    with start(target) as kernel, context() as ctx:
        client = Client(ctx, kernel)
        client.wait_ready()
        identity = client.sockets["shell"].identity
        strangers = []
        for channel in ("shell", "stdin", "control"):
            s = ctx.socket(zmq.DEALER)
            s.linger = 0
            s.identity = identity
            with handshake(s):  # connected: the takeover (if any) has happened
                s.connect(kernel.url(channel))
            strangers.append(s)
        got = 0
        for i in range(10):
            took, text = _probe(client, f"print({i})", timeout=3)
            got += took is not None and text == f"{i}\n"
        stolen = sum(1 for s in strangers if s.poll(200))
        for s in strangers:
            s.close()
        client.close()
        # A client that leaves and comes back with the same identity is served again.
        time.sleep(0.3)
        again = Client(ctx, kernel)
        for channel in ("shell", "control", "stdin"):
            again.sockets[channel].close(0)
            s = ctx.socket(zmq.DEALER)
            s.linger = 0
            s.identity = identity
            with handshake(s):
                s.connect(kernel.url(channel))
            again.sockets[channel] = s
        took, _ = _probe(again, "print('back')", timeout=10)
        again.close()
    held = got == 10 and stolen == 0 and took is not None
    return Outcome(f"client got {got} of 10 replies; the stranger received "
                   f"{'something' if stolen else 'nothing'}; the client reconnecting with its "
                   f"identity: {'answered' if took is not None else 'not answered'}", held)


# -- 6. the kernel's own messages fed back -------------------------------------------------------


@attack(6, "the kernel's own signed IOPub messages sent back to its shell for 3 s")
def own_messages(target: str, quick: bool) -> Outcome:
    with start(target) as kernel, context() as ctx:
        client = Client(ctx, kernel)
        client.wait_ready()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        with handshake(sub):
            sub.connect(kernel.url("iopub"))
        relay = ctx.socket(zmq.DEALER)
        relay.linger = 0
        with handshake(relay):
            relay.connect(kernel.url("shell"))
        _probe(client, "print('seed')")
        relayed = 0
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            if sub.poll(50):
                frames = sub.recv_multipart()
                i = frames.index(b"<IDS|MSG>")
                relay.send_multipart(frames[i:])
                relayed += 1
        took, _ = _probe(client, "print('ok')")
        sub.close(0)
        relay.close()
        client.close()
    held = relayed < 1000 and took is not None
    return Outcome(f"{relayed:,} messages came back to feed in 3 s "
                   f"({relayed / 3:,.0f}/s); then reply in {_secs(took)}", held)


# -- 7. log flooding -----------------------------------------------------------------------------


@attack(7, "log flooding: malformed messages to shell (no key)")
def log_flood(target: str, quick: bool) -> Outcome:
    n = 20_000 if quick else 100_000
    with start(target) as kernel, context() as ctx:
        client = Client(ctx, kernel)
        client.wait_ready()
        before = len(kernel.stderr().encode())
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.sndhwm = 0
        sock.connect(kernel.url("shell"))
        sent = 0
        for _ in range(n):
            frames = [b"<IDS|MSG>", b"bad", b"{}", b"{}", b"{}", b"{}"]
            sock.send_multipart(frames)
            sent += sum(len(f) for f in frames)
        took, _ = _probe(client, "print('ok')", timeout=120)
        time.sleep(2.0)
        logged = len(kernel.stderr().encode()) - before
        sock.close()
        client.close()
    ratio = logged / sent
    return Outcome(f"{n:,} messages ({mib(sent)}) made {logged:,} bytes of log "
                   f"({ratio:.2f}x what was sent)", ratio < 0.05 and took is not None)


# -- 8. a subscriber that stops reading -----------------------------------------------------------


@attack(8, "a subscriber that stops reading while cells print 30 x 10 MiB")
def stalled_subscriber(target: str, quick: bool) -> Outcome:
    n, size = (20, 10 << 20) if quick else (30, 10 << 20)
    with start(target) as kernel, context() as ctx:
        client = Client(ctx, kernel, iopub=False)
        reader = ctx.socket(zmq.SUB)  # a client that reads
        reader.setsockopt(zmq.SUBSCRIBE, b"")
        reader.rcvhwm = 0
        reader.connect(kernel.url("iopub"))
        stalled = ctx.socket(zmq.SUB)
        stalled.setsockopt(zmq.RCVBUF, 4096)
        stalled.rcvhwm = 1
        stalled.setsockopt(zmq.SUBSCRIBE, b"")
        with handshake(stalled):
            stalled.connect(kernel.url("iopub"))
        client.wait_ready()
        base = kernel.rss()
        got: dict[str, int] = {}
        stop = threading.Event()
        session = Session(kernel.key.encode())

        def read() -> None:
            while not stop.is_set():
                if reader.poll(100):
                    with contextlib.suppress(ProtocolError):
                        msg = session.deserialize(reader.recv_multipart())
                        if msg.msg_type == "stream":
                            parent = str(msg.parent_header.get("msg_id"))
                            got[parent] = got.get(parent, 0) + len(msg.content["text"])

        t = threading.Thread(target=read, daemon=True)
        t.start()
        peak = base
        answered = 0
        ids = []
        for _ in range(n):
            msg_id = client.execute(f"print('x' * {size})")
            ids.append(msg_id)
            with contextlib.suppress(TimeoutError):
                client.reply(msg_id, timeout=60)
                answered += 1
            peak = max(peak, kernel.rss())
        wait_until(lambda: all(got.get(i, 0) == size + 1 for i in ids), 10)
        end = kernel.rss()
        stop.set()
        t.join(5)
        reader.close(0)
        stalled.close(0)
        client.close()
        log = kernel.stderr()
    complete = sum(1 for i in ids if got.get(i, 0) == size + 1)
    cut = "took no output" in log
    held = answered == n and peak - base < (200 << 20) + size * 2 and complete == n
    return Outcome(f"kernel RSS +{mib(peak - base)} at peak, +{mib(max(0, end - base))} after; "
                   f"{answered} of {n} replies; the reading client got {complete} of {n} "
                   f"outputs whole" + ("; the stalled subscriber was cut" if cut else ""),
                   held, {"peak": peak - base, "log": log[-600:]})


# -- 15. ipc paths ------------------------------------------------------------------------------


@attack(15, "ipc: a second kernel started on the same socket paths")
def ipc_takeover(target: str, quick: bool) -> Outcome:
    module, args = kernel_args(target)
    with tempfile.TemporaryDirectory(prefix="kk-attack-") as tmp, context() as ctx:
        first = KernelProcess(args, Path(tmp) / "a", module=module, transport="ipc")
        with first:
            client = Client(ctx, first)
            client.wait_ready()
            second_cf = Path(tmp) / "b.json"
            second_cf.write_text(first.cf.read_text())
            argv = [sys.executable, "-m", module,
                    *(a.replace("{cf}", str(second_cf)) for a in args)]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                [str(Path(__file__).parent / "support"), os.environ.get("PYTHONPATH", "")])}
            second = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, env=env)
            try:
                code = second.wait(8)
            except subprocess.TimeoutExpired:
                code = None
                second.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    second.wait(10)
            err = second.stderr.read().decode(errors="replace") if second.stderr else ""
            if second.stderr:
                second.stderr.close()
            paths_left = all(os.path.exists(p) for p in
                             (f"{first.info['ip']}-{first.info[c + '_port']}"
                              for c in ("shell", "iopub", "stdin", "control", "hb")))
            took = None
            with contextlib.suppress(TimeoutError):  # no handshake: someone else has the paths
                fresh = Client(ctx, first)
                took, _ = _probe(fresh, "print('first')", timeout=5)
                fresh.close()
            client.close()
    said = "another process (a kernel?) is listening there" in err
    refused = code not in (None, 0)
    held = refused and took is not None and paths_left
    return Outcome(("second kernel refused to start"
                    + (", saying another process is listening there" if said
                       else f", exit {code}")
                    if refused else "second kernel started on the same paths")
                   + f"; first kernel {'still reachable' if took is not None else 'unreachable'}"
                   + ("" if paths_left else "; its socket files were deleted"), held)


# -- 16. signals and the parent -----------------------------------------------------------------


@attack(16, "SIGHUP to a kernel that wrote its own connection file")
def sighup(target: str, quick: bool) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="kk-attack-") as tmp:
        runtime = Path(tmp) / "runtime"
        env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)}
        if target == "ipykernel":
            argv = [sys.executable, "-m", "ipykernel_launcher"]
        else:
            argv = [sys.executable, "-m", "kernelkit", "run", "echo"]
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: any(runtime.glob("*.json")), 30)
            written = [p.name for p in runtime.glob("*.json")]
            with contextlib.suppress(OSError, ValueError, KeyError):  # serving, not starting
                serving(json.loads((runtime / written[0]).read_text()), 30)
            proc.send_signal(signal.SIGHUP)
            code = proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        left = [p.name for p in runtime.glob("*.json")] if runtime.exists() else []
    held = bool(written) and not left
    fate = "left behind, key and all" if left else "removed"
    return Outcome(f"exit {code}; connection file {fate}", held)


@attack(16, "the launcher (JPY_PARENT_PID, not the direct parent) dies and its pid is reused")
def parent_pid_reused(target: str, quick: bool) -> Outcome:
    last_pid = Path("/proc/sys/kernel/ns_last_pid")
    if not os.access(last_pid, os.W_OK):
        return Outcome("not tried: /proc/sys/kernel/ns_last_pid is not writable here", False)
    launcher = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    pid = launcher.pid
    module, args = kernel_args(target)
    with tempfile.TemporaryDirectory(prefix="kk-attack-") as tmp:
        kernel = KernelProcess(args, Path(tmp), module=module, env={"JPY_PARENT_PID": str(pid)})
        with kernel:
            time.sleep(1.0)
            launcher.kill()
            launcher.wait()
            # Make the next process created get the launcher's pid.
            impostor = None
            for _ in range(20):
                last_pid.write_text(str(pid - 1))
                candidate = subprocess.Popen(["sleep", "60"])
                if candidate.pid == pid:
                    impostor = candidate
                    break
                candidate.kill()
                candidate.wait()
            try:
                exited = wait_until(lambda: not kernel.alive(), 8)
            finally:
                if impostor is not None:
                    impostor.kill()
                    impostor.wait()
    if impostor is None:
        return Outcome("not tried: could not give a new process the launcher's pid", False)
    return Outcome("kernel exited" if exited else "kernel kept running for a stranger's pid",
                   exited)
