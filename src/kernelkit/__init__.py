"""kernelkit: make a Jupyter kernel out of anything.

``from kernelkit import Kernel`` is the base class for kernels written in Python,
used exactly like ipykernel's wrapper-kernel base class.

``Kernel`` is imported on first use, not with the package (nor is ``typing``):
``kernelkit bridge`` starts its backend before it imports the engine, so that the two
start up side by side.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .kernel import Kernel, StdinNotImplementedError

__version__ = "0.1.0"
__all__ = ["Kernel", "StdinNotImplementedError", "__version__"]


def __getattr__(name: str) -> object:
    if name in ("Kernel", "StdinNotImplementedError"):
        from . import kernel

        return getattr(kernel, name)
    raise AttributeError(f"module 'kernelkit' has no attribute {name!r}")
