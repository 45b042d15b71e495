"""Micro-benchmarks behind the engine's optimisations: each one timed both ways, side by side.

python -m bench.micro            # prints markdown tables (docs/benchmarks.md quotes them)
python -m bench.micro --smoke    # a few iterations: keeps the command working in CI

Each row times the way kernelkit does a thing now against the plainer way it did it
(or the way most code does it), in this process, as a median over repeated batches.
These are not kernel figures: `python -m bench` measures whole kernels.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import zmq

from kernelkit import literals
from kernelkit.server import send_frames
from kernelkit.shell import recv_frames
from kernelkit.wire import Session, utcnow_iso
from kernelkit.wire import dumps as wire_dumps

BATCHES = 7
SCALE = 1.0  # --smoke makes every loop shorter


def per_call(fn: Callable[[], object], n: int) -> float:
    """Median seconds per call over BATCHES batches of n calls."""
    times = []
    n = max(1, int(n * SCALE))
    for _ in range(BATCHES):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t0) / n)
    return statistics.median(times)


def frames_for_one_message() -> list[bytes]:
    session = Session(os.urandom(16).hex().encode())
    return session.serialize("stream", {"name": "stdout", "text": "hi"}, None, None, [b"stream"])


def sending() -> tuple[float, float]:
    """pyzmq's send_multipart against the backend Socket.send kernelkit calls per frame."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.PUB)  # no subscriber: what is left is the cost of the call itself
    sock.bind("inproc://micro")
    frames = frames_for_one_message()
    plain = per_call(lambda: sock.send_multipart(frames), 20_000)
    ours = per_call(lambda: send_frames(sock, frames), 20_000)
    sock.close()
    ctx.term()
    return plain, ours


def parent_header() -> tuple[float, float]:
    """Re-encoding the parent header against sending the received header frame as it is."""
    session = Session(b"key")
    request = Session(b"key").serialize("execute_request", {"code": "hi"})  # a client's
    msg = session.deserialize(request)
    content = {"name": "stdout", "text": "hi"}
    assert msg.raw_header is not None
    raw = msg.raw_header
    plain = per_call(lambda: session.serialize("stream", content, msg.header), 20_000)
    ours = per_call(lambda: session.serialize("stream", content, raw), 20_000)
    return plain, ours


def signing() -> tuple[float, float]:
    """A new HMAC per message updated part by part, against copying a keyed one, one update."""
    key = os.urandom(16).hex().encode()
    parts = frames_for_one_message()[-4:]
    keyed = hmac.new(key, digestmod=hashlib.sha256)

    def plain() -> bytes:
        h = hmac.new(key, digestmod=hashlib.sha256)
        for p in parts:
            h.update(p)
        return h.hexdigest().encode()

    def ours() -> bytes:
        h = keyed.copy()
        h.update(b"".join(parts))
        return h.hexdigest().encode()

    assert plain() == ours()
    return per_call(plain, 50_000), per_call(ours, 50_000)


def signing_big() -> tuple[float, float]:
    """A 10 MB content: one update of the joined parts against an update per part."""
    key = os.urandom(16).hex().encode()
    parts = [*frames_for_one_message()[-4:-1], b"x" * (10 << 20)]
    keyed = hmac.new(key, digestmod=hashlib.sha256)

    def joined() -> bytes:
        h = keyed.copy()
        h.update(b"".join(parts))
        return h.hexdigest().encode()

    signer = Session(key).signer

    def ours() -> bytes:
        return signer.sign(parts)

    assert joined() == ours()
    return per_call(joined, 40), per_call(ours, 40)


def encoding() -> tuple[float, float]:
    """json.dumps with options (a new encoder each call) against one encoder kept for good."""
    header = frames_for_one_message()[-4]
    obj = json.loads(header)
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    def plain() -> str:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    return per_call(plain, 50_000), per_call(lambda: encoder.encode(obj), 50_000)


def _big_cell() -> str:
    """10 MB of code-like text: short lines, quotes and a few non-ASCII characters to escape."""
    line = 'total = compute("alpha", 42)  # the \\"answer\\"\tand a \u00e9\n'
    return line * (10_000_000 // len(line))


def parsing_big() -> tuple[float, float]:
    """A 10 MB execute_request content: json.loads of the frame vs literals.loads (strict
    decoding, and the walk that keeps the code's JSON text), then its drop."""
    frame = wire_dumps({"code": _big_cell(), "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": True, "stop_on_error": True})

    def ours() -> object:
        got = literals.loads(frame)
        assert got is not None
        literals.KEPT.drop(got[1])
        return got[0]

    assert ours() == json.loads(frame)
    return per_call(lambda: json.loads(frame), 10), per_call(ours, 10)


def encoding_big() -> tuple[float, float]:
    """The execute_input of a 10 MB cell: JSON-encode the code again vs splice its kept text."""
    frame = wire_dumps({"code": _big_cell(), "silent": False})
    got = literals.loads(frame)
    assert got is not None
    code = got[0]["code"]
    content = {"code": code, "execution_count": 1}
    spliced = literals.KEPT.encode(content, wire_dumps)
    assert spliced is not None and json.loads(spliced) == content
    result = per_call(lambda: wire_dumps(content), 10), per_call(
        lambda: literals.KEPT.encode(content, wire_dumps), 10)
    literals.KEPT.drop(got[1])
    return result


def bridge_line_big() -> tuple[float, float]:
    """Bridge host, a backend's 10 MB stream line to IOPub content: decode, json.loads and
    encode again vs Codec.parse keeping the text and the splice."""
    from kernelkit.bridge.jsonrpc import Codec, Notification

    text = json.loads(wire_dumps({"t": _big_cell()}))["t"]
    line = bytearray(json.dumps({"jsonrpc": "2.0", "method": "stream", "params": {
        "name": "stdout", "text": text, "request": 1}}, ensure_ascii=False).encode() + b"\n")

    def before() -> bytes:
        obj = json.loads(str(memoryview(line)[:-1], "utf-8", "replace"))
        return wire_dumps({"name": "stdout", "text": obj["params"]["text"]})

    def ours() -> bytes:
        event = Codec.parse(line, keep=True)
        assert isinstance(event, Notification)
        out = literals.KEPT.encode({"name": "stdout", "text": event.params["text"]},
                                   wire_dumps)
        literals.KEPT.drop(event.kept)
        assert out is not None
        return out

    assert json.loads(before()) == json.loads(ours())
    return per_call(before, 10), per_call(ours, 10)


def timestamp() -> tuple[float, float]:
    """A header's date: datetime formatted whole each time against the second kept formatted."""
    from datetime import datetime, timezone

    def plain() -> str:
        return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")

    return per_call(plain, 50_000), per_call(utcnow_iso, 50_000)


def receiving() -> tuple[float, float]:
    """A 7-frame request: recv_multipart against the backend's recv and RCVMORE per frame."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    rx, tx = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    rx.rcvhwm = tx.sndhwm = 0  # every message of a batch queued at once
    rx.bind("inproc://micro-recv")
    tx.connect("inproc://micro-recv")
    frames = frames_for_one_message()
    n = max(1, int(20_000 * SCALE))
    times: dict[str, list[float]] = {"plain": [], "ours": []}
    for _ in range(BATCHES):
        for name, recv in (("plain", rx.recv_multipart), ("ours", lambda: recv_frames(rx))):
            for _ in range(n):
                send_frames(tx, frames)  # queued first: the loop below times the receive alone
            t0 = time.perf_counter()
            for _ in range(n):
                recv()
            times[name].append((time.perf_counter() - t0) / n)
    rx.close()
    tx.close()
    ctx.term()
    return statistics.median(times["plain"]), statistics.median(times["ours"])


# -- the Deno bridge (issue 16) -------------------------------------------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIG = 10_000_000  # a 10 MB line, as the benchmark's output request and its stream output


def _deno() -> str | None:
    deno = shutil.which("deno") or os.path.join(os.path.dirname(sys.executable), "deno")
    return deno if os.path.exists(deno) else None


def sdk_rows() -> list[tuple[str, float, float]]:
    """The JS SDK's own rows, timed by Deno (bench/micro_sdk.mjs)."""
    deno = _deno()
    if deno is None:
        return []
    done = subprocess.run(
        [deno, "run", "--allow-write=/dev/null", os.path.join(ROOT, "bench", "micro_sdk.mjs"),
         str(SCALE)], capture_output=True, text=True, check=True)
    return [(what, before, now) for what, before, now in json.loads(done.stdout)["rows"]]


def stdin_hop() -> tuple[float, float] | None:
    """One small request to a Deno backend on a pipe and its answer back: the JS SDK reading
    stdin asynchronously (through the event loop) against serve({ syncStdin: true })."""
    deno = _deno()
    if deno is None:
        return None
    backend = os.path.join(ROOT, "tests", "support", "conformance_backend.mjs")

    def median_hop(extra: list[str]) -> float:
        proc = subprocess.Popen(
            [deno, "run", "--allow-env=CONFORMANCE_SUBSHELLS", backend, *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
            env={**os.environ, "CONFORMANCE_SUBSHELLS": "0"})
        assert proc.stdin is not None and proc.stdout is not None
        in_fd, out_fd = proc.stdin.fileno(), proc.stdout.fileno()
        buf = bytearray()

        def call(rid: int, method: str, params: dict[str, object]) -> None:
            msg = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
            os.write(in_fd, json.dumps(msg).encode() + b"\n")
            while True:  # the stream line, then the result
                end = buf.find(b"\n")
                if end < 0:
                    buf.extend(os.read(out_fd, 1 << 16))
                    continue
                line = bytes(buf[:end])
                del buf[: end + 1]
                if b'"result"' in line:
                    return

        call(0, "initialize", {"protocol_version": "1.2", "kernelkit_version": "0"})
        params: dict[str, object] = {"code": "hi", "silent": False, "store_history": True,
                                     "user_expressions": {}, "allow_stdin": False,
                                     "execution_count": 1, "cell_id": None}
        rid = 0

        def hop() -> None:
            nonlocal rid
            rid += 1
            call(rid, "execute", params)

        per_call(hop, 500)  # warm-up: V8 optimizes the SDK's hot paths
        result = per_call(hop, 2000)
        proc.stdin.close()
        proc.wait()
        return result

    return median_hop([]), median_hop(["sync"])


def _pipe_reader(size: int) -> str:
    """A child that reads ``size`` bytes of its stdin in 1 MiB reads, then says ok."""
    return ("import os, sys\n"
            f"left = {size}\n"
            "while left > 0:\n"
            "    left -= len(os.read(0, 1 << 20))\n"
            "os.write(1, b'ok')\n")


def request_write() -> tuple[float, float]:
    """The host writing a 10 MB request line to a reading backend: one write() into the
    default 64 KiB pipe, against 1 MiB os.write pieces into a pipe of 1 MiB (process.py)."""
    from kernelkit.bridge import process

    line = b"x" * BIG + b"\n"

    def timed(grow: bool) -> float:
        proc = subprocess.Popen([sys.executable, "-c", _pipe_reader(len(line))],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        assert proc.stdin is not None and proc.stdout is not None
        fd = proc.stdin.fileno()
        if grow:
            process._grow_pipe(fd)
        t0 = time.perf_counter()
        if grow:
            view, written = memoryview(line), 0
            while written < len(line):
                written += os.write(fd, view[written: written + process.WRITE_SIZE])
        else:
            proc.stdin.write(line)
        proc.stdout.read(2)
        elapsed = time.perf_counter() - t0
        proc.wait()
        return elapsed

    runs = max(1, int(15 * SCALE))
    return (statistics.median(timed(False) for _ in range(runs)),
            statistics.median(timed(True) for _ in range(runs)))


def output_read() -> tuple[float, float]:
    """The host reading a 10 MB output line (with the reply right behind it) from a backend:
    64 KiB reads from a 64 KiB pipe, the line copied out of the buffer (before), against
    BackendProcess now: a 1 MiB pipe, 1 MiB reads within a long line, the buffer handed over."""
    from kernelkit.bridge.process import BackendProcess, Line

    writer = ("import os, sys\n"
              "sys.stdin.read(1)\n"
              f"data = b'x' * {BIG} + b'\\n' + b'{{\"id\": 1}}\\n'\n"
              "view, n = memoryview(data), 0\n"
              "while n < len(data): n += os.write(1, view[n:])\n"
              "sys.stdin.read(1)\n")

    def old_way() -> float:
        proc = subprocess.Popen([sys.executable, "-c", writer], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, bufsize=0)
        assert proc.stdin is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        proc.stdin.write(b"g")
        t0 = time.perf_counter()
        buf, lines, scanned = bytearray(), [], 0
        while len(lines) < 2:
            buf += os.read(fd, 1 << 16)
            end = buf.find(b"\n", scanned)  # (new bytes only, as the host did)
            while end >= 0:
                lines.append(bytes(buf[: end + 1]))  # as _take_line did
                del buf[: end + 1]
                end = buf.find(b"\n")
            scanned = len(buf)
        elapsed = time.perf_counter() - t0
        proc.stdin.write(b"g")
        proc.wait()
        return elapsed

    def new_way() -> float:
        backend = BackendProcess([sys.executable, "-c", writer])
        backend.send(b"g")
        t0 = time.perf_counter()
        lines = [backend.next_event(30), backend.next_event(30)]
        elapsed = time.perf_counter() - t0
        assert all(isinstance(e, Line) for e in lines), lines
        backend.send(b"g")
        backend.stop(1)
        return elapsed

    runs = max(1, int(15 * SCALE))
    return (statistics.median(old_way() for _ in range(runs)),
            statistics.median(new_way() for _ in range(runs)))


def _python_ms(code: str, env: dict[str, str], runs: int = 21) -> float:
    times = []
    for _ in range(max(1, int(runs * SCALE))):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def imports() -> list[tuple[str, float, float]]:
    """Process start plus the kernel's imports, in milliseconds, measured in fresh processes."""
    import compileall
    import shutil

    import kernelkit

    package = os.path.dirname(kernelkit.__file__)
    compileall.compile_dir(package, quiet=1)
    run_path = "import kernelkit.app, kernelkit.server, kernelkit.kernels.echo"
    with tempfile.TemporaryDirectory() as tmp:
        # A copy of kernelkit with no bytecode cache, first on the path: only its own
        # modules are compiled at each start, as from an editable install that cannot
        # write __pycache__ (PYTHONDONTWRITEBYTECODE).
        shutil.copytree(package, os.path.join(tmp, "kernelkit"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        uncached = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": tmp}
        return [
            (
                "kernel imports, kernelkit compiled from source at each start vs from its "
                "bytecode cache",
                _python_ms(run_path, uncached),
                _python_ms(run_path, dict(os.environ)),
            ),
            (
                "kernel imports with dataclasses + pathlib (as the connection module had) vs "
                "without",
                _python_ms(run_path + "; import dataclasses, pathlib", dict(os.environ)),
                _python_ms(run_path, dict(os.environ)),
            ),
            (
                "kernel imports with logging, argparse, inspect, traceback and asyncio loaded "
                "up front vs when first needed",
                _python_ms(run_path + "; import logging, argparse, inspect, traceback, asyncio",
                           dict(os.environ)),
                _python_ms(run_path, dict(os.environ)),
            ),
            (
                "kernel imports with the socket and signal modules vs their C modules, "
                "_socket and _signal (socket's enums and selectors, signal's enums)",
                _python_ms(run_path + "; import socket, signal", dict(os.environ)),
                _python_ms(run_path, dict(os.environ)),
            ),
        ]


def main(argv: list[str] | None = None) -> int:
    global BATCHES, SCALE
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.micro", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a few iterations")
    if parser.parse_args(argv).smoke:
        BATCHES, SCALE = 1, 0.01
    rows: list[tuple[str, float, float]] = [
        ("send one 7-frame message: send_multipart vs backend Socket.send per frame",
         *sending()),
        ("serialize a reply: re-encode the parent header vs reuse its received frame",
         *parent_header()),
        ("sign a message: new HMAC, update per part vs copy a keyed HMAC, one update",
         *signing()),
        ("encode a header: json.dumps with options vs a kept JSONEncoder", *encoding()),
        ("date a header: datetime.now().isoformat() vs the current second kept formatted",
         *timestamp()),
        ("receive a 7-frame request: recv_multipart vs backend recv and RCVMORE per frame",
         *receiving()),
        ("sign a 10 MB message: join the parts, one update vs an update per part",
         *signing_big()),
        ("parse a 10 MB cell's execute_request content: json.loads vs strict decoding and "
         "the walk that keeps the code's JSON text", *parsing_big()),
        ("encode a 10 MB cell's execute_input: JSON-encode the code again vs splice its "
         "kept text", *encoding_big()),
        ("bridge host, a backend's 10 MB stream line to IOPub content: decode, parse and "
         "encode again vs parse keeping the text, splice it", *bridge_line_big()),
        ("bridge host, write a 10 MB request to the backend: one write into a 64 KiB pipe vs "
         "1 MiB os.write pieces into a 1 MiB pipe", *request_write()),
        ("bridge host, read a 10 MB output line and the reply behind it: 64 KiB pipe and "
         "reads, line copied out vs 1 MiB pipe and reads, buffer handed over", *output_read()),
    ]
    rows += sdk_rows()
    hop = stdin_hop()
    if hop is not None:
        rows.append(("JS SDK on Deno, one small request on a pipe and its answer: stdin read "
                     "asynchronously vs serve({ syncStdin: true })", *hop))
    print("| what | before (µs) | now (µs) | saved (µs) |")
    print("|---|---:|---:|---:|")
    for what, before, now in rows:
        print(f"| {what} | {before * 1e6:.1f} | {now * 1e6:.1f} | {(before - now) * 1e6:.1f} |")
    print()
    print("| what | before (ms) | now (ms) | saved (ms) |")
    print("|---|---:|---:|---:|")
    for what, before_ms, now_ms in imports():
        print(f"| {what} | {before_ms:.1f} | {now_ms:.1f} | {before_ms - now_ms:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
