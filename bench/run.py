"""Run the benchmark: every kernel, interleaved, several rounds, medians.

python -m bench                      # full run, table on the terminal
python -m bench --update-docs        # and write the results into docs/benchmarks.md + chart
python -m bench --smoke              # a handful of iterations (CI keeps the command working)
python -m bench --density 10,50,100  # N kernels alive at once (bench/density.py)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import zmq

from .client import Running

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
CHART = ROOT / "docs" / "images" / "benchmarks.png"
DENSITY_CHART = ROOT / "docs" / "images" / "density.png"
START, END = "<!-- results:start -->", "<!-- results:end -->"


@dataclass
class Kernel:
    label: str
    spec: str  # kernelspec name
    rtt_code: str
    output_code: str  # {n} is replaced by the output size in characters
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


ECHO_OUTPUT = "{echo}"  # the Echo kernels print their input: send n characters of code
KERNELS = [
    Kernel("kernelkit Echo", "kernelkit-echo", "hi", ECHO_OUTPUT),
    Kernel("ipykernel Echo", "echo", "hi", ECHO_OUTPUT),
    Kernel("xeus-python", "xpython", 'print("hi")', 'print("x" * {n}, end="")'),
    Kernel("Deno (deno jupyter)", "deno", 'console.log("hi")', 'console.log("x".repeat({n}))'),
    Kernel("kernelkit Deno Echo (bridge)", "kernelkit-bench-deno-echo", "hi", ECHO_OUTPUT),
    Kernel(
        "kernelkit TypeScript (Deno)",
        "kernelkit-bench-typescript",
        'console.log("hi")',
        'console.log("x".repeat({n}))',
    ),
    Kernel("floor (minimal pyzmq)", "kernelkit-bench-floor", "hi", ECHO_OUTPUT),
    # Peers that appeared since (issue "Benchmarks v2"), skipped when not installed.
    Kernel("kernmini Echo", "kernelkit-bench-kernmini-echo", "hi", ECHO_OUTPUT),
    Kernel("async-kernel", "async", 'print("hi")', 'print("x" * {n}, end="")'),
    # Output as a Python kernel makes it: a short request, then 10 MB through sys.stdout.
    Kernel("kernelkit Print (output)", "kernelkit-bench-print", "0", "{n}"),
]


def setup(prefix: Path) -> dict[str, dict[str, Any]]:
    """Install the peers' kernelspecs where possible; return kernelspec name → its spec."""
    kernels = prefix / "share" / "jupyter" / "kernels"
    kernels.mkdir(parents=True, exist_ok=True)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run(
        [sys.executable, "-m", "echo_kernel.install", "--prefix", str(prefix)], check=False, **quiet
    )
    deno = shutil.which("deno") or str(Path(sys.executable).parent / "deno")
    if Path(deno).exists():
        # What `deno jupyter --install` writes, but into our prefix rather than the user's.
        spec = kernels / "deno"
        spec.mkdir(exist_ok=True)
        (spec / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [deno, "jupyter", "--kernel", "--conn", "{connection_file}"],
                    "display_name": "Deno",
                    "language": "typescript",
                }
            )
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "kernelkit",
                "install",
                "--name",
                "kernelkit-bench-deno-echo",
                "--prefix",
                str(prefix),
                "--",
                deno,
                "run",
                str(ROOT / "examples" / "deno" / "echo.ts"),
            ],
            check=False,
            **quiet,
        )
        # The TypeScript kernel as `kernelkit install typescript` makes it (its parsers are
        # bundled under the prefix; Deno's own npm cache makes that quick after the first run).
        subprocess.run(
            [
                sys.executable, "-m", "kernelkit", "install", "typescript",
                "--name", "kernelkit-bench-typescript", "--prefix", str(prefix), "--deno", deno,
            ],
            check=False,
            **quiet,
        )
    # Start every Python kernel from cached bytecode, as a wheel install leaves it: an
    # editable install (or PYTHONDONTWRITEBYTECODE) would otherwise recompile kernelkit's
    # sources, and the floor script, at every launch. Peers from wheels are compiled already.
    import compileall

    import kernelkit

    for folder in (Path(kernelkit.__file__).parent, ROOT / "bench"):
        compileall.compile_dir(str(folder), quiet=1)
    import importlib.util

    if importlib.util.find_spec("kernmini") is not None:
        _bench_spec(kernels, "kernelkit-bench-kernmini-echo", "kernmini_echo", "echo")
    subprocess.run(
        [sys.executable, "-m", "kernelkit", "install", "print_kernel:PrintKernel",
         "--name", "kernelkit-bench-print", "--prefix", str(prefix),
         "--env", f"PYTHONPATH={ROOT / 'bench'}"],
        check=False, cwd=ROOT, **quiet,
    )
    _bench_spec(kernels, "kernelkit-bench-floor", "floor", "no-op")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        p for p in (str(prefix / "share" / "jupyter"), os.environ.get("JUPYTER_PATH")) if p
    )
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().get_all_specs()
    return {name: s["spec"] for name, s in specs.items()}


def _bench_spec(kernels: Path, name: str, module: str, language: str) -> None:
    """A kernelspec that imports ``bench/<module>.py`` (imported, so its bytecode is cached)."""
    folder = kernels / name
    folder.mkdir(exist_ok=True)
    code = f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import {module}"
    (folder / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-c", code, "{connection_file}"],
        "display_name": name, "language": language,
    }))


@dataclass
class Results:
    startup: list[float] = field(default_factory=list)
    rtt: list[float] = field(default_factory=list)
    subshell_rtt: list[float] = field(default_factory=list)
    pipelined: list[float] = field(default_factory=list)
    output: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    rss_after_output: list[float] = field(default_factory=list)
    error: str = ""
    retried: str = ""  # smoke runs: why the kernel's round was run a second time
    # Rounds whose output measurement failed, and why: the kernel's other figures stand
    # (deno jupyter has sent 10 MB of output that was not valid UTF-8 in some rounds).
    output_failures: list[str] = field(default_factory=list)
    pipelined_failures: list[str] = field(default_factory=list)  # likewise, pipelined runs
    failures: list[str] = field(default_factory=list)  # rounds that failed outright, and why

    @property
    def failed_every_round(self) -> bool:
        return bool(self.failures) and not self.startup

    def row(self) -> dict[str, float | None]:
        def med(xs: list[float]) -> float | None:
            return statistics.median(xs) if xs else None

        rtt = sorted(self.rtt)
        p99 = rtt[min(len(rtt) - 1, int(len(rtt) * 0.99))] if rtt else None
        return {
            "startup_ms": _ms(med(self.startup)),
            "rtt_ms": _ms(med(self.rtt)),
            "rtt_p99_ms": _ms(p99),
            "subshell_rtt_ms": _ms(med(self.subshell_rtt)),
            "exec_per_s": med(self.pipelined),
            "output_mb_s": med(self.output),
            "rss_mb": med(self.rss),
            "rss_after_output_mb": med(self.rss_after_output),
        }


def _ms(x: float | None) -> float | None:
    return None if x is None else x * 1000


def one_round(
    kernel: Kernel, res: Results, args: argparse.Namespace, ctx: zmq.Context[zmq.Socket[bytes]]
) -> None:
    run = Running(kernel.spec, kernel.argv, kernel.env)
    try:
        run.start(ctx)
        res.startup.append(run.startup_s)
        for _ in range(args.warmup):
            run.execute(kernel.rtt_code)
        res.rtt += [run.execute(kernel.rtt_code) for _ in range(args.executes)]
        subshell = run.create_subshell()
        if subshell is not None:  # the same executes, through a subshell (JEP 91)
            run.subshell_id = subshell
            for _ in range(args.warmup):
                run.execute(kernel.rtt_code)
            res.subshell_rtt += [run.execute(kernel.rtt_code) for _ in range(args.executes)]
            run.subshell_id = None
        # Memory after plain executes, before the large output can inflate it.
        while run.executes < args.memory_executes:
            run.execute(kernel.rtt_code)
        res.rss.append(run.rss_mb())
        try:
            res.pipelined.append(run.pipelined(kernel.rtt_code, args.pipelined,
                                               timeout=30 if args.smoke else 60))
        except TimeoutError as exc:
            # A peer that stalls on a burst (xeus-python and async-kernel have, now and then)
            # loses this figure for the round, not its others; the kernel is started afresh
            # (so its "RSS after the output" is then without the 1,000 executes before).
            res.pipelined_failures.append(str(exc))
            run.stop()
            run = Running(kernel.spec, kernel.argv, kernel.env)
            run.start(ctx)
        n = int(args.output_mb * 1e6)
        code = "x" * n if kernel.output_code == ECHO_OUTPUT else kernel.output_code.format(n=n)
        try:
            res.output.append(run.output(code, n))
        except (UnicodeDecodeError, ValueError) as exc:  # what the kernel sent, not a hang
            res.output_failures.append(f"{type(exc).__name__}: {exc}")
            return
        res.rss_after_output.append(run.rss_mb())
    except Exception as exc:
        # This round is lost, not the kernel's other rounds (async-kernel has, now and then,
        # started without its IOPub ever delivering): the figures are the other rounds' and
        # the note says so; a kernel that fails every round is an error (row "failed").
        res.failures.append(f"{type(exc).__name__}: {exc}")
    finally:
        run.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--executes", type=int, default=300, help="round trips per round")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--pipelined", type=int, default=2000)
    parser.add_argument("--output-mb", type=float, default=10.0)
    parser.add_argument("--memory-executes", type=int, default=1000)
    parser.add_argument("--kernels", help="comma-separated kernelspec names (default: all found)")
    parser.add_argument("--smoke", action="store_true", help="a handful of iterations")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help="write the results into docs/benchmarks.md and its chart",
    )
    parser.add_argument(
        "--density", metavar="N[,N...]",
        help="instead: start N kernels at once through jupyter_server and measure them alive",
    )
    args = parser.parse_args(argv)
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.density:
        return _density(args, command.strip())
    if args.smoke:
        args.rounds, args.executes, args.warmup = 1, 10, 2
        args.pipelined, args.output_mb, args.memory_executes = 50, 0.2, 30

    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    prefix = Path(tempfile.mkdtemp(prefix="kk-bench-prefix-"))
    try:
        found = setup(prefix)
        wanted = set(args.kernels.split(",")) if args.kernels else None
        kernels = []
        skipped = []
        for k in KERNELS:
            if wanted is not None and k.spec not in wanted:
                continue
            if k.spec not in found:
                console.print(f"[yellow]skipping {k.label}: kernelspec {k.spec!r} not installed")
                skipped.append(k.label)
                continue
            k.argv = found[k.spec]["argv"]
            k.env = {**(found[k.spec].get("env") or {}), **k.env}  # as Jupyter starts it
            kernels.append(k)
        results = {k.label: Results() for k in kernels}
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        with Progress(console=console) as progress:
            task = progress.add_task("benchmarking", total=args.rounds * len(kernels))
            for r in range(args.rounds):
                order = kernels[:]
                random.Random(r).shuffle(order)  # interleaved, in a different order each round
                for k in order:
                    progress.update(task, description=f"round {r + 1}: {k.label}")
                    one_round(k, results[k.label], args, ctx)
                    res = results[k.label]
                    missing = (
                        (res.failures[-1:] if not res.startup else [])
                        + (res.pipelined_failures[:1] if not res.pipelined else [])
                        + (res.output_failures[:1] if not res.output else [])
                    )
                    if missing and args.smoke:
                        # A smoke run checks that the command works, on a machine that may
                        # be busy: a kernel that failed once, or lost a figure (xeus-python
                        # and async-kernel have stalled in a pipelined run under CI's load),
                        # gets one more try, and the note says so.
                        why = "; ".join(missing)
                        console.print(f"[yellow]{k.label}: {why}; trying once more")
                        res.retried = why
                        one_round(k, res, args, ctx)
                    progress.advance(task)
        ctx.term()
    finally:
        shutil.rmtree(prefix, ignore_errors=True)

    for res in results.values():
        if res.failed_every_round:
            res.error = res.failures[-1]
    rows = {label: res.row() for label, res in results.items()}
    errors = {label: res.error for label, res in results.items() if res.error}
    retried = {label: res.retried for label, res in results.items() if res.retried}
    md = render(rows, errors, args, command.strip())
    if skipped:
        md += "\n\nNot installed here, so not measured: " + ", ".join(skipped) + "."
    for label, res in results.items():
        if res.failures and not res.error:
            md += (f"\n\n{label}: {len(res.failures)} of {args.rounds} rounds failed "
                   f"({res.failures[0]}); its figures are the other rounds'.")
        if res.pipelined_failures:
            md += (f"\n\n{label}: the pipelined run stalled in {len(res.pipelined_failures)} of "
                   f"{args.rounds} rounds ({res.pipelined_failures[0]}); its pipelined figure "
                   "is the other rounds'.")
        if res.output_failures:
            md += (f"\n\n{label}: the output measurement failed in {len(res.output_failures)} of "
                   f"{args.rounds} rounds ({res.output_failures[0]}); its output figures are "
                   "the other rounds'.")
    print(md)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"rows": rows, "errors": errors, "retried": retried}, indent=2)
        )
    if args.update_docs:
        chart(rows, CHART, args.memory_executes)
        text = DOCS.read_text()
        head, _, rest = text.partition(START)
        _, _, tail = rest.partition(END)
        DOCS.write_text(f"{head}{START}\n{md}\n{END}{tail}")
    return 1 if errors and args.smoke else 0


def _density(args: argparse.Namespace, command: str) -> int:
    from . import density

    prefix = Path(tempfile.mkdtemp(prefix="kk-bench-prefix-"))
    try:
        results, _missing, md = density.run_density(args, setup(prefix), command)
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
    print(md)
    if args.json:
        Path(args.json).write_text(json.dumps([vars(r) for r in results], indent=2))
    if args.update_docs:
        density.chart(results, DENSITY_CHART)
        text = DOCS.read_text()
        head, _, rest = text.partition(density.START)
        _, _, tail = rest.partition(density.END)
        DOCS.write_text(f"{head}{density.START}\n{md}\n{density.END}{tail}")
    return 1 if args.smoke and any(r.error for r in results) else 0


def _fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


TS, DENO = "kernelkit TypeScript (Deno)", "Deno (deno jupyter)"
ECHO, FLOOR, KERNMINI, XEUS = ("kernelkit Echo", "floor (minimal pyzmq)", "kernmini Echo",
                               "xeus-python")
BRIDGE, PRINT = "kernelkit Deno Echo (bridge)", "kernelkit Print (output)"
TARGETS = [
    # (description, numerator kernel, denominator kernel, metric, bound, "<=" or ">=")
    ("startup ≤ 0.5× ipykernel Echo", ECHO, "ipykernel Echo", "startup_ms", 0.5, "<="),
    ("startup ≤ 1.1× floor", ECHO, FLOOR, "startup_ms", 1.1, "<="),
    ("startup ≤ kernmini Echo", ECHO, KERNMINI, "startup_ms", 1.0, "<="),
    ("round trip ≤ 0.3× ipykernel Echo", ECHO, "ipykernel Echo", "rtt_ms", 0.3, "<="),
    ("round trip ≤ 0.7× xeus-python", ECHO, XEUS, "rtt_ms", 0.7, "<="),
    ("round trip ≤ 1.15× floor", ECHO, FLOOR, "rtt_ms", 1.15, "<="),
    ("round trip ≤ 0.9× kernmini Echo", ECHO, KERNMINI, "rtt_ms", 0.9, "<="),
    ("throughput ≥ 8× ipykernel Echo", ECHO, "ipykernel Echo", "exec_per_s", 8, ">="),
    ("throughput ≥ 2× xeus-python", ECHO, XEUS, "exec_per_s", 2, ">="),
    ("throughput ≥ 2× kernmini Echo", ECHO, KERNMINI, "exec_per_s", 2, ">="),
    ("RSS ≤ 0.5× ipykernel Echo", ECHO, "ipykernel Echo", "rss_mb", 0.5, "<="),
    ("RSS ≤ 0.6× kernmini Echo", ECHO, KERNMINI, "rss_mb", 0.6, "<="),
    # Output: a short request, then 10 MB printed (the Print kernel, as xeus-python's print);
    # the Echo kernels' figure carries the 10 MB in as well, as the floor's does.
    ("output (print) ≥ 1.0× xeus-python", PRINT, XEUS, "output_mb_s", 1.0, ">="),
    ("output (echo) ≥ 1.0× floor", ECHO, FLOOR, "output_mb_s", 1.0, ">="),
    ("Deno bridge round trip ≤ 1.25× kernelkit Echo", BRIDGE, ECHO, "rtt_ms", 1.25, "<="),
    ("Deno bridge output ≥ 0.8× kernelkit Echo", BRIDGE, ECHO, "output_mb_s", 0.8, ">="),
    ("Deno bridge throughput ≥ 0.6× kernelkit Echo", BRIDGE, ECHO, "exec_per_s", 0.6, ">="),
    ("Deno bridge startup ≤ deno jupyter", BRIDGE, DENO, "startup_ms", 1.0, "<="),
    # The TypeScript kernel against the kernel Deno users have (issue: "beats deno jupyter").
    ("TypeScript startup ≤ deno jupyter", TS, DENO, "startup_ms", 1.0, "<="),
    ("TypeScript round trip ≤ deno jupyter", TS, DENO, "rtt_ms", 1.0, "<="),
    ("TypeScript RSS ≤ 0.5× deno jupyter", TS, DENO, "rss_mb", 0.5, "<="),
]


def render(
    rows: dict[str, dict[str, float | None]],
    errors: dict[str, str],
    args: argparse.Namespace,
    command: str,
) -> str:
    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") if Path("/proc/cpuinfo").exists() else open(os.devnull) as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    lines = [
        f"Run on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: {os.cpu_count()} cores ({cpu}), "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}; "
        f"{args.rounds} rounds, interleaved; `{command}`.",
        "",
        "| kernel | startup (ms) | round trip median (ms) | round trip p99 (ms) "
        "| on a subshell (ms) | pipelined (executes/s) "
        f"| output (MB/s) | RSS after {args.memory_executes:,} executes (MB) | RSS after the output (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, row in rows.items():
        if label in errors:
            lines.append(f"| {label} | failed: {errors[label]} | | | | | | | |")
            continue
        lines.append(
            f"| {label} | {_fmt(row['startup_ms'], 0)} | {_fmt(row['rtt_ms'], 3)} | "
            f"{_fmt(row['rtt_p99_ms'], 3)} | {_fmt(row['subshell_rtt_ms'], 3)} | "
            f"{_fmt(row['exec_per_s'], 0)} | "
            f"{_fmt(row['output_mb_s'], 1)} | {_fmt(row['rss_mb'], 1)} | "
            f"{_fmt(row['rss_after_output_mb'], 1)} |"
        )
    lines += ["", "| target | measured ratio | met |", "|---|---:|:---:|"]
    for text, num, den, metric, bound, op in TARGETS:
        a, b = rows.get(num, {}).get(metric), rows.get(den, {}).get(metric)
        if a is None or b is None or num in errors or den in errors:
            lines.append(f"| {text} | not measured | — |")
            continue
        ratio = a / b
        met = ratio <= bound if op == "<=" else ratio >= bound
        lines.append(f"| {text} | {ratio:.2f}× | {'yes' if met else '**no**'} |")
    return "\n".join(lines)


def chart(rows: dict[str, dict[str, float | None]], path: Path, memory_executes: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [
        ("startup_ms", "startup (ms, lower is better)"),
        ("rtt_ms", "execute round trip (ms, lower is better)"),
        ("subshell_rtt_ms", "round trip on a subshell (ms, lower is better)"),
        ("exec_per_s", "pipelined executes/s (higher is better)"),
        ("output_mb_s", "output (MB/s, higher is better)"),
        ("rss_mb", f"RSS after {memory_executes:,} executes (MB, lower is better)"),
    ]
    labels = [k for k, r in rows.items() if r["rtt_ms"] is not None]
    fig, axes = plt.subplots(2, 3, figsize=(16, 7))
    for ax, (key, title) in zip(axes.flat, metrics, strict=True):
        values = [rows[k][key] or 0 for k in labels]
        colors = ["tab:green" if k.startswith("kernelkit") else "tab:gray" for k in labels]
        ax.barh(labels, values, color=colors)
        ax.set_title(title, fontsize=10)
        ax.invert_yaxis()
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
