"""``ipykernel.comm``: kernelkit's comms (kernelkit.comms) under ipykernel's names."""

from __future__ import annotations

from ..comms import Comm, CommManager

__all__ = ["Comm", "CommManager"]
