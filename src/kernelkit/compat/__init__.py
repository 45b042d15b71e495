"""ipykernel's modules, for wrapper kernels run unchanged (``kernelkit run --ipykernel-compat``).

A wrapper kernel imports ``ipykernel.kernelbase.Kernel`` and
``ipykernel.kernelapp.IPKernelApp``; ``install()`` makes those imports (and
``ipykernel.comm``) resolve to kernelkit's compatible implementations here, so the
kernel's own code runs as written. It is called only in that mode: a normal kernel
process never imports this package.

What is not replaced still comes from the installed ipykernel, if there is one: the
``ipykernel`` package here is a stand-in whose ``__path__`` is the real package's, so
``ipykernel._version`` or a helper module loads from it (and whatever it imports of
``ipykernel.kernelbase`` is ours).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

# ipykernel's module → kernelkit's stand-in for it.
MODULES: dict[str, str] = {
    "ipykernel.kernelbase": "kernelkit.compat.kernelbase",
    "ipykernel.kernelapp": "kernelkit.compat.kernelapp",
    "ipykernel.comm": "kernelkit.compat.comm",
    "ipykernel.comm.comm": "kernelkit.compat.comm",
    "ipykernel.comm.manager": "kernelkit.compat.comm",
}


def install() -> None:
    """Make ipykernel's modules (MODULES) resolve to kernelkit's; idempotent."""
    package = sys.modules.get("ipykernel")
    if getattr(package, "__kernelkit__", False):
        return
    if package is not None:
        raise RuntimeError("ipykernel was imported before kernelkit's compatibility layer")
    stand_in = types.ModuleType("ipykernel", "kernelkit's stand-in for ipykernel")
    stand_in.__path__ = _real_path()
    stand_in.__kernelkit__ = True  # type: ignore[attr-defined]
    stand_in.__getattr__ = _version_attr  # type: ignore[method-assign]
    sys.modules["ipykernel"] = stand_in
    for name, target in MODULES.items():
        module = importlib.import_module(target)
        sys.modules[name] = module
        parent, _, leaf = name.rpartition(".")
        if parent == "ipykernel":
            setattr(stand_in, leaf, module)


def _real_path() -> list[str]:
    """The installed ipykernel's folder, found without running its __init__."""
    from importlib.machinery import PathFinder

    spec = PathFinder.find_spec("ipykernel")
    return list(spec.submodule_search_locations or []) if spec is not None else []


def _version_attr(name: str) -> Any:
    if name in ("__version__", "version_info", "kernel_protocol_version"):
        try:
            version = importlib.import_module("ipykernel._version")
        except ImportError:
            from ..wire import PROTOCOL_VERSION

            values = {"__version__": "7.0.0", "version_info": (7, 0, 0),
                      "kernel_protocol_version": PROTOCOL_VERSION}
            return values[name]
        return getattr(version, name)
    raise AttributeError(f"module 'ipykernel' has no attribute {name!r} under kernelkit")
