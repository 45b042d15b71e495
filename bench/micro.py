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
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import zmq

from kernelkit.server import send_frames
from kernelkit.wire import Session

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
        ("sign a 10 MB message: join the parts, one update vs an update per part",
         *signing_big()),
    ]
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
