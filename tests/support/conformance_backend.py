"""The Python SDK's backend for tests/test_sdk_conformance.py (same as conformance_backend.mjs).

"input P" asks for input, "error" raises, "wait" runs until interrupted, else echoes.
CONFORMANCE_SUBSHELLS=0 in the environment: the one-request-at-a-time mode.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src/kernelkit/sdk/python"))

from kernelkit_backend import serve


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
        elif cmd == "wait":
            while True:
                time.sleep(0.02)
        else:
            ctx.stream("stdout", request["code"])
        return None


serve(Conformance())
