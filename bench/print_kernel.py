"""A kernelkit kernel that prints N characters for the cell ``N``: output throughput.

The Echo kernels' output figure carries the 10 MB in as well as out; this one is what
a Python kernel does for ``print("x" * n, end="")`` — a short request, then a long
output through ``sys.stdout`` — so that it compares like for like with xeus-python and
async-kernel. Benchmark-only code.
"""

from __future__ import annotations

from typing import Any

from kernelkit import Kernel


class PrintKernel(Kernel):
    implementation = "kernelkit-bench-print"
    implementation_version = "1.0"
    language = "print"
    language_version = "1.0"
    language_info = {"name": "print", "mimetype": "text/plain", "file_extension": ".txt"}

    def do_execute(self, code: str, silent: bool, store_history: bool = True,
                   user_expressions: Any = None, allow_stdin: bool = False) -> dict[str, Any]:
        n = int(code) if code.strip().isdigit() else 0
        if n and not silent:
            print("x" * n, end="")
        return {"status": "ok"}
