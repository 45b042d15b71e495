"""The ``kernelkit`` command: run, install, list and remove kernels.

Mistakes the user can fix (an unknown kernel, a bad ``module:Class``, a prefix
that cannot be written) get one line on stderr and exit code 2; a kernel that
is found but cannot start says why and exits 1.
"""

from __future__ import annotations

import os
import sys

from . import __version__
from .errors import exit_now, guarded

TYPE_CHECKING = False  # (not typing's: the bridge's fast path imports as little as it can)
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

def _parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(prog="kernelkit", description="Make and run Jupyter kernels.")
    parser.add_argument("--version", action="version", version=f"kernelkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a kernel (what a kernelspec's argv calls)")
    run.add_argument(
        "kernel", metavar="KERNEL", nargs="?",
        help="a built-in kernel name (echo) or module:Class",
    )
    run.add_argument(
        "--ipykernel-compat", action="store_true",
        help="run an ipykernel wrapper kernel unchanged: its imports of ipykernel's "
        "kernelbase, kernelapp and comm get kernelkit's",
    )
    run.add_argument(
        "-m", "--module", metavar="MODULE",
        help="with --ipykernel-compat: run MODULE as `python -m MODULE -- ARGS` does",
    )
    run.add_argument(
        "-f",
        "--connection-file",
        metavar="FILE",
        help="connection file from the client; without it the kernel writes its own",
    )
    run.add_argument("--path", metavar="DIR", help="put DIR first on sys.path before importing")

    from .bridge.command import add_parser as add_bridge_parser

    add_bridge_parser(sub)

    inst = sub.add_parser(
        "install",
        help="write a kernelspec so Jupyter can start the kernel "
        "(KERNEL; typescript [DENO FLAGS]; or -- CMD ARGS for a bridge backend)",
    )
    inst.add_argument(
        "kernel",
        metavar="KERNEL",
        nargs="?",
        help="a built-in kernel name (echo, typescript) or module:Class",
    )
    inst.add_argument("--name", help="kernelspec name (default: derived from KERNEL)")
    inst.add_argument("--deno", metavar="PATH",
                      help="typescript: the deno to run (default: this environment's, then PATH)")
    inst.add_argument("--display-name", help="name shown in Jupyter's menus")
    where = inst.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for this user (default)")
    where.add_argument(
        "--sys-prefix",
        action="store_true",
        help="install into this Python environment (sys.prefix)",
    )
    where.add_argument("--prefix", metavar="P", help="install under P/share/jupyter/kernels")
    inst.add_argument(
        "--interrupt-mode",
        choices=("signal", "message"),
        default="signal",
        help="how Jupyter interrupts the kernel (default: signal)",
    )

    inst.add_argument(
        "--env", metavar="NAME=VALUE", action="append", default=[], type=_env_pair,
        help="set NAME in the kernel's environment (the kernelspec's env); repeatable",
    )
    inst.add_argument(
        "--remote-launcher", choices=("enterprise-gateway", "gateway-provisioners"),
        help="a kernelspec for a gateway that starts the kernel on remote hosts over SSH "
        "through `kernelkit launch` (kernelkit[launch] must be installed there)",
    )
    inst.add_argument(
        "--remote-hosts", metavar="HOST,HOST", type=lambda t: [h for h in t.split(",") if h],
        default=[], help="with --remote-launcher: the hosts (default: the gateway's own list)",
    )

    from .adopt import add_parser as add_adopt_parser

    add_adopt_parser(sub, _env_pair)

    sub.add_parser("list", help="list the built-in kernels and installed kernelkit kernelspecs")

    rm = sub.add_parser("remove", help="remove an installed kernelkit kernelspec")
    rm.add_argument("name", metavar="NAME")

    from .launch import add_parser as add_launch_parser

    add_launch_parser(sub)

    from .check.command import add_parser as add_check_parser

    add_check_parser(sub)
    return parser


def _fast_run(argv: list[str]) -> tuple[str, str | None] | None:
    """``run KERNEL [-f FILE]``, what every kernelspec launches, parsed without argparse.

    Kernel start-up time matters; anything else goes through the full parser.
    """
    if len(argv) == 2 and argv[0] == "run" and not argv[1].startswith("-"):
        return argv[1], None
    if (
        len(argv) == 4
        and argv[0] == "run"
        and not argv[1].startswith("-")
        and argv[2] in ("-f", "--connection-file")
    ):
        return argv[1], argv[3]
    return None


def _env_pair(text: str) -> tuple[str, str]:
    import argparse

    name, eq, value = text.partition("=")
    if not eq or not name or any(c.isspace() for c in name):
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name, value


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return guarded(lambda: _main(argv))


def _main(argv: list[str]) -> int:
    fast = _fast_run(argv)
    if fast is not None:
        from .app import launch

        exit_now(launch(*fast))
    from .bridge import command as bridge_command

    bridge = bridge_command.fast_argv(argv)
    if bridge is not None:
        exit_now(bridge_command.run(bridge[0], bridge[1], bridge_command.INIT_TIMEOUT))
    return _command(argv)


# Each subcommand and where it runs, "module:function" taking the parsed arguments; the
# module is imported only when its subcommand is used (start-up of the others stays lean).
SUBCOMMANDS: dict[str, str] = {
    "run": "kernelkit.cli:_run_command",
    "bridge": "kernelkit.bridge.command:run_args",
    "install": "kernelkit.cli:_install_command",
    "adopt": "kernelkit.adopt:run",
    "launch": "kernelkit.launch:run",
    "list": "kernelkit.cli:_list",
    "check": "kernelkit.check.command:run",
    "remove": "kernelkit.cli:_remove",
}


def _command(argv: list[str]) -> int:
    import importlib

    # Everything after "--" is a backend command line, left untouched.
    command: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1 :]
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not (args.command == "install" and args.kernel == "typescript"):
        parser.parse_args(argv)  # the usual error for the unknown arguments
    args.deno_flags = extra  # `install typescript --allow-net …`: Deno's flags for the cells
    args.backend_command = command
    module, _, function = SUBCOMMANDS[args.command].partition(":")
    result: int = getattr(importlib.import_module(module), function)(args)
    return result


def _run_command(args: argparse.Namespace) -> int:
    exit_now(_run(args))
    return 0  # (not reached: exit_now exits)


def _install_command(args: argparse.Namespace) -> int:
    from .bridge import command as bridge_command

    if args.backend_command:
        return bridge_command.install(args)
    if not args.kernel:
        from .errors import UsageError

        raise UsageError("install needs KERNEL, or -- CMD ARGS for a bridge backend")
    if args.kernel == "typescript":
        return bridge_command.install_typescript(args)
    return _install(args)


def _remove(args: argparse.Namespace) -> int:
    from .kernelspec import remove

    print(f"removed {remove(args.name)}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from .errors import UsageError

    if not args.ipykernel_compat:
        if args.module or args.backend_command:
            raise UsageError("-m MODULE and -- ARGS are for --ipykernel-compat")
        if not args.kernel:
            raise UsageError("run needs KERNEL (a built-in name or module:Class)")
        from .app import launch

        return launch(args.kernel, args.connection_file, args.path)
    from .compat.run import run_class, run_module

    if args.module:
        if args.kernel:
            raise UsageError("give -m MODULE or KERNEL, not both")
        extra = ["-f", args.connection_file] if args.connection_file else []
        return run_module(args.module, [*extra, *args.backend_command], args.path)
    if not args.kernel:
        raise UsageError("--ipykernel-compat needs -m MODULE or module:Class")
    return run_class(args.kernel, args.connection_file, args.path)


def _install(args: argparse.Namespace) -> int:
    from .app import load_class, resolve
    from .kernels import BUILTIN
    from .kernelspec import for_gateway, install, make_spec, probe_with_env, target_dir

    target = resolve(args.kernel)
    probe_with_env(args.env)
    path = None
    if args.kernel not in BUILTIN:
        module_file = _module_file(target.partition(":")[0])
        if module_file is not None and _from_cwd(module_file, target.partition(":")[0]):
            path = os.getcwd()  # a kernel in the current folder must be found from any notebook dir
    cls = load_class(args.kernel, path)
    if args.kernel in BUILTIN:
        default_name = f"kernelkit-{args.kernel}"
        default_display = f"{cls.implementation} (kernelkit)"
    else:
        default_name = target.partition(":")[2].split(".")[-1].lower()
        default_display = cls.implementation if cls.implementation != "kernelkit" else cls.__name__
    if args.remote_launcher:
        default_name += "-remote"  # beside the local kernelspec, not over it
    name = args.name or default_name
    spec = make_spec(
        args.kernel,
        args.display_name or default_display,
        cls.language or str(cls.language_info.get("name", "")),
        args.interrupt_mode,
        path,
    )
    if args.env:
        spec["env"] = dict(args.env)
    spec = for_gateway(args, spec)
    dest = install(spec, name, target_dir(args.user, args.sys_prefix, args.prefix))
    print(f"installed kernelspec {name.lower()} in {dest}")
    return 0


def _module_file(module: str) -> str | None:
    """Where a module lives; the current folder counts, as it does for ``python -m``."""
    import importlib.util

    for attempt in range(2):
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is not None:
            return found.origin
        if attempt == 0 and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
    return None


def _from_cwd(module_file: str, module: str) -> bool:
    """Whether the module was found in the current folder itself (not a subfolder on a path)."""
    from pathlib import Path

    where = Path(module_file).resolve().parent
    if Path(module_file).name == "__init__.py":
        where = where.parent
    for _ in range(module.count(".")):
        where = where.parent
    return where == Path.cwd().resolve() and "site-packages" not in where.parts


def _list(args: argparse.Namespace) -> int:
    from .kernels import BUILTIN
    from .kernelspec import find_all

    print("built-in kernels (kernelkit run NAME):")
    for name, target in sorted(BUILTIN.items()):
        print(f"  {name:<20} {target}")
    specs = [s for s in find_all() if s.is_kernelkit]
    print("installed kernelkit kernelspecs:")
    if not specs:
        print("  (none)")
    rows = [(spec.name, str((spec.spec.get("metadata") or {}).get("kernelkit", {})
                            .get("kernel", "?")), str(spec.path)) for spec in specs]
    # Columns as wide as their longest entry (a long kernelspec name no longer shifts a row).
    name_w = max([20, *(len(r[0]) for r in rows)])
    kernel_w = max([30, *(len(r[1]) for r in rows)])
    for name, kernel, path in rows:
        print(f"  {name:<{name_w}} {kernel:<{kernel_w}} {path}")
    return 0
