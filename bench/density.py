"""How many kernels fit on one host: N kernels started at once through jupyter_server's kernel
manager, as a hub node or a gateway starts them, then measured while all are alive.

python -m bench --density 10,50,100                 # table on the terminal
python -m bench --density 10,50,100 --update-docs   # and docs/benchmarks.md + its chart

For each N and each kernel (in a shuffled order per N): the time from the first start to the
moment every kernel has answered a kernel_info request; the memory of every kernel's process
tree (RSS, and PSS, which shares the pages kernels have in common among them); and execute
round trips (execute_request through its idle, by jupyter_client's async client, so the
client's own cost is in every figure alike) to a kernel picked at random each time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

# (label, kernelspec, code for a round trip): the peers the density question is asked of.
KINDS = [
    ("kernelkit Echo", "kernelkit-echo", "hi"),
    ("kernelkit Deno Echo (bridge)", "kernelkit-bench-deno-echo", "hi"),
    ("ipykernel Echo", "echo", "hi"),
    ("xeus-python", "xpython", 'print("hi")'),
    ("kernmini Echo", "kernelkit-bench-kernmini-echo", "hi"),
]
GIB = 1024**3
START = "<!-- density:start -->"
END = "<!-- density:end -->"


@dataclass
class Density:
    label: str
    n: int
    all_ready_s: float | None = None
    rss_total_mb: float | None = None
    pss_total_mb: float | None = None
    rtt_p50_ms: float | None = None
    rtt_p99_ms: float | None = None
    error: str = ""

    @property
    def fit_in_8gib(self) -> int | None:
        """Kernels in 8 GiB at this N's per-kernel PSS (what the host really spends)."""
        if not self.pss_total_mb:
            return None
        return int(8 * GIB / (self.pss_total_mb * 1e6 / self.n))


def _tree_memory(pid: int) -> tuple[int, int]:
    """RSS and PSS (bytes) of a process and its children: a bridge kernel is two processes."""
    rss = pss = 0
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            try:
                info = proc.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
    except psutil.NoSuchProcess:
        pass
    return rss, pss


async def _measure(label: str, spec: str, code: str, n: int, round_trips: int,
                   timeout: float) -> Density:
    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

    result = Density(label, n)
    connections = tempfile.mkdtemp(prefix="kk-density-")
    km = AsyncMappingKernelManager(connection_dir=connections)
    clients: list[Any] = []
    try:
        began = time.perf_counter()
        ids = await asyncio.wait_for(
            asyncio.gather(*(km.start_kernel(kernel_name=spec) for _ in range(n))), timeout)
        deadline = time.monotonic() + timeout
        clients = list(await asyncio.gather(*(_ready(km, i, deadline) for i in ids)))
        result.all_ready_s = time.perf_counter() - began
        pids = [km.get_kernel(kernel_id).provisioner.pid for kernel_id in ids]
        rss = pss = 0
        for pid in pids:
            r, p = _tree_memory(pid)
            rss, pss = rss + r, pss + p
        result.rss_total_mb, result.pss_total_mb = rss / 1e6, pss / 1e6
        pick = random.Random(n)
        times = []
        for _ in range(round_trips):
            client = pick.choice(clients)
            t0 = time.perf_counter()
            reply = await client.execute_interactive(code, timeout=timeout,
                                                     output_hook=lambda msg: None)
            times.append(time.perf_counter() - t0)
            if reply["content"]["status"] != "ok":
                raise RuntimeError(f"execute failed: {reply['content']}")
        times.sort()
        result.rtt_p50_ms = statistics.median(times) * 1e3
        result.rtt_p99_ms = times[min(len(times) - 1, int(len(times) * 0.99))] * 1e3
    except Exception as exc:  # one kernel's failure is its row's, not the run's
        result.error = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        for client in clients:
            client.stop_channels()
        await _shut_down(km)
        shutil.rmtree(connections, ignore_errors=True)
    return result


async def _ready(km: Any, kernel_id: str, deadline: float) -> Any:
    """A client of a kernel that has answered kernel_info.

    With many kernels starting at once, one may lose its port to another process between
    the manager choosing it and the kernel binding it (every engine can); the manager's
    restarter then starts it again on new ports, so a client is made anew from the
    kernel's current connection info until one is answered.
    """
    while True:
        client = km.get_kernel(kernel_id).client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=min(10.0, max(0.1, deadline - time.monotonic())))
            return client
        except (RuntimeError, TimeoutError) as exc:
            client.stop_channels()
            if time.monotonic() >= deadline:
                raise TimeoutError(f"kernel {kernel_id} did not answer: {exc}") from exc
            await asyncio.sleep(0.5)


async def _shut_down(km: Any) -> None:
    """Every kernel down, whatever state its start left it in; none outlives the run."""
    trees = []
    for kernel_id in list(km.list_kernel_ids()):
        try:
            pid = km.get_kernel(kernel_id).provisioner.pid
            root = psutil.Process(pid)
            trees += [root, *root.children(recursive=True)]
        except (AttributeError, KeyError, TypeError, psutil.Error):
            pass
        with contextlib.suppress(Exception):  # a kernel whose start failed: killed below
            await km.shutdown_kernel(kernel_id, now=True)
    _gone, alive = psutil.wait_procs(trees, timeout=10)
    for proc in alive:
        proc.kill()


def run_density(args: argparse.Namespace, found: dict[str, dict[str, Any]],
                command: str) -> tuple[list[Density], list[str], str]:
    """Every kind at every N; the results, the kinds not installed, and the Markdown."""
    sizes = [int(x) for x in str(args.density).split(",") if x]
    wanted = set(args.kernels.split(",")) if args.kernels else None
    kinds = [k for k in KINDS if wanted is None or k[1] in wanted]
    missing = [label for label, spec, _ in kinds if spec not in found]
    kinds = [k for k in kinds if k[1] in found]
    round_trips = 20 if args.smoke else 200
    results: list[Density] = []
    for n in sizes:
        order = kinds[:]
        random.Random(n).shuffle(order)
        for label, spec, code in order:
            print(f"density: {n} × {label}", flush=True)
            results.append(asyncio.run(_measure(label, spec, code, n, round_trips,
                                                timeout=60 + 3 * n)))
    return results, missing, render(results, missing, round_trips, command)


def render(results: list[Density], missing: list[str], round_trips: int, command: str) -> str:
    def fmt(x: float | None, digits: int) -> str:
        return "—" if x is None else f"{x:,.{digits}f}"

    lines = [
        f"`{command}` on {os.cpu_count()} cores; {round_trips} round trips per row, each to "
        "a kernel picked at random among the N alive.",
        "",
        "| kernel | N | all answering (s) | total RSS (MB) | RSS per kernel (MB) "
        "| PSS per kernel (MB) | round trip p50 (ms) | p99 (ms) | kernels in 8 GiB (by PSS) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = {label: i for i, (label, _, _) in enumerate(KINDS)}
    for r in sorted(results, key=lambda r: (r.n, order.get(r.label, 99))):
        if r.error:
            lines.append(f"| {r.label} | {r.n} | failed: {r.error} | | | | | | |")
            continue
        per_rss = None if r.rss_total_mb is None else r.rss_total_mb / r.n
        per_pss = None if r.pss_total_mb is None else r.pss_total_mb / r.n
        fit = r.fit_in_8gib
        lines.append(
            f"| {r.label} | {r.n} | {fmt(r.all_ready_s, 1)} | {fmt(r.rss_total_mb, 0)} | "
            f"{fmt(per_rss, 1)} | {fmt(per_pss, 1)} | {fmt(r.rtt_p50_ms, 2)} | "
            f"{fmt(r.rtt_p99_ms, 2)} | {'—' if fit is None else f'{fit:,}'} |")
    lines += ["", "Kernels in 8 GiB = 8 GiB ÷ (total PSS ÷ N): the memory each kernel adds, "
              "its shared libraries counted once across the N, and nothing left for the "
              "code users run in them."]
    if missing:
        lines += ["", "Not installed here, so not measured: " + ", ".join(missing) + "."]
    return "\n".join(lines)


def chart(results: list[Density], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    panels = [
        (lambda r: r.all_ready_s, "time until all N answer (s)"),
        (lambda r: r.pss_total_mb / r.n if r.pss_total_mb else None, "PSS per kernel (MB)"),
        (lambda r: r.rtt_p99_ms, "round trip p99 with N alive (ms)"),
    ]
    labels = list(dict.fromkeys(r.label for r in results))
    for ax, (value, title) in zip(axes, panels, strict=True):
        for label in labels:
            points = [(r.n, value(r)) for r in results if r.label == label and not r.error]
            points = [(n, v) for n, v in sorted(points) if v is not None]
            if points:
                style = "-o" if label.startswith("kernelkit") else "--s"
                ax.plot(*zip(*points, strict=True), style, label=label)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("N kernels")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
