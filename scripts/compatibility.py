#!/usr/bin/env python3
"""Adopt real ipykernel wrapper kernels and compare them on both engines: docs/compatibility.md.

    python3 scripts/compatibility.py [--venv DIR] [--kernels K1,K2] [--runs N] [--no-write]

Run it with a Python that has pyzmq and psutil (the project's test venv does): the
measuring client is bench/client.py. It makes (or reuses) a virtual environment with
kernelkit (editable, from this checkout), rich, jupyter_client, ipykernel and the wrapper
kernels from PyPI, in isolated Jupyter directories; installs each kernel with its own
installer (as its README says) and adopts it with ``kernelkit adopt``. For each kernel, on
ipykernel and adopted on kernelkit, it records:

The kernels are tests/support/wrapper_kernels.py's, the ones tests/test_adopt.py adopts.

* ``kernelkit check`` (built-in samples for the kernel's language): passed, failed, skipped,
  and every check whose result differs between the two;
* start-up: launch to the first kernel_info_reply, the median of ``--runs`` starts;
* RSS of the kernel process and its children after start-up and 20 executes of its sample.

zsh and gnuplot must be installed (Debian: ``apt-get install zsh gnuplot-nox``). The
results replace what is between the ``results`` markers of docs/compatibility.md; the
rest (the findings, written by hand) is left alone.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts"), str(ROOT / "tests" / "support")]

from conformance import (  # noqa: E402  (the same venv and checker conventions)
    arguments,
    check,
    clean,
    preamble,
    publish,
    run_meta,
    sh,
    venv_env,
    versions,
)
from wrapper_kernels import KERNELS, install  # noqa: E402  (the kernels test_adopt.py adopts)

DOC = ROOT / "docs" / "compatibility.md"
PACKAGES = ["rich", "jupyter_client", "ipykernel", "echo_kernel", "bash_kernel",
            "zsh-jupyter-kernel", "metakernel", "calysto_scheme", "gnuplot_kernel", "ipywidgets"]
VERSIONS_OF = ["kernelkit", "ipykernel", "echo-kernel", "bash_kernel", "zsh-jupyter-kernel",
               "metakernel", "calysto_scheme", "gnuplot_kernel", "pyzmq"]


def setup(venv: Path) -> dict[str, str]:
    """The venv, each kernel installed its own way and adopted, and the env to run them in."""
    python = venv / "bin" / "python"
    env = venv_env(venv, PACKAGES, venv / "share" / "jupyter")
    saved = dict(os.environ)
    os.environ.update(env)  # (the installers find Jupyter's paths in it)
    try:
        for name in KERNELS:
            install(name, venv, ["--sys-prefix"], str(python))
            sh([str(python), "-m", "kernelkit", "adopt", name, "--sys-prefix"], env=env)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return env


def measure(venv: Path, env: dict[str, str], kernel: str, sample: str,
            runs: int) -> dict[str, float]:
    """Median start-up (ms) over ``runs`` starts, and RSS (MB) after 20 executes."""
    import json

    import zmq
    from bench.client import Running

    spec = json.loads((venv / "share/jupyter/kernels" / kernel / "kernel.json").read_text())
    argv = [str(venv / "bin" / "python") if a in ("python", "python3") else a
            for a in spec["argv"]]
    env = {**env, **spec.get("env", {})}  # as Jupyter starts it
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    starts, rss = [], []
    try:
        for _ in range(runs):
            running = Running(kernel, argv, env)
            try:
                running.start(ctx)
                starts.append(running.startup_s * 1000)
                for _ in range(20):
                    running.execute(sample)
                rss.append(running.rss_mb())
            finally:
                running.stop()
    finally:
        ctx.term()
    return {"startup_ms": statistics.median(starts), "rss_mb": statistics.median(rss)}


def differences(ipy: dict[str, Any], ours: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(check, on ipykernel, adopted) for every check whose result differs."""
    theirs = {c["check"]: c for c in ipy["results"]}
    out = []
    for c in ours["results"]:
        other = theirs.get(c["check"])
        if other is not None and other["result"] != c["result"]:
            out.append((c["check"], _cell(other), _cell(c)))
    return out


def _cell(c: dict[str, Any]) -> str:
    return f"{c['result']}: {clean(c['reason'])}"


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        *preamble(meta, f"Start-up: median of {meta['runs']} starts (launch to the first "
                  "kernel_info_reply); RSS: the kernel process and its children after 20 "
                  "executes."),
        "",
        "| kernel | on ipykernel: checks (pass / fail / skip) | start-up | RSS "
        "| adopted on kernelkit: checks | start-up | RSS | every ipykernel pass passes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        a, b = r["ipykernel"], r["kernelkit"]
        sa, sb = a["check"]["summary"], b["check"]["summary"]
        passed = {c["check"] for c in a["check"]["results"] if c["result"] == "pass"}
        kept = passed <= {c["check"] for c in b["check"]["results"] if c["result"] == "pass"}
        lines.append(
            f"| `{r['kernel']}` | {sa['pass']} / {sa['fail']} / {sa['skip']} "
            f"| {a['startup_ms']:.0f} ms | {a['rss_mb']:.1f} MB "
            f"| {sb['pass']} / {sb['fail']} / {sb['skip']} "
            f"| {b['startup_ms']:.0f} ms | {b['rss_mb']:.1f} MB | {'yes' if kept else '**no**'} |")
    for r in rows:
        diffs = differences(r["ipykernel"]["check"], r["kernelkit"]["check"])
        lines += ["", f"### `{r['kernel']}`: checks whose result differs", ""]
        if not diffs:
            lines.append("None.")
            continue
        lines += ["| check | on ipykernel | adopted on kernelkit |", "|---|---|---|"]
        lines += [f"| `{name}` | {x} | {y} |" for name, x, y in diffs]
    return "\n".join(lines)


def main() -> int:
    parser = arguments(__doc__, "kernelkit-compatibility", list(KERNELS))
    parser.add_argument("--runs", type=int, default=5, help="starts per kernel (default 5)")
    args = parser.parse_args()
    venv = Path(args.venv).resolve()
    env = setup(venv)
    t0 = time.time()
    rows = []
    for kernel in [k for k in args.kernels.split(",") if k]:
        row: dict[str, Any] = {"kernel": kernel}
        for engine, name in (("ipykernel", kernel), ("kernelkit", f"{kernel}-kernelkit")):
            # Each run from the same state: metakernel reads a language's history back
            # from IPython's folder, written by whichever run ended before.
            fresh = {**env, "IPYTHONDIR": str(venv / "jupyter" / "ipython" / name)}
            row[engine] = {"check": check(venv, fresh, name, args.timeout),
                           **measure(venv, env, name, KERNELS[kernel].code, args.runs)}
        rows.append(row)
    meta = {**run_meta("compatibility.py", versions(venv, env, VERSIONS_OF)), "runs": args.runs}
    print(f"compared {len(rows)} kernels in {time.time() - t0:.0f}s", file=sys.stderr)
    return publish(DOC, markdown(rows, meta), args.no_write)


if __name__ == "__main__":
    sys.exit(main())
