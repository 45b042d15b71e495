"""The Echo kernel on kernmini (PyPI), the Rust engine: its peer figure in the benchmark.

Written after kernmini's README example, to behave as kernelkit's Echo kernel does: the
cell's text comes back as stdout, and the reply carries no result. Benchmark-only code
(the kernelkit package never imports it).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from kernmini import run_kernel


class EchoShell:
    def __init__(self) -> None:
        self.stream: Callable[[str, str], Any] | None = None

    def set_stream_sender(self, sender: Callable[[str, str], Any]) -> None:
        self.stream = sender

    def kernel_info(self) -> dict[str, Any]:
        return {
            "implementation": "kernmini-echo",
            "implementation_version": "0.1",
            "banner": "Echo on kernmini",
            "language_info": {"name": "echo", "version": "0.1", "mimetype": "text/plain",
                              "file_extension": ".txt"},
        }

    async def execute(self, code: str, **kwargs: Any) -> dict[str, Any]:
        if self.stream is not None and not kwargs.get("silent"):
            self.stream("stdout", code)
        return {}


# Run on import (the kernelspec imports this module, so that its bytecode is cached).
run_kernel(sys.argv[-1], EchoShell, own_process_group=True)
