"""The Python SDK's backend for tests/test_sdk_conformance.py (same as conformance_backend.mjs).

"input P" asks for input, "error" raises, "wait" runs until interrupted, "open" opens a
comm to "conformance.out", sends on it and closes it, else echoes. Target "echo" answers
each message with {"echo": data} and the same buffers.
CONFORMANCE_SUBSHELLS=0 in the environment: the one-request-at-a-time mode.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src/kernelkit/sdk/python"))

from kernelkit_backend import comms, serve


class Conformance:
    info = {"implementation": "conformance", "implementation_version": "1.0",
            "language_info": {"name": "conformance", "mimetype": "text/plain",
                              "file_extension": ".txt"},
            "interrupt_mode": "message",
            "subshells": os.environ.get("CONFORMANCE_SUBSHELLS", "1") != "0"}

    def execute(self, request: dict[str, Any], ctx: Any) -> dict[str, Any] | None:
        cmd, _, arg = request["code"].partition(" ")
        if cmd == "input":
            ctx.stream("stdout", "got:" + ctx.input(arg))
        elif cmd == "error":
            raise ValueError("bad")
        elif cmd == "open":
            comm = comms.open("conformance.out", {"n": 1})
            comm.send({"n": 2}, buffers=[b"\x00\x01"])
            comm.close()
        elif cmd == "wait":
            while True:
                time.sleep(0.02)
        else:
            ctx.stream("stdout", request["code"])
        return None


def echo(comm: Any, msg: dict[str, Any]) -> None:
    comm.on_msg(lambda m: comm.send({"echo": m["data"]}, buffers=m["buffers"]))


comms.register_target("echo", echo)
serve(Conformance())
