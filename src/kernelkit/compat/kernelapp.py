"""``ipykernel.kernelapp``: ``IPKernelApp.launch_instance(kernel_class=...)`` and friends.

Wrapper kernels end with ``IPKernelApp.launch_instance(kernel_class=MyKernel)`` (or
``launch_new_instance``, or metakernel's ``run_as_main``) and their kernelspec runs
``python -m mykernel -f {connection_file}``. The app parses ``-f``, keeps other
positional arguments as ``extra_args``, builds the kernel with itself as ``parent``
and serves it.

Two flavours. The light one here imports nothing more; it is what echo_kernel and
bash_kernel get. A subclass whose body declares traitlets traits
(metakernel's ``MetaKernelApp``, with ``config_dir = Unicode()`` and
``subcommands``) is rebased by the metaclass on a traitlets ``Application``
(traits.application), so its config, aliases and subcommands
(``python -m gnuplot_kernel install --prefix P``) work as under ipykernel.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from .rebase import Rebasing

__all__ = ["IPKernelApp", "launch_new_instance"]


class _AppMeta(Rebasing):
    """Rebases an app subclass that uses traitlets (traits, aliases, subcommands)."""

    names = ("aliases", "flags", "subcommands", "classes")
    root = staticmethod(lambda: IPKernelApp)

    @staticmethod
    def flavour() -> type:
        from .traits import application

        return application()


class IPKernelApp(metaclass=_AppMeta):
    """The kernel app: parses the kernelspec's arguments, builds the kernel, serves it."""

    name = "kernelkit-ipykernel"
    _instance: IPKernelApp | None = None

    def __init__(self, **kwargs: Any) -> None:
        self.kernel_class: Any = None
        self.connection_file = ""
        self.extra_args: list[str] = []
        self.argv: list[str] = []
        self.kernel: Any = None
        self.config: dict[str, Any] = {}
        for key, value in kwargs.items():
            setattr(self, key, value)

    @classmethod
    def instance(cls, **kwargs: Any) -> Any:
        if not isinstance(cls._instance, cls):
            cls._instance = cls(**kwargs)
        return cls._instance

    @classmethod
    def launch_instance(cls, argv: Sequence[str] | None = None, **kwargs: Any) -> None:
        """Build the app, parse ``argv`` (default: the command line) and serve the kernel."""
        kernel_class = kwargs.get("kernel_class")
        if cls is IPKernelApp and _is_traitlets_class(kernel_class):
            from .traits import application

            cls = application()  # a kernel with config traits is configured from its app
        global launched
        launched = True
        app = cls.instance(**kwargs)
        app.initialize(None if argv is None else list(argv))
        app.start()

    def initialize(self, argv: Sequence[str] | None = None) -> None:
        args = list(sys.argv[1:] if argv is None else argv)
        self.argv = args
        self.connection_file, self.extra_args = _parse(args)
        self.config = {"IPKernelApp": {"connection_file": self.connection_file}}

    def start(self) -> None:
        serve_app(self)


def launch_new_instance(argv: Sequence[str] | None = None, **kwargs: Any) -> None:
    IPKernelApp.launch_instance(argv, **kwargs)


# Whether an app was launched in this process (a subcommand such as `install` is one).
launched = False
# Called instead of serving when set (compat.run.find_kernel: which class is launched).
serve_hook: Any = None


def serve_app(app: Any) -> None:
    """Build ``app.kernel_class`` with the app as its parent and serve it; never returns."""
    if serve_hook is not None:
        serve_hook(app)
        return
    from ..errors import UsageError, exit_now, guarded

    def run() -> int:
        from ..app import serve
        from .kernelbase import Kernel

        cls = app.kernel_class
        if isinstance(cls, str):
            from ..app import load_class

            cls = load_class(cls.replace(".", ":", 1) if ":" not in cls else cls)
        if not isinstance(cls, type):
            raise UsageError("IPKernelApp.launch_instance() needs kernel_class=YourKernel")
        from ..kernel import Kernel as Base

        if not issubclass(cls, Base):
            raise UsageError(
                f"{cls.__qualname__} is not a kernelkit.Kernel: it derives from ipykernel's "
                "Kernel? Run it with `kernelkit run --ipykernel-compat`, or change its import "
                "to `from kernelkit import Kernel`"
            )

        def factory() -> Any:
            kernel = cls(parent=app) if issubclass(cls, Kernel) else cls()
            app.kernel = kernel
            return kernel

        label = f"{cls.__module__}.{cls.__qualname__}"
        return serve(factory, label, app.connection_file or None)

    exit_now(guarded(run))


def _is_traitlets_class(cls: Any) -> bool:
    traitlets = sys.modules.get("traitlets")
    return traitlets is not None and isinstance(cls, type) and issubclass(cls, traitlets.HasTraits)


def _parse(args: list[str]) -> tuple[str, list[str]]:
    """(connection file, other positional arguments) from ipykernel-style arguments.

    ``-f FILE``, ``-f=FILE``, ``--f=FILE``, ``--connection-file FILE``; other flags
    (``--debug``, ``--IPKernelApp.x=y``) are ipykernel's own and are ignored.
    """
    connection_file, extra = "", []
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if name in ("-f", "--f", "--connection-file", "--existing"):
            if eq:
                connection_file = value
            elif i + 1 < len(args):
                connection_file = args[i + 1]
                i += 1
        elif not arg.startswith("-"):
            extra.append(arg)
        i += 1
    return connection_file, extra
