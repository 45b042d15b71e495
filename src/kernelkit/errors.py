"""The two ways a kernelkit command fails, and the exit codes the CLI gives them."""

from __future__ import annotations


class UsageError(Exception):
    """The user named something that does not exist or cannot be done (exit code 2)."""


class StartupError(Exception):
    """The kernel was found but cannot start (exit code 1).

    ``detail`` (a traceback, say) is printed before the one-line message.
    """

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail
