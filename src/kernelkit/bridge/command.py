"""``kernelkit bridge``: run a bridge kernel, and install one (``install -- CMD`` and
``install typescript``).

As ``check/command.py`` is for the checker: its parser, its run and its installers, which
``cli`` calls. Importing it imports the standard library and the bridge package's small
JSON-RPC codec, nothing more: a kernel's start (``fast_argv``, then ``run``) must not wait
for argparse or the engine before the backend is launched.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # (not typing's: the fast path imports as little as it can)
if TYPE_CHECKING:
    import argparse
    from typing import Any

# How long a bridge backend may take to answer 'initialize' (s): bridge/kernel.py's default,
# repeated here so that `kernelkit bridge` can start the backend before importing that module.
INIT_TIMEOUT = 20.0


def add_parser(sub: Any) -> None:
    """The ``bridge`` subcommand (``install -- CMD ARGS`` is ``kernelkit install``'s)."""
    br = sub.add_parser(
        "bridge",
        help="run a kernel whose logic is a backend program (-- CMD ARGS)",
    )
    br.add_argument("-f", "--connection-file", metavar="FILE", help="connection file")
    br.add_argument(
        "--init-timeout",
        type=float,
        default=INIT_TIMEOUT,
        metavar="S",
        help=f"seconds the backend may take to answer 'initialize' (default {INIT_TIMEOUT:g})",
    )


def fast_argv(argv: list[str]) -> tuple[str, list[str]] | None:
    """``bridge -f FILE -- CMD ARGS``, what every bridge kernelspec launches, without argparse.

    The backend is started as soon as this is known (``run``), so that it starts up
    while the host imports its engine.
    """
    if (
        len(argv) >= 5
        and argv[0] == "bridge"
        and argv[1] in ("-f", "--connection-file")
        and argv[3] == "--"
    ):
        return argv[2], argv[4:]
    return None


def run(connection_file: str | None, command: list[str], init_timeout: float) -> int:
    from ..errors import StartupError, UsageError

    if not command:
        raise UsageError("bridge needs a backend command: kernelkit bridge [-f FILE] -- CMD ARGS")
    # The backend starts first, then the host imports its engine (pyzmq among it) while the
    # backend starts up: a Deno backend takes about as long as those imports.
    from .process import BackendProcess, launch

    early: BackendProcess | None
    try:
        early = launch(list(command))
    except OSError:
        early = None  # BridgeKernel tries again, and says why it cannot
    from ..app import serve
    from .kernel import BackendStartError, BridgeKernel

    def factory() -> BridgeKernel:
        nonlocal early
        launched, early = early, None
        try:
            return BridgeKernel(command, init_timeout=init_timeout, backend=launched)
        except BackendStartError as exc:
            raise StartupError(str(exc)) from None
        except BaseException:
            if launched is not None:
                launched.stop(0.2)  # (idempotent: _start_backend may have stopped it)
            raise

    return serve(factory, f"bridge to {' '.join(command)}", connection_file)


def run_args(args: argparse.Namespace) -> int:
    """``kernelkit bridge`` through the full parser (the CLI's table calls it)."""
    from ..errors import exit_now

    exit_now(run(args.connection_file, args.backend_command, args.init_timeout))
    return 0  # (not reached: exit_now exits)


def install(args: argparse.Namespace) -> int:
    """A kernelspec for ``-- CMD ARGS``, written only once the backend has answered."""
    import shutil

    from ..errors import StartupError, UsageError
    from ..kernelspec import bridge_spec, for_gateway, probe_with_env, target_dir
    from ..kernelspec import install as install_spec
    from .kernel import BackendStartError, BridgeKernel

    if args.kernel:
        raise UsageError("give either KERNEL or -- CMD ARGS, not both")
    if not args.name:
        raise UsageError("installing a bridge kernel needs --name")
    command = list(args.backend_command)
    probe_with_env(args.env)
    exe = shutil.which(command[0])
    if exe is None:
        raise UsageError(f"backend command {command[0]!r} not found")
    # Kernels start in the notebook's folder: make the command independent of this one.
    command = [os.path.abspath(exe)] + [
        os.path.abspath(a) if not a.startswith("-") and os.path.exists(a) else a
        for a in command[1:]
    ]
    try:
        probe = BridgeKernel(command)
    except BackendStartError as exc:
        raise StartupError(
            f"the backend does not start, so no kernelspec was written: {exc}"
        ) from None
    probe.do_shutdown(False)
    spec = bridge_spec(command, args.display_name or probe.implementation, probe.language,
                       args.interrupt_mode)
    if args.env:
        spec["env"] = dict(args.env)
    spec = for_gateway(args, spec)
    dest = install_spec(spec, args.name, target_dir(args.user, args.sys_prefix, args.prefix))
    print(f"installed kernelspec {args.name.lower()} in {dest}")
    return 0


def install_typescript(args: argparse.Namespace) -> int:
    """The TypeScript kernel on Deno: fetch its parsers once (npm), then a bridge kernelspec.

    Everything after ``typescript`` that is not kernelkit's is a Deno flag for the cells
    (``--allow-net``, ``--allow-read=.``, ``--unstable-kv``, ``--config=deno.json``…).
    A kernelspec for this user keeps the fetched files in the user's cache; one for an
    environment or prefix keeps them under it, where every user of it can read them.
    """
    import subprocess
    from pathlib import Path

    from .. import typescript
    from ..errors import StartupError, UsageError

    deno = find_deno(args.deno)
    for flag in args.deno_flags:
        if not flag.startswith("-"):
            raise UsageError(f"install typescript: {flag!r} is not a Deno flag (they start with -)")
    prefix = sys.prefix if args.sys_prefix else args.prefix
    cache = Path(prefix) / "share" / "kernelkit" if prefix else None
    print("preparing the TypeScript kernel (its parsers come from the npm registry once)...",
          file=sys.stderr)
    try:
        typescript.prepare(deno, cache)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        raise StartupError(f"could not prepare the TypeScript kernel: {exc}") from None
    args.backend_command = typescript.backend_argv(deno, list(args.deno_flags), cache)
    args.kernel = None
    remote = " (remote)" if args.remote_launcher else ""
    args.name = args.name or "kernelkit-typescript" + ("-remote" if remote else "")
    args.display_name = args.display_name or "TypeScript (Deno, kernelkit)" + remote
    return install(args)


def find_deno(explicit: str | None) -> str:
    """The deno to run: the one named, else the one beside this Python (PyPI's ``deno``),
    else the first on PATH."""
    import shutil
    from pathlib import Path

    from ..errors import UsageError

    if explicit:
        found = shutil.which(explicit)
        if found is None:
            raise UsageError(f"--deno {explicit!r}: no such program")
        return os.path.abspath(found)
    beside = Path(sys.executable).parent / "deno"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("deno")
    if found is None:
        raise UsageError("the TypeScript kernel needs Deno: pip install deno, or put deno on "
                         "PATH, or give --deno PATH")
    return os.path.abspath(found)
