"""The Echo kernel as a bridge backend in Python.

Run it: `kernelkit bridge -- python examples/python/echo_backend.py`.

The backend may run in any Python environment (it needs only the standard library and
the one-file SDK), while the host runs where kernelkit is installed.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src/kernelkit/sdk/python"))

from kernelkit_backend import serve


class Echo:
    info = {
        "implementation": "Echo",
        "implementation_version": "1.0",
        "language_version": "0.1",
        "language_info": {"name": "Any text", "mimetype": "text/plain", "file_extension": ".txt"},
        "banner": "Echo kernel - as useful as a parrot",
    }

    def execute(self, request, ctx):
        if not request["silent"]:
            ctx.stream("stdout", request["code"])


if __name__ == "__main__":
    serve(Echo())
