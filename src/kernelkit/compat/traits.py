"""The traitlets flavours of the kernel and its app, built only for kernels that use traitlets."""

from __future__ import annotations

import functools
from typing import Any

from traitlets import Any as AnyTrait
from traitlets import Unicode
from traitlets.config import Application, LoggingConfigurable


@functools.cache
def configurable_kernel() -> type:
    """compat.Kernel and LoggingConfigurable in one class: config traits work on it."""
    from traitlets.traitlets import MetaHasTraits

    from .kernelbase import Kernel, _KernelMeta

    class _TraitsMeta(_KernelMeta, MetaHasTraits):
        traitlets_flavour = True

    class ConfigurableKernel(Kernel, LoggingConfigurable, metaclass=_TraitsMeta):
        """Kernel whose class may declare config traits, configured from its app."""

        def __init__(self, **kwargs: Any) -> None:
            parent = kwargs.get("parent")
            traits = {k: kwargs.pop(k) for k in list(kwargs) if k != "parent" and self.has_trait(k)}
            LoggingConfigurable.__init__(
                self, parent=parent if isinstance(parent, LoggingConfigurable) else None,
                **traits)
            Kernel.__init__(self, **kwargs)

    return ConfigurableKernel


@functools.cache
def application() -> type:
    """IPKernelApp as a traitlets Application: subclasses add config, aliases, subcommands."""
    from .kernelapp import IPKernelApp as Light
    from .kernelapp import _AppMeta, serve_app

    class _AppTraitsMeta(_AppMeta, type(Application)):  # type: ignore[misc]
        traitlets_flavour = True

    class IPKernelApp(Light, Application, metaclass=_AppTraitsMeta):  # type: ignore[misc,metaclass]
        name = "kernelkit-ipykernel"
        description = "A wrapper kernel run unchanged on kernelkit"
        connection_file = Unicode("", help="the connection file").tag(config=True)
        kernel_class = AnyTrait(None, help="the kernel class to run").tag(config=True)
        kernel = AnyTrait(None)
        aliases = {"f": "IPKernelApp.connection_file",
                   "connection-file": "IPKernelApp.connection_file",
                   "log-level": "Application.log_level"}

        def __init__(self, **kwargs: Any) -> None:
            Application.__init__(self, **kwargs)

        def initialize(self, argv: Any = None) -> None:
            Application.initialize(self, argv)
            if self.subapp is not None:
                return
            paths = getattr(self, "config_file_paths", None)
            if isinstance(paths, list) and self.name:
                try:
                    self.load_config_file(f"{self.name}_config", path=paths)
                except Exception as exc:
                    self.log.warning("config file of %s not loaded: %s", self.name, exc)

        def start(self) -> None:
            if self.subapp is not None:
                self.subapp.start()
                return
            serve_app(self)

    return IPKernelApp
