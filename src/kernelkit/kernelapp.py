"""``IPKernelApp.launch_instance(kernel_class=...)``, for kernels launched as scripts.

Many ipykernel wrapper kernels end with::

    if __name__ == "__main__":
        from ipykernel.kernelapp import IPKernelApp
        IPKernelApp.launch_instance(kernel_class=MyKernel)

and their kernelspec runs ``python -m mykernel -f {connection_file}``. Pointing
that import at ``kernelkit.kernelapp`` keeps both working unchanged (the app is
kernelkit.compat.kernelapp's light one: it imports nothing more).
"""

from __future__ import annotations

from .compat.kernelapp import IPKernelApp, launch_new_instance

__all__ = ["IPKernelApp", "launch_new_instance"]
