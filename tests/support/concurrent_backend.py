"""A Python bridge backend that opts in to subshells (bridge protocol 1.1), with the SDK.

Commands as in concurrent_backend.mjs: "sleep S", "input P", "spin" (a pure-Python loop
that an interrupt stops), "raise", "die" (exits at once); anything else is echoed with
the subshell it ran on.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src/kernelkit/sdk/python"))

from kernelkit_backend import serve


class Concurrent:
    info = {
        "implementation": "concurrent-py", "implementation_version": "1.0",
        "language_info": {"name": "commands", "mimetype": "text/plain", "file_extension": ".txt"},
        "banner": "concurrent Python test backend",
        "subshells": True,
    }

    def execute(self, request: dict[str, Any], ctx: Any) -> None:
        cmd, _, arg = request["code"].strip().partition(" ")
        if cmd == "sleep":
            print("started")
            time.sleep(float(arg))
            print(f"slept {arg}")
        elif cmd == "input":
            print("got:" + ctx.input(arg))
        elif cmd == "spin":
            print("started")
            while True:
                pass
        elif cmd == "raise":
            raise TypeError(arg or "boom")
        elif cmd == "die":
            os._exit(3)
        else:
            ctx.stream("stdout", f"{request['code']} [{request.get('subshell_id') or 'main'}]")


serve(Concurrent())
