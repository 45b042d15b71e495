"""``kernelkit check KERNEL_NAME``: the conformance suite as a command.

``add_parser(subparsers)`` and ``run(args)`` plug it into the ``kernelkit``
command; ``main(argv)`` runs it on its own (``python -m kernelkit.check``).
jupyter_client and rich are imported only here, when the command runs, so a
kernel process never pays for them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .registry import Progress, Report

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

DESCRIPTION = """\
Launch an installed kernelspec through jupyter_client and check that it speaks the
Jupyter messaging protocol (5.x): every message is validated, and the checks cover
kernel_info, execute, introspection, stdin, interrupt, control, subshells, comms,
heartbeat, security and lifecycle. Code samples come from --samples FILE (TOML) or the
built-in samples for kernelkit-echo, echo, python3, xpython and deno, and for the
languages python, bash, zsh, scheme and gnuplot (a kernelspec made by `kernelkit adopt`
gets the samples of the one it adopted; a [comm] sample names a comm target that
echoes). Exit code 1 if a check failed."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kernel", metavar="KERNEL_NAME", nargs="?",
                        help="name of an installed kernelspec (see `jupyter kernelspec list`)")
    parser.add_argument("--samples", metavar="FILE",
                        help="TOML file of code samples for this kernel's language")
    parser.add_argument("--json", action="store_true",
                        help="print the results as JSON on stdout (progress stays on stderr)")
    parser.add_argument("--only", action="append", default=[], metavar="GROUP",
                        help="run only these groups or checks (repeat or comma-separate)")
    parser.add_argument("--skip", action="append", default=[], metavar="GROUP",
                        help="leave out these groups or checks (repeat or comma-separate)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="S",
                        help="seconds to wait for each reply (default 10)")
    parser.add_argument("--startup-timeout", type=float, default=60.0, metavar="S",
                        help="seconds the kernel may take to start (default 60)")
    parser.add_argument("--list", action="store_true", help="list the checks and exit")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``check`` subcommand to an argparse subparsers object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "check",
        help="run the protocol conformance suite against an installed kernelspec",
        description=DESCRIPTION,
    )
    configure(parser)
    return parser


def _split(values: list[str]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _error(message: str) -> int:
    print(f"kernelkit check: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def run(args: argparse.Namespace) -> int:
    """Run the checks the parsed arguments ask for; returns the exit code."""
    from .runner import all_checks, select

    if args.list:
        for c in all_checks():
            print(f"{c.name:<34} {c.title}")
        return EXIT_OK
    if not args.kernel:
        return _error("KERNEL_NAME is required (see `jupyter kernelspec list`)")
    try:
        checks = select(_split(args.only), _split(args.skip))
    except ValueError as exc:
        return _error(str(exc))
    if args.timeout <= 0 or args.startup_timeout <= 0:
        return _error("timeouts must be positive")
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    except ImportError:
        return _error("kernelkit check needs jupyter_client: pip install 'kernelkit[check]'")
    from . import samples as samples_mod

    ksm = KernelSpecManager()
    try:
        spec = ksm.get_kernel_spec(args.kernel)
    except NoSuchKernel:
        names = ", ".join(sorted(ksm.find_kernel_specs())) or "none"
        return _error(f"no kernelspec named {args.kernel!r} (installed: {names})")
    # A kernelspec made by `kernelkit adopt` runs the same kernel as the one it adopted.
    adopted = ((spec.metadata or {}).get("kernelkit") or {}).get("adopted")
    samples = samples_mod.builtin(adopted if isinstance(adopted, str) else args.kernel,
                                  str(spec.language or ""))
    if args.samples:
        try:
            samples = samples.merged(samples_mod.load(args.samples))
        except samples_mod.SamplesError as exc:
            return _error(str(exc))

    progress, show = _output(args.json)
    from .runner import run as run_checks

    try:
        report = run_checks(args.kernel, samples, checks, progress,
                            timeout=args.timeout, startup_timeout=args.startup_timeout)
    except KeyboardInterrupt:
        print("kernelkit check: interrupted", file=sys.stderr)
        return 130
    show(report)
    return EXIT_FAILED if report.failed else EXIT_OK


def _output(as_json: bool) -> tuple[Progress, Callable[[Report], None]]:
    """The progress reporter (stderr) and the function that shows the final report."""
    from . import report as report_mod

    def show_json(report: Report) -> None:
        print(json.dumps(report_mod.as_json(report), indent=2))

    def show_plain(report: Report) -> None:
        print(report_mod.plain_table(report))

    try:
        from rich.console import Console
    except ImportError:
        return report_mod.PlainProgress(), show_json if as_json else show_plain

    def show_rich(report: Report) -> None:
        console = Console()
        if not console.is_terminal:
            console.width = max(console.width, 120)  # a file or pipe gets whole lines
        report_mod.rich_table(report, console)

    return report_mod.RichProgress(Console(stderr=True)), show_json if as_json else show_rich


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kernelkit check", description=DESCRIPTION)
    configure(parser)
    return run(parser.parse_args(argv))
