"""A bridge backend on the Python SDK for the hardening tests (tests/test_bridge_hardening.py).

Commands (the code of an execute): "stderr N" writes N lines to the real stderr and
returns; "late" writes one line in the cell, and after the reply more output from
a thread; "helper" starts a child process that sleeps and prints its pid; "busy"
spins; "hold-and-die" starts a sleeping child that keeps the backend's stdout and
stderr, then exits; "bigline N" writes an N-byte line of program output on stdout;
"bigerr N" an N-byte line on stderr; "bigerr-later N" that after the reply;
"bigerr-die N" that, then exits; "input P" asks
for input; "pid" prints the backend's pid; anything else is echoed. With --subshells
it opts in to subshells (bridge protocol 1.1).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src/kernelkit/sdk/python"))

from kernelkit_backend import serve

SLEEPER = [sys.executable, "-c", "import time; time.sleep(300)"]
CHUNK = 1 << 20


def _write_big(stream: Any, n: int, byte: bytes) -> None:
    """n bytes and a newline, written in pieces: the backend never holds the whole line."""
    block = byte * CHUNK
    while n > 0:
        stream.write(block[: min(n, CHUNK)])
        n -= CHUNK
    stream.write(b"\n")
    stream.flush()


class Hardening:
    info = {
        "implementation": "hardening-py", "implementation_version": "1.0",
        "language_info": {"name": "hardening", "mimetype": "text/plain",
                          "file_extension": ".txt"},
        "banner": "hardening test backend",
        "subshells": "--subshells" in sys.argv,
    }

    def execute(self, request: dict[str, Any], ctx: Any) -> None:
        cmd, _, arg = request["code"].strip().partition(" ")
        if cmd == "stderr":
            # Through Python's buffered stderr: the SDK flushes it before the reply.
            for i in range(int(arg)):
                sys.__stderr__.write(f"err {i}\n")
        elif cmd == "late":
            ctx.stream("stdout", "in-cell\n")

            def later() -> None:
                time.sleep(0.3)
                ctx.stream("stdout", "late-notification\n")  # names its request
                os.write(2, b"late-stderr\n")

            threading.Thread(target=later).start()
        elif cmd == "helper":
            child = subprocess.Popen(SLEEPER, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ctx.stream("stdout", str(child.pid))
        elif cmd == "busy":
            ctx.stream("stdout", "started")
            while True:
                pass
        elif cmd == "hold-and-die":
            child = subprocess.Popen(SLEEPER, stdin=subprocess.DEVNULL)  # keeps fds 1 and 2
            ctx.stream("stdout", f"{child.pid}\n")
            sys.__stderr__.write("dying now\n")
            sys.__stderr__.flush()
            os._exit(5)
        elif cmd == "bigline":
            _write_big(sys.__stdout__.buffer, int(arg), b"x")
        elif cmd == "bigerr":
            _write_big(sys.__stderr__.buffer, int(arg), b"e")
        elif cmd == "bigerr-later":  # after the reply: between requests, logged
            def later() -> None:
                time.sleep(0.1)
                _write_big(sys.__stderr__.buffer, int(arg), b"e")
                sys.__stderr__.write("bigerr done\n")
                sys.__stderr__.flush()

            threading.Thread(target=later).start()
        elif cmd == "bigerr-die":
            _write_big(sys.__stderr__.buffer, int(arg), b"e")
            os._exit(9)
        elif cmd == "input":
            ctx.stream("stdout", "got:" + ctx.input(arg))
        elif cmd == "pid":
            ctx.stream("stdout", str(os.getpid()))
        else:
            ctx.stream("stdout", request["code"])


serve(Hardening())
