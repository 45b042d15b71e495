"""``kernelkit adopt``: an installed ipykernel wrapper kernel, run unchanged on kernelkit.

It reads the kernelspec (``python -m octave_kernel -f {connection_file}``), learns which
kernel class that command launches by running the module's ``__main__`` as far as its
``IPKernelApp.launch_instance`` in a child process (compat.run.find_kernel), and writes
a second kernelspec beside it that runs the same command under
``kernelkit run --ipykernel-compat``. The original stays as it was; the copy keeps its
language, env, logos and metadata, and says in ``metadata.kernelkit`` what it adopted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .kernelspec import InstalledSpec, KernelspecError, find_all, install, target_dir

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

# argv[0] values that jupyter_client replaces with its own sys.executable.
PYTHON_NAMES = frozenset({"python", "python3", "python{}.{}".format(*sys.version_info[:2])})
# How long finding a kernel's class may take (s): it imports the kernel's module.
FIND_TIMEOUT = 30.0


def add_parser(sub: Any, env_pair: Callable[[str], tuple[str, str]]) -> None:
    p = sub.add_parser(
        "adopt",
        help="install a kernelkit variant of an installed ipykernel wrapper kernel, unchanged",
    )
    p.add_argument("spec", metavar="KERNELSPEC", nargs="?", help="the installed kernelspec's name")
    p.add_argument("--list", action="store_true",
                   help="show the installed kernelspecs and whether each can be adopted")
    p.add_argument("--kernel", metavar="MODULE:CLASS",
                   help="the kernel class to run, when the kernelspec does not say")
    p.add_argument("--name", help="the new kernelspec's name (default: KERNELSPEC-kernelkit)")
    p.add_argument("--display-name", help="name shown in Jupyter's menus (default: "
                   "the original's, with \"(kernelkit)\")")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for this user (default)")
    where.add_argument("--sys-prefix", action="store_true",
                       help="install into this Python environment (sys.prefix)")
    where.add_argument("--prefix", metavar="P", help="install under P/share/jupyter/kernels")
    p.add_argument("--env", metavar="NAME=VALUE", action="append", default=[], type=env_pair,
                   help="set NAME in the kernel's environment; repeatable")


class Candidate:
    """An installed kernelspec and what adopting it would run, or why it cannot be adopted."""

    def __init__(self, spec: InstalledSpec) -> None:
        self.spec = spec
        self.python = ""
        self.module = ""
        self.args: list[str] = []
        self.kernel = ""
        self.reason = ""

    @property
    def adoptable(self) -> bool:
        return not self.reason


def examine(spec: InstalledSpec, kernel: str | None = None, find: bool = True) -> Candidate:
    """Read a kernelspec's argv; with ``find``, learn the class it launches."""
    cand = Candidate(spec)
    argv = [str(a) for a in spec.spec.get("argv") or []]
    if spec.is_kernelkit:
        cand.reason = "it is a kernelkit kernel already"
        return cand
    if len(argv) < 3 or argv[1] != "-m":
        cand.reason = "its argv is not `python -m MODULE ...`"
        if argv and not _is_python(argv[0]):
            cand.reason = f"it does not run Python ({argv[0]})"
        return cand
    cand.python, cand.module, cand.args = argv[0], argv[2], argv[3:]
    if not _is_python(cand.python):
        cand.reason = f"it does not run Python ({cand.python})"
        return cand
    if cand.module in ("ipykernel", "ipykernel_launcher"):
        cand.reason = "it is ipykernel's own IPython kernel, not a wrapper kernel"
        return cand
    if kernel:
        cand.kernel = kernel
    elif find:
        try:
            cand.kernel = find_kernel(_python(cand.python), cand.module, cand.args,
                                      spec.spec.get("env"))
        except LookupError as exc:
            cand.reason = str(exc)
    return cand


def _is_python(exe: str) -> bool:
    return os.path.basename(exe).lower().startswith("python")


def _python(exe: str) -> str:
    """The Python a kernelspec's argv[0] names, as Jupyter would run it."""
    if exe in PYTHON_NAMES:
        return sys.executable
    return shutil.which(exe) or exe


def find_kernel(python: str, module: str, args: list[str],
                env: dict[str, str] | None = None) -> str:
    """``module:Class`` that ``python -m module args`` launches (LookupError says why not).

    It runs with the kernelspec's ``env``, as Jupyter would run the kernel: a module found
    through its PYTHONPATH is found here too.
    """
    with tempfile.TemporaryDirectory(prefix="kernelkit-adopt-") as tmp:
        out = Path(tmp) / "found.json"
        code = ("import json, sys\n"
                "from kernelkit.compat.run import find_kernel\n"
                "out, module, args = sys.argv[1], sys.argv[2], sys.argv[3:]\n"
                "found = find_kernel(module, args)\n"
                "open(out, 'w').write(json.dumps(found))\n")
        # Jupyter's placeholders, as it would fill them (nothing is started).
        args = [a.replace("{connection_file}", str(Path(tmp) / "kernel.json"))
                .replace("{resource_dir}", tmp) for a in args]
        try:
            done = subprocess.run([python, "-c", code, str(out), module, *args],
                                  capture_output=True, text=True, timeout=FIND_TIMEOUT,
                                  stdin=subprocess.DEVNULL, cwd=tmp,
                                  env={**os.environ, **_strings(env)})
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LookupError(f"running {python} failed: {exc}") from None
        if not out.exists():
            lines = (done.stderr or done.stdout).strip().splitlines()
            last = lines[-1] if lines else f"exit code {done.returncode}"
            if "No module named 'kernelkit'" in (done.stderr or ""):
                last = f"kernelkit is not installed in {python}"
            if "does not launch through ipykernel" in last or "no module named" in last:
                last = last.split(": ", 1)[1] if last.startswith("LookupError: ") else last
                raise LookupError(last)
            raise LookupError(f"could not learn its kernel class: {last}")
        return str(json.loads(out.read_text())["kernel"])


def _strings(env: Any) -> dict[str, str]:
    if not isinstance(env, dict):
        return {}
    return {str(k): str(v) for k, v in env.items()}


def run(args: argparse.Namespace) -> int:
    if args.list:
        return _list()
    if not args.spec:
        raise UsageError("adopt needs KERNELSPEC (see `kernelkit adopt --list`)")
    spec = _find(args.spec)
    cand = examine(spec, args.kernel)
    if not cand.adoptable:
        raise UsageError(f"kernelspec {spec.name!r} cannot be adopted: {cand.reason}")
    name = args.name or f"{spec.name}-kernelkit"
    new = adopted_spec(cand, args.display_name, dict(args.env), given_kernel=bool(args.kernel))
    if "name" in new:  # (metakernel writes its kernelspec's name into kernel.json)
        new["name"] = name.lower()
    dest = install(new, name, target_dir(args.user, args.sys_prefix, args.prefix))
    _copy_resources(spec.path, dest)
    print(f"adopted {spec.name} ({cand.kernel}) as kernelspec {name.lower()} in {dest}")
    return 0


def adopted_spec(cand: Candidate, display_name: str | None, env: dict[str, str],
                 given_kernel: bool = False) -> dict[str, Any]:
    """The new kernel.json: the original's, with its argv run under --ipykernel-compat."""
    original = cand.spec.spec
    head = [cand.python, "-m", "kernelkit", "run", "--ipykernel-compat"]
    if given_kernel:
        argv = [*head, cand.kernel, "-f", "{connection_file}"]
    else:
        argv = [*head, "-m", cand.module, "--", *cand.args]
    new = {k: v for k, v in original.items() if k not in ("argv", "display_name")}
    new["argv"] = argv
    shown = original.get("display_name", cand.spec.name)
    new["display_name"] = display_name or f"{shown} (kernelkit)"
    metadata = dict(original.get("metadata") or {})
    metadata["kernelkit"] = {"adopted": cand.spec.name, "kernel": cand.kernel}
    new["metadata"] = metadata
    if env:
        new["env"] = {**(original.get("env") or {}), **env}
    return new


def _copy_resources(src: Path, dest: Path) -> None:
    """Logos and kernel.js: what a frontend shows for the kernel."""
    for entry in src.iterdir():
        if entry.name != "kernel.json" and entry.is_file():
            try:
                shutil.copyfile(entry, dest / entry.name)
            except OSError as exc:
                raise KernelspecError(f"cannot copy {entry} to {dest}: {exc.strerror}") from None


def _find(name: str) -> InstalledSpec:
    for spec in find_all():
        if spec.name == name.lower():
            return spec
    raise KernelspecError(f"no kernelspec named {name!r} (see `kernelkit adopt --list`)")


def _list() -> int:
    specs = find_all()
    if not specs:
        print("no kernelspecs are installed")
        return 0
    width = max(len(s.name) for s in specs)
    for spec in specs:
        cand = examine(spec)
        status = f"can be adopted: {cand.kernel}" if cand.adoptable else f"no: {cand.reason}"
        print(f"  {spec.name:<{width}}  {status}")
    return 0
