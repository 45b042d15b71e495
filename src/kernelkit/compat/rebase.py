"""Rebasing on traitlets when — and only when — a class body declares traits.

metakernel declares config traits on its kernel class and its app class
(``plot_settings = Dict(...).tag(config=True)``, ``config_dir = Unicode()``); those
need traitlets' ``HasTraits`` machinery in their bases. kernelkit's stand-ins for
ipykernel's ``Kernel`` and ``IPKernelApp`` are plain classes, so that kernels which
never use traitlets never import it; their metaclass rebases a subclass that does on
the traitlets flavour (traits.py) as the class is made.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def declares_traits(ns: dict[str, Any], names: tuple[str, ...] = ()) -> bool:
    """Whether a class body holds traitlets traits (or any of ``names``, with traitlets in use)."""
    traitlets = sys.modules.get("traitlets")
    if traitlets is None:
        return False
    trait_type = getattr(traitlets, "TraitType", None)
    if trait_type is not None and any(isinstance(v, trait_type) for v in ns.values()):
        return True
    return any(n in ns for n in names)


class Rebasing(type):
    """The metaclass of a plain stand-in whose subclasses may need traitlets."""

    traitlets_flavour: bool = False  # True on the metaclass of the traitlets flavour
    names: tuple[str, ...] = ()  # class attributes that mean "this uses traitlets" too
    root: Callable[[], type]  # the plain stand-in
    flavour: Callable[[], type]  # its traitlets flavour (imports traitlets)

    def __new__(mcls, name: str, bases: tuple[type, ...], ns: dict[str, Any],
                **kwargs: Any) -> Any:
        if mcls.traitlets_flavour or not declares_traits(ns, mcls.names):
            return super().__new__(mcls, name, bases, ns, **kwargs)
        root, flavour = mcls.root(), mcls.flavour()
        bases = tuple(flavour if b is root else b for b in bases)
        if flavour not in bases:
            bases = (*bases, flavour)
        return type(flavour)(name, bases, ns, **kwargs)
