"""``kernelkit run --ipykernel-compat``: a wrapper kernel, unchanged, on kernelkit.

Either ``-m MODULE [-- ARGS]``, which runs the module as ``python -m MODULE ARGS``
would (its ``__main__`` launches the kernel through ``ipykernel.kernelapp``, which is
kernelkit's here), or ``module:Class [-f FILE]``, which launches that class.
``find_kernel`` runs a module's ``__main__`` only as far as its launch, to learn
which class it launches (``kernelkit adopt``).
"""

from __future__ import annotations

import os
import runpy
import sys
from typing import Any

from ..app import _failure
from ..errors import StartupError, UsageError
from . import install, kernelapp


def _install() -> None:
    try:
        install()
    except RuntimeError as exc:
        raise StartupError(str(exc)) from None


def run_module(module: str, args: list[str], path: str | None = None) -> int:
    """Run ``module`` as ``python -m module args`` with ipykernel resolving to kernelkit."""
    _install()
    if path:
        sys.path.insert(0, path)
    _must_exist(module)
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit:
        raise
    except BaseException as exc:
        raise _failure(f"python -m {module} failed", exc) from None
    if kernelapp.launched:
        return 0  # its app ran a subcommand (`python -m gnuplot_kernel install`) and ended
    raise StartupError(
        f"python -m {module} ended without starting a kernel: it never called "
        "IPKernelApp.launch_instance (or launch_new_instance)"
    )


def run_class(target: str, connection_file: str | None, path: str | None = None) -> int:
    """Launch ``module:Class`` as ``IPKernelApp.launch_instance(kernel_class=Class)`` would."""
    _install()
    from ..app import load_class

    cls = load_class(target, path)
    kernelapp.IPKernelApp.launch_instance(["-f", connection_file] if connection_file else [],
                                          kernel_class=cls)
    return 1  # (launch_instance does not return)


def _must_exist(module: str) -> None:
    import importlib.util

    try:
        found = importlib.util.find_spec(module)
    except ImportError as exc:
        found, missing = None, exc.name or module
    else:
        missing = module
    if found is None:
        raise UsageError(f"no module named {missing!r}")


class _Found(BaseException):
    def __init__(self, app: Any) -> None:
        self.app = app


# What a module run to launch an ipykernel wrapper kernel names (metakernel: run_as_main).
LAUNCH_WORDS = ("ipykernel", "IPKernelApp", "launch_instance", "launch_new_instance",
                "run_as_main")


def find_kernel(module: str, args: list[str] | None = None) -> dict[str, str]:
    """Which kernel class (and app) ``python -m module`` launches, without starting it.

    A module whose main code names nothing of ipykernel's launch is not run at all: it
    may be another engine's kernel (async-kernel, say), which would start serving.
    """
    _must_launch_through_ipykernel(module)
    install()
    kernelapp.serve_hook = _found
    sys.argv = [module, *(args or [])]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except _Found as found:
        cls = found.app.kernel_class
        app = type(found.app)

        def name(obj: Any) -> str:  # a class of the module run as __main__ is the module's
            where = module if obj.__module__ == "__main__" else obj.__module__
            return f"{where}:{obj.__qualname__}"

        return {"kernel": name(cls), "app": name(app)}
    finally:
        kernelapp.serve_hook = None
    raise LookupError(f"python -m {module} does not launch a kernel through IPKernelApp")


def _must_launch_through_ipykernel(module: str) -> None:
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except ImportError as exc:
        raise LookupError(f"no module named {exc.name or module!r}") from None
    if spec is None:
        raise LookupError(f"no module named {module!r}")
    path = spec.origin
    if spec.submodule_search_locations:  # a package: python -m runs its __main__
        # (found by path: importing the package would run its __init__, and ipykernel)
        path = os.path.join(next(iter(spec.submodule_search_locations)), "__main__.py")
    try:
        with open(str(path), encoding="utf-8", errors="replace") as f:
            source = f.read()
    except OSError:
        raise LookupError(f"python -m {module} has no source to read") from None
    if not any(word in source for word in LAUNCH_WORDS):
        raise LookupError(f"python -m {module} does not launch through ipykernel's "
                          "IPKernelApp (its main code names none of it)")


def _found(app: Any) -> None:
    raise _Found(app)
