"""The two ways a kernelkit command fails, the exit codes they give, and how a kernel process ends.

Here, not in ``cli``, because the adopted ipykernel launcher (``compat.kernelapp``) ends the
same way and must not import the CLI.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


class UsageError(Exception):
    """The user named something that does not exist or cannot be done (exit code 2)."""


class StartupError(Exception):
    """The kernel was found but cannot start (exit code 1).

    ``detail`` (a traceback, say) is printed before the one-line message.
    """

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


def guarded(work: Callable[[], int]) -> int:
    """Run ``work``; a mistake the user can fix exits 2, a kernel that cannot start 1."""
    try:
        return work()
    except UsageError as exc:
        print(f"kernelkit: error: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        if exc.detail:
            print(exc.detail, file=sys.stderr)
        print(f"kernelkit: error: {exc}", file=sys.stderr)
        return 1


def exit_now(code: int) -> None:
    # The heartbeat thread sits in libzmq's proxy on a context nobody can close
    # safely from here; the kernel's own sockets are already flushed and closed.
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            continue
    os._exit(code)
