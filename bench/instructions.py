"""CPU work of a kernel counted in instructions (valgrind's callgrind): repeatable where time is not.

python -m bench.instructions                     # kernelkit Echo and the floor
python -m bench.instructions --tree OLD=/path    # and kernelkit Echo from another checkout
python -m bench.instructions --smoke             # a few executes: keeps the command working

On a noisy 2-core machine two timings of the same kernel differ by 10 %, so a change worth
3 % cannot be seen in them. The count of instructions the kernel process executes (all its
threads, libzmq's included) hardly moves from run to run. Two figures per kernel:

* **start-up**: from the process's first instruction to the moment the client has the first
  ``kernel_info_reply`` (the kernel is then dumped and killed, so its exit is not counted);
* **per execute**: after 30 warm-up executes the counters are zeroed, N executes of ``hi``
  run, and the total is divided by N.

This is CPU work, not latency: what a round trip also waits for (thread and process wake-ups,
the client) is not here. Under valgrind a kernel runs some 50 times slower, so nothing is timed.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import zmq

from bench.client import Running

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 30


def echo_argv() -> list[str]:
    return [sys.executable, "-m", "kernelkit", "run", "echo", "-f", "{connection_file}"]


def floor_argv() -> list[str]:
    code = f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import floor"
    return [sys.executable, "-c", code, "{connection_file}"]


def _total(out_dir: str) -> int:
    """The instructions in callgrind's dump files (one per dump; the last, at the kill, is empty)."""
    total = 0
    for path in glob.glob(os.path.join(out_dir, "callgrind.*")):
        with open(path) as f:
            for line in f:
                if line.startswith("summary:"):
                    total += int(line.split()[1])
    return total


def _control(flag: str, pid: int) -> None:
    subprocess.run(["callgrind_control", flag, str(pid)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(label: str, argv: list[str], env: dict[str, str] | None, executes: int
            ) -> tuple[int, int]:
    """(instructions to the first reply, instructions per execute) of one kernel."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    out = tempfile.mkdtemp(prefix="kk-callgrind-")
    try:
        # Start-up: dumped as soon as the first reply is in.
        kernel = Running(label, ["valgrind", "--tool=callgrind",
                                 f"--callgrind-out-file={out}/callgrind.%p", *argv], env)
        kernel._launch(ctx, timeout=300)  # up to the first reply, without start()'s settling
        assert kernel.proc is not None
        _control("-d", kernel.proc.pid)
        startup = _total(out)
        kernel.settle_iopub(timeout=120)
        # Per execute: counters zeroed after a warm-up, dumped after the timed executes.
        for _ in range(WARMUP):
            kernel.execute("hi", timeout=120)
        _control("-z", kernel.proc.pid)
        for path in glob.glob(os.path.join(out, "callgrind.*")):
            os.unlink(path)
        for _ in range(executes):
            kernel.execute("hi", timeout=120)
        _control("-d", kernel.proc.pid)
        per_execute = _total(out) // executes
        kernel.proc.kill()
        kernel.proc.wait()
        kernel.proc = None
        kernel.stop()
        return startup, per_execute
    finally:
        shutil.rmtree(out, ignore_errors=True)
        ctx.term()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executes", type=int, default=200)
    parser.add_argument("--tree", action="append", default=[], metavar="LABEL=DIR",
                        help="also kernelkit Echo from DIR's src/ (another checkout)")
    parser.add_argument("--smoke", action="store_true", help="a few executes")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind): nothing measured")
        return 0
    executes = 3 if args.smoke else args.executes
    kernels: list[tuple[str, list[str], dict[str, str] | None]] = []
    for spec in args.tree:
        label, _, folder = spec.partition("=")
        src = str(Path(folder).resolve() / "src")
        subprocess.run([sys.executable, "-m", "compileall", "-q", src], check=True,
                       stdout=subprocess.DEVNULL)
        kernels.append((f"kernelkit Echo ({label})", echo_argv(), {"PYTHONPATH": src}))
    import compileall

    import kernelkit

    # From bytecode caches, as `python -m bench` starts them.
    for folder in (Path(kernelkit.__file__).parent, ROOT / "bench"):
        compileall.compile_dir(str(folder), quiet=1)
    kernels += [("kernelkit Echo", echo_argv(), None), ("floor", floor_argv(), None)]
    rows = [(label, *measure(label, cmd, env, executes)) for label, cmd, env in kernels]
    floor_start, floor_exec = rows[-1][1], rows[-1][2]
    print(f"{executes} executes after {WARMUP} warm-up; instructions of the whole kernel "
          "process (callgrind)\n")
    print("| kernel | start-up (M instructions) | × floor | per execute (K instructions) "
          "| × floor |")
    print("|---|---:|---:|---:|---:|")
    for label, start, per in rows:
        print(f"| {label} | {start / 1e6:.1f} | {start / floor_start:.3f} | {per / 1e3:.0f} "
              f"| {per / floor_exec:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
