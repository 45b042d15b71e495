"""``IPKernelApp.launch_instance(kernel_class=...)``, for kernels launched as scripts.

Many ipykernel wrapper kernels end with::

    if __name__ == "__main__":
        from ipykernel.kernelapp import IPKernelApp
        IPKernelApp.launch_instance(kernel_class=MyKernel)

and their kernelspec runs ``python -m mykernel -f {connection_file}``. Pointing
that import at ``kernelkit.kernelapp`` keeps both working unchanged.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any


class IPKernelApp:
    """Only the launcher entry point of ipykernel's application, not its configuration system."""

    @classmethod
    def launch_instance(
        cls, argv: Sequence[str] | None = None, kernel_class: type | None = None, **kwargs: Any
    ) -> None:
        if kernel_class is None:
            raise TypeError("launch_instance() needs kernel_class=YourKernel")
        from .cli import main

        args = list(sys.argv[1:] if argv is None else argv)
        target = f"{kernel_class.__module__}:{kernel_class.__qualname__}"
        raise SystemExit(main(["run", target, *_connection_args(args)]))


def _connection_args(args: list[str]) -> list[str]:
    """Keep ``-f FILE``, ``--f=FILE`` or ``--connection-file FILE``; drop other ipykernel flags."""
    for i, arg in enumerate(args):
        for flag in ("-f", "--f", "--connection-file", "--existing"):
            if arg == flag and i + 1 < len(args):
                return ["-f", args[i + 1]]
            if arg.startswith(flag + "="):
                return ["-f", arg.split("=", 1)[1]]
    return []
