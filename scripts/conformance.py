#!/usr/bin/env python3
"""Run ``kernelkit check`` against peer kernels and write the results into docs/conformance.md.

    python3 scripts/conformance.py [--venv DIR] [--kernels K1,K2] [--timeout S] [--no-write]

It makes (or reuses) a virtual environment with kernelkit (editable, from this
checkout), rich, jupyter_client and the peers from PyPI, in isolated Jupyter
directories so that no kernelspec of the machine's own is picked up:

* ``kernelkit-echo`` — this project's Echo kernel (the reference);
* ``echo``    — ipykernel's example Echo kernel (PyPI ``echo_kernel``,
  installed with ``python -m echo_kernel.install --sys-prefix``);
* ``python3`` — ipykernel's Python kernel (PyPI ``ipykernel``);
* ``xpython`` — xeus-python (PyPI ``xeus-python``);
* ``deno``    — Deno's kernel (PyPI ``deno``, installed with ``deno jupyter --install``);
* ``kernelkit-typescript`` — this project's TypeScript kernel on Deno, installed into the
  venv with ``kernelkit install typescript --sys-prefix`` (run by the venv's deno, the same
  one ``deno jupyter`` runs from, so both TypeScript kernels run on the same Deno).

Each kernel is checked with its built-in samples (see ``kernelkit/check/samples.py``), but
the two TypeScript kernels, ``deno`` and ``kernelkit-typescript``, are both checked with
tests/support/typescript_samples.toml (over Deno's built-in samples), so that their results
compare like for like; ``deno`` without its ``[comm]`` table (see ``samples_for``).
the Python ones carry a ``[comm]`` sample whose setup code registers an echoing comm
target through the ``comm`` package (ipykernel and xeus-python both provide it), so the
comms group's round trip runs for ``python3`` and ``xpython``; the other kernels have no
way to register a target from code and skip it.
The results replace what is between the ``results`` markers of docs/conformance.md;
the rest of the file (the findings, written by hand) is left alone.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "conformance.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
KERNELS = ["kernelkit-echo", "echo", "python3", "xpython", "deno", "kernelkit-typescript"]
PACKAGES = ["rich", "jupyter_client", "ipykernel", "echo_kernel", "xeus-python", "deno"]
VERSIONS_OF = ["kernelkit", "jupyter_client", "ipykernel", "echo-kernel", "xeus-python", "deno",
               "pyzmq"]


# Samples files by kernel (over its built-in samples); the other kernels use the built-in ones.
TYPESCRIPT_SAMPLES = ROOT / "tests" / "support" / "typescript_samples.toml"
SAMPLES = {"deno": TYPESCRIPT_SAMPLES, "kernelkit-typescript": TYPESCRIPT_SAMPLES}


def samples_for(kernel: str, venv: Path) -> Path | None:
    """The samples file to check a kernel with, or None for its built-in samples alone.

    ``deno`` gets the TypeScript samples without their ``[comm]`` table, whose setup imports
    kernelkit's ``kernelkit:comms``: a ``deno jupyter`` cell cannot register a comm target.
    """
    if kernel not in SAMPLES:
        return None
    path = SAMPLES[kernel]
    if kernel != "deno":
        return path
    kept, keep = [], True
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.startswith("["):
            keep = not line.startswith("[comm]")
        if keep:
            kept.append(line)
    out = venv / "deno_samples.toml"
    out.write_text("".join(kept), encoding="utf-8")
    return out


def sh(cmd: list[str], env: dict[str, str] | None = None, **kw: Any) -> str:
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    done = subprocess.run(cmd, env=env, check=True, text=True, stdout=subprocess.PIPE, **kw)
    out: str = done.stdout
    return out


def venv_env(venv: Path, packages: list[str], jupyter_path: Path) -> dict[str, str]:
    """Make (or reuse) the venv with kernelkit and ``packages``; the environment to run in.

    Jupyter's folders are the venv's own: only its kernelspecs (sys.prefix) and those on
    ``jupyter_path`` are found, never the machine's.
    """
    python = venv / "bin" / "python"
    if not python.exists():
        sh([sys.executable, "-m", "venv", str(venv)])
    sh([str(python), "-m", "pip", "install", "-q", "-e", str(ROOT), *packages])
    env = dict(os.environ)
    jupyter = venv / "jupyter"
    env.update({
        "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "VIRTUAL_ENV": str(venv),
        "JUPYTER_DATA_DIR": str(jupyter / "data"),
        "JUPYTER_CONFIG_DIR": str(jupyter / "config"),
        "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime"),
        "JUPYTER_PATH": str(jupyter_path),
        "JUPYTER_PLATFORM_DIRS": "1",
        "IPYTHONDIR": str(jupyter / "ipython"),  # (metakernel keeps its history there)
        "DENO_NO_UPDATE_CHECK": "1",
        "COLUMNS": "200",
    })
    env.pop("PYTHONPATH", None)
    return env


def setup(venv: Path) -> dict[str, str]:
    """The venv with everything installed, and the environment to run the kernels in."""
    python = venv / "bin" / "python"
    jupyter = venv / "jupyter"
    env = venv_env(venv, PACKAGES, jupyter / "xdg" / "jupyter")
    sh([str(python), "-m", "echo_kernel.install", "--sys-prefix"], env=env)
    # deno writes its kernelspec under $XDG_DATA_HOME/jupyter/kernels.
    sh([str(venv / "bin" / "deno"), "jupyter", "--install", "--force"],
       env={**env, "XDG_DATA_HOME": str(jupyter / "xdg")})
    # kernelkit's TypeScript kernel: its parsers are fetched once (npm) into the venv's
    # share/kernelkit, then it runs offline; the deno beside the venv's python runs it.
    sh([str(python), "-m", "kernelkit", "install", "typescript", "--sys-prefix"], env=env)
    return env


def versions(venv: Path, env: dict[str, str],
             names: list[str] = VERSIONS_OF) -> dict[str, str]:
    out = sh([str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"], env=env)
    have = {p["name"].lower(): p["version"] for p in json.loads(out)}
    return {name: have.get(name.lower(), "?") for name in names}


def check(venv: Path, env: dict[str, str], kernel: str, timeout: float) -> dict[str, Any]:
    cmd = [str(venv / "bin" / "python"), "-m", "kernelkit.check", kernel, "--json",
           "--timeout", str(timeout)]
    samples = samples_for(kernel, venv)
    if samples is not None:
        cmd += ["--samples", str(samples)]
    print("+", " ".join(cmd[2:]), file=sys.stderr, flush=True)
    done = subprocess.run(cmd, env=env, text=True, stdout=subprocess.PIPE,
                          cwd=tempfile.gettempdir())
    if done.returncode not in (0, 1):
        raise SystemExit(f"kernelkit check {kernel} exited {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def preamble(meta: dict[str, Any], note: str = "") -> list[str]:
    """Where, when and how the results were made; the versions they were made with."""
    return [
        f"Generated {meta['date']} on {meta['machine']} by",
        "",
        f"```bash\n{meta['command']}\n```",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
        + f", Python {meta['python']}." + (f" {note}" if note else ""),
    ]


def clean(reason: str) -> str:
    """A check's reason as one table cell: no pipes, newlines or unprintable characters."""
    reason = reason.replace("|", "\\|").replace("\n", " ")
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in reason)


def write_results(doc: Path, text: str) -> None:
    """Replace what is between the results markers of ``doc`` (made if missing)."""
    old = doc.read_text(encoding="utf-8") if doc.exists() else f"{START}\n{END}\n"
    if START not in old or END not in old:
        raise SystemExit(f"{doc} has no {START} ... {END} markers")
    head, rest = old.split(START, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{START}\n{text}\n{END}{tail}", encoding="utf-8")
    print(f"wrote {doc}", file=sys.stderr)


def markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        *preamble(meta),
        "",
        "| kernel | implementation | protocol | interrupt | pass | fail | skip |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r["summary"]
        lines.append(f"| `{r['kernel']}` | {r['implementation']} {r['implementation_version']} "
                     f"| {r['protocol_version']} | {r['interrupt_mode']} "
                     f"| {s['pass']} | {s['fail']} | {s['skip']} |")
    lines += ["", *group_table(results)]
    for r in results:
        s = r["summary"]
        lines += [
            "",
            f"### `{r['kernel']}` — {r['display_name']}",
            "",
            f"{r['implementation']} {r['implementation_version']}, protocol "
            f"{r['protocol_version']}, interrupt mode {r['interrupt_mode']}, samples: "
            f"{_relative(r['samples'])}. {s['pass']} passed, {s['fail']} failed, "
            f"{s['skip']} skipped in {s['seconds']:.1f}s; {s['messages']} messages validated.",
            "",
            "| check | result | reason | time |",
            "|---|---|---|---|",
        ]
        for c in r["results"]:
            reason = clean(c["reason"])
            mark = {"pass": "pass", "fail": "**fail**", "skip": "skip"}[c["result"]]
            lines.append(f"| `{c['check']}` | {mark} | {reason} | {c['time']:.2f}s |")
    return "\n".join(lines)


def group_table(results: list[dict[str, Any]]) -> list[str]:
    """Kernels by group: which pass a group (every check of it that ran), which fail it."""
    groups: list[str] = []
    for r in results:
        for c in r["results"]:
            if c["group"] not in groups:
                groups.append(c["group"])
    lines = ["By group (a group passes when none of its checks fails; skipped checks are "
             "counted apart):", "",
             "| kernel | " + " | ".join(f"`{g}`" for g in groups) + " |",
             "|---|" + "---|" * len(groups)]
    for r in results:
        cells = []
        for g in groups:
            n = {"pass": 0, "fail": 0, "skip": 0}
            for c in r["results"]:
                if c["group"] == g:
                    n[c["result"]] += 1
            if n["fail"]:
                cell = f"**fail** {n['fail']} of {sum(n.values())}"
            elif n["pass"]:
                cell = f"pass {n['pass']}" + (f", skip {n['skip']}" if n["skip"] else "")
            else:
                cell = f"skip {n['skip']}" if n["skip"] else "-"
            cells.append(cell)
        lines.append(f"| `{r['kernel']}` | " + " | ".join(cells) + " |")
    return lines


def arguments(doc: str | None, venv: str, kernels: list[str]) -> argparse.ArgumentParser:
    """The options both scripts take: --venv, --kernels, --timeout, --no-write."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--venv", default=str(Path(tempfile.gettempdir()) / venv),
                        help="virtual environment to make or reuse")
    parser.add_argument("--kernels", default=",".join(kernels))
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--no-write", action="store_true", help="print, do not edit the doc")
    return parser


def main() -> int:
    args = arguments(__doc__, "kernelkit-conformance", KERNELS).parse_args()
    venv = Path(args.venv).resolve()
    env = setup(venv)
    t0 = time.time()
    results = [check(venv, env, k, args.timeout) for k in args.kernels.split(",") if k]
    meta = run_meta("conformance.py", versions(venv, env))
    print(f"checked {len(results)} kernels in {time.time() - t0:.0f}s", file=sys.stderr)
    return publish(DOC, markdown(results, meta), args.no_write)


def run_meta(script: str, versions: dict[str, str]) -> dict[str, Any]:
    """When, where and with what a run was made (for ``preamble``)."""
    uname = platform.uname()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{uname.system} {uname.release} {uname.machine}, {os.cpu_count()} cores",
        "command": " ".join(["python3", f"scripts/{script}", *sys.argv[1:]]),
        "versions": versions,
        "python": platform.python_version(),
    }


def publish(doc: Path, text: str, no_write: bool) -> int:
    """Print the results (``--no-write``) or put them into the doc."""
    if no_write:
        print(text)
    else:
        write_results(doc, text)
    return 0



def _relative(samples: str) -> str:
    """A samples file in this checkout as a path from its root: no machine's paths in docs."""
    path = Path(samples)
    return str(path.relative_to(ROOT)) if path.is_absolute() and path.is_relative_to(ROOT) \
        else samples

if __name__ == "__main__":
    sys.exit(main())
