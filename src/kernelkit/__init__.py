"""kernelkit: make a Jupyter kernel out of anything.

``from kernelkit import Kernel`` is the base class for kernels written in Python,
used exactly like ipykernel's wrapper-kernel base class.
"""

__version__ = "0.1.0"

from .kernel import Kernel, StdinNotImplementedError

__all__ = ["Kernel", "StdinNotImplementedError", "__version__"]
