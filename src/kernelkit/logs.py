"""Logging to the kernel process's real stderr, set up only when first needed.

Importing ``logging`` costs start-up time, so nothing here runs until a kernel
or the server has something to say. Handlers write to ``sys.__stderr__`` so that
log lines never turn into notebook output while a request runs.
"""

from __future__ import annotations

import logging
import os
import sys


def _configure() -> logging.Logger:
    root = logging.getLogger("kernelkit")
    if not root.handlers:
        handler = logging.StreamHandler(sys.__stderr__)
        handler.setFormatter(logging.Formatter("[%(levelname)s %(name)s] %(message)s"))
        root.addHandler(handler)
        level = os.environ.get("KERNELKIT_LOG_LEVEL", "WARNING").upper()
        root.setLevel(getattr(logging, level, logging.WARNING))
        root.propagate = False
    return root


def logger() -> logging.Logger:
    """kernelkit's own logger."""
    return _configure()


def kernel_logger(name: str) -> logging.Logger:
    """The logger behind ``Kernel.log``, a child of kernelkit's."""
    return _configure().getChild(name)
