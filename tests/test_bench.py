"""The benchmark command keeps working: a smoke run (a few iterations, no timing asserted)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT


@pytest.mark.timeout(600)
def test_benchmark_smoke_run(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(out.read_text())
    assert results["errors"] == {}
    # (kernmini and async-kernel are in the bench extra: installed here, so measured)
    for kernel in ("kernelkit Echo", "floor (minimal pyzmq)", "kernelkit Deno Echo (bridge)",
                   "ipykernel Echo", "xeus-python", "Deno (deno jupyter)", "kernmini Echo",
                   "async-kernel", "kernelkit Print (output)"):
        row = dict(results["rows"][kernel])
        subshell = row.pop("subshell_rtt_ms")  # only for kernels that have subshells
        assert all(value is not None and value > 0 for value in row.values()), (kernel, row)
        if kernel in ("kernelkit Echo", "kernelkit Print (output)", "kernmini Echo"):
            assert subshell is not None and subshell > 0, (kernel, subshell)
    assert "| kernelkit Echo |" in done.stdout


@pytest.mark.timeout(600)
def test_density_smoke_run(tmp_path: Path) -> None:
    """N kernels of each kind alive at once through jupyter_server: every figure measured."""
    out = tmp_path / "density.json"
    done = subprocess.run([sys.executable, "-m", "bench", "--density", "1,3", "--smoke",
                           "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(out.read_text())
    kinds = {row["label"] for row in rows}
    assert kinds == {"kernelkit Echo", "kernelkit Deno Echo (bridge)", "ipykernel Echo",
                     "xeus-python", "kernmini Echo"}
    assert sorted({row["n"] for row in rows}) == [1, 3]
    for row in rows:
        assert row["error"] == "", row
        figures = [row[k] for k in ("all_ready_s", "rss_total_mb", "pss_total_mb",
                                    "rtt_p50_ms", "rtt_p99_ms")]
        assert all(x is not None and x > 0 for x in figures), row
        assert row["rtt_p50_ms"] <= row["rtt_p99_ms"]
    assert "| kernelkit Echo | 3 |" in done.stdout
    assert "kernels in 8 GiB" in done.stdout


def test_micro_benchmark_smoke_run() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.micro", "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    rows = [line for line in lines if line.startswith("| ") and "---" not in line]
    # two headers, seven engine rows, three rows of literals, two bridge host rows, two JS
    # SDK rows (Deno is in the bench extra), four import rows
    assert len(rows) == 20, done.stdout
    for what in ("sign a 10 MB message", "date a header", "receive a 7-frame request",
                 "parse a 10 MB cell's execute_request content",
                 "encode a 10 MB cell's execute_input",
                 "bridge host, a backend's 10 MB stream line",
                 "bridge host, write a 10 MB request", "bridge host, read a 10 MB output line",
                 "JS SDK on Deno, write a 10 MB stream line",
                 "JS SDK on Deno, one small request on a pipe"):
        (row,) = [r for r in rows if r.startswith(f"| {what}")]
        before, now = (float(x) for x in row.split("|")[2:4])
        assert before > 0 and now > 0, row


def test_a_port_taken_before_the_kernel_binds_it_costs_a_retry_not_the_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmark must pick ports for peers that cannot pick their own; another process
    can take one between the pick and the kernel's bind. Forced here: the first pick is a
    port already bound. The kernel exits at start-up, and the client starts it again."""
    import socket

    import zmq
    from bench import client as bench_client

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    picks: list[list[int]] = []
    real = bench_client.free_ports

    def racy(n: int) -> list[int]:
        ports = real(n)
        if not picks:  # the first kernel's shell port was taken in the meantime
            ports[0] = taken.getsockname()[1]
        picks.append(ports)
        return ports

    monkeypatch.setattr(bench_client, "free_ports", racy)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    run = bench_client.Running("kernelkit-echo", [sys.executable, "-m", "kernelkit", "run",
                                                  "echo", "-f", "{connection_file}"])
    try:
        run.start(ctx, timeout=60)
        assert len(picks) == 2, picks
        assert run.execute("hi") > 0
    finally:
        run.stop()
        taken.close()
        ctx.destroy(linger=0)


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed "
                    "(.ci/install-system.sh installs it)")
def test_instruction_counts_smoke_run() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.instructions", "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split("|") for line in done.stdout.splitlines()
            if line.startswith("| kernelkit Echo") or line.startswith("| floor")]
    assert len(rows) == 2, done.stdout
    for row in rows:
        startup, per_execute = float(row[2]), float(row[4])
        # Python and pyzmq alone take ~170 M instructions to start; an execute is ~1 M.
        assert 50 < startup < 2000 and 100 < per_execute < 100_000, row
    assert rows[1][3].strip() == rows[1][5].strip() == "1.000", rows[1]
