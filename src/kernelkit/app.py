"""Starting a kernel process: find the class, build it, bind, serve, and say why if any step fails.

A kernel that cannot start must never exit silently: every failure here becomes
a ``StartupError`` whose message names the kernel class and the cause, which
the CLI prints on stderr before exiting non-zero.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .connection import ConnectionFileError, ConnectionInfo, jupyter_runtime_dir
from .errors import StartupError, UsageError
from .kernel import Kernel
from .kernels import BUILTIN

if TYPE_CHECKING:
    from pathlib import Path

    from .streams import OutStream


def resolve(name: str) -> str:
    """A built-in kernel name or ``module:Class`` → ``module:Class``."""
    if name in BUILTIN:
        return BUILTIN[name]
    if ":" not in name:
        known = ", ".join(sorted(BUILTIN))
        raise UsageError(f"unknown kernel {name!r}: use a built-in name ({known}) or module:Class")
    module, _, attr = name.partition(":")
    if (
        not module
        or not attr
        or not all(p.isidentifier() for p in (*module.split("."), *attr.split(".")))
    ):
        raise UsageError(
            f"bad kernel {name!r}: expected module:Class, e.g. mypackage.kernel:MyKernel"
        )
    return name


def load_class(name: str, path: str | None = None) -> type[Kernel]:
    """Import the kernel class; UsageError if it does not exist, StartupError if it breaks."""
    target = resolve(name)
    module_name, _, attr = target.partition(":")
    if path:
        sys.path.insert(0, path)
    try:
        module = importlib.import_module(module_name)
    except BaseException as exc:
        missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise UsageError(f"kernel {name!r}: no module named {missing!r}") from None
        raise _failure(f"importing {module_name} for kernel {attr} failed", exc) from None
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise UsageError(f"kernel {name!r}: module {module_name!r} has no {attr!r}")
    if not isinstance(obj, type) or not issubclass(obj, Kernel):
        bases = [f"{b.__module__}.{b.__qualname__}" for b in getattr(obj, "__mro__", ())[1:]]
        hint = ""
        if any(b.startswith("ipykernel.") for b in bases):
            hint = (
                " (it derives from ipykernel's Kernel: run it unchanged with"
                " `kernelkit run --ipykernel-compat` or `kernelkit adopt`, or change its"
                " import to `from kernelkit import Kernel`)"
            )
        raise UsageError(f"kernel {name!r}: {attr} is not a kernelkit.Kernel subclass{hint}")
    return obj


def _failure(what: str, exc: BaseException) -> StartupError:
    import traceback

    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
    return StartupError(f"{what}: {type(exc).__name__}: {exc}", detail)


def launch(name: str, connection_file: str | None = None, path: str | None = None) -> int:
    """Run a kernel class by name until it is shut down; returns the process exit code."""
    cls = load_class(name, path)
    return serve(cls, f"{cls.__module__}.{cls.__qualname__}", connection_file)


def serve(factory: Callable[[], Kernel], label: str, connection_file: str | None = None) -> int:
    """Build the kernel, bind its channels and serve until shutdown."""
    # The engine is imported before the kernel is built: a bridge backend launched early
    # (bridge.command.run) starts up meanwhile, and a kernel class's own imports are not slowed.
    from . import dispatch, server, wire  # noqa: F401
    from .streams import early_streams, restore

    streams = early_streams()  # as ipykernel: output is captured before the kernel exists
    try:
        return _serve(factory, label, connection_file, streams)
    finally:
        restore(streams)


def _serve(factory: Callable[[], Kernel], label: str, connection_file: str | None,
           streams: tuple[OutStream, OutStream]) -> int:
    from .dispatch import Dispatcher, HookError
    from .server import Server
    from .wire import Session, new_key

    try:
        kernel = factory()
    except StartupError:
        raise
    except BaseException as exc:
        raise _failure(f"kernel class {label} could not be constructed", exc) from None
    if not isinstance(getattr(kernel, "execution_count", None), int):
        raise StartupError(
            f"kernel class {label} could not be constructed: its __init__ did not call "
            "super().__init__(**kwargs)"
        )

    try:
        if connection_file:
            info = ConnectionInfo.load(connection_file)
        else:
            info = ConnectionInfo(key=new_key().decode())
        session = Session(info.key.encode(), info.signature_scheme)
    except (ConnectionFileError, ValueError) as exc:
        raise StartupError(f"kernel {label}: {exc}") from None
    if not info.key:
        # Allowed, as Jupyter allows it, but nobody should run like this unawares.
        print(
            f"kernelkit: warning: the connection file {connection_file} has an empty key, "
            "so messages are not signed: any local process that can reach the kernel's "
            "ports can run code in it as this user",
            file=sys.stderr,
            flush=True,
        )
    unset_ports = connection_file is not None and 0 in info.ports()
    try:
        server = Server(info, session)
    except Exception as exc:
        raise StartupError(
            f"kernel {label}: cannot listen on {info.ip} ({info.transport}): {exc}"
        ) from None
    try:
        dispatcher = Dispatcher(kernel, server, streams)
    except HookError as exc:
        raise StartupError(f"kernel class {label} cannot be used: {exc}") from None
    kernel._dispatcher = dispatcher
    _check_kernel_info(dispatcher, label)
    if connection_file and unset_ports:
        # Ports given as 0 were chosen at bind time: the file must say which, as ipykernel does.
        try:
            info.write(connection_file)
        except OSError as exc:
            raise StartupError(f"cannot update connection file {connection_file}: {exc}") from None
    own_file = None if connection_file else _announce(info)
    dispatcher.capture_output()
    try:
        return server.run(dispatcher)
    finally:
        if own_file is not None:
            own_file.unlink(missing_ok=True)


def _check_kernel_info(dispatcher: Any, label: str) -> None:
    """Refuse to start with a kernel_info clients would reject; warn if it cannot be read yet."""
    from .kernelinfo import kernel_info_problems

    try:
        info = dispatcher.kernel_info()
    except Exception as exc:  # may work later (a property that needs the interpreter up)
        from .logs import logger

        logger().warning("kernel class %s: kernel_info raised %s: %s; requests for it "
                         "will be answered with an error", label, type(exc).__name__, exc)
        return
    problems = kernel_info_problems(info)
    if problems:
        raise StartupError(
            f"kernel class {label} cannot be used: its kernel_info is not what the "
            "messaging spec requires: " + "; ".join(problems)
        )


def _warn_if_shared(folder: Path) -> None:
    """Say so if others may replace files in the folder that holds our connection file.

    In a folder anyone can write to without the sticky bit, another user can rename our
    file away and put theirs in its place, so that a client connects to their kernel.
    """
    try:
        st = folder.stat()
    except OSError:
        return
    if st.st_mode & 0o022 and not st.st_mode & 0o1000:
        print(
            f"kernelkit: warning: {folder} can be written by other users "
            f"(mode {st.st_mode & 0o7777:04o}): they could replace the connection file; "
            f"make it private (chmod 700 {folder})",
            file=sys.stderr,
            flush=True,
        )


def _announce(info: ConnectionInfo) -> Path:
    """Write our own connection file and tell the user how to connect to it."""
    runtime = jupyter_runtime_dir()
    try:
        path = info.write_new(runtime)
    except OSError as exc:
        raise StartupError(
            f"cannot write a connection file in {runtime}: {exc.strerror or exc}"
        ) from None
    _warn_if_shared(runtime)
    shown = path.name if path.parent == runtime else str(path)
    print(
        "kernelkit: kernel started; to connect a client, use:\n"
        f"    jupyter console --existing {shown}\n"
        f"(connection file: {path})",
        flush=True,
    )
    return path
