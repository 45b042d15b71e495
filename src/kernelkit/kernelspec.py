"""Kernelspecs: the ``kernel.json`` files through which Jupyter finds and launches kernels.

Follows Jupyter's layout (``<data dir>/kernels/<name>/kernel.json``) and search
path without importing jupyter_client or jupyter_core, which the kernel's own
environment need not have.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .connection import jupyter_data_dir, make_dirs, replace_file
from .errors import UsageError
from .wire import PROTOCOL_VERSION

NAME_RE = re.compile(r"^[a-z0-9._-]+$", re.IGNORECASE)


class KernelspecError(UsageError):
    """A kernelspec that cannot be written, found or removed (exit code 2)."""


@dataclass
class InstalledSpec:
    name: str
    path: Path
    spec: dict[str, Any]

    @property
    def is_kernelkit(self) -> bool:
        argv = self.spec.get("argv") or []
        return "kernelkit" in argv or "kernelkit" in (self.spec.get("metadata") or {})


def prefer_environment() -> bool:
    """Whether this Python environment's folder is searched before the user's.

    jupyter_core's rule: JUPYTER_PREFER_ENV_PATH decides if set; otherwise a
    virtualenv, or a non-base conda env, owned by the user comes first.
    """
    env = os.environ.get("JUPYTER_PREFER_ENV_PATH")
    if env is not None:
        return env.lower() not in ("", "0", "false", "no", "off", "n", "f")
    owned = os.access(sys.prefix, os.W_OK)
    if sys.prefix != sys.base_prefix and owned:
        return True
    conda = os.environ.get("CONDA_PREFIX")
    return bool(
        conda
        and sys.prefix.startswith(conda)
        and os.environ.get("CONDA_DEFAULT_ENV", "base") != "base"
        and owned
    )


def data_dirs() -> list[Path]:
    """Jupyter's data search path, most specific first (as jupyter_core orders it)."""
    dirs: list[Path] = []
    for entry in os.environ.get("JUPYTER_PATH", "").split(os.pathsep):
        if entry:
            dirs.append(Path(entry))
    user, env = jupyter_data_dir(), Path(sys.prefix) / "share" / "jupyter"
    dirs += [env, user] if prefer_environment() else [user, env]
    if os.name != "nt":
        dirs += [Path("/usr/local/share/jupyter"), Path("/usr/share/jupyter")]
    seen: set[Path] = set()
    unique = []
    for d in dirs:
        if d not in seen:
            seen.add(d)
            unique.append(d)
    return unique


def target_dir(user: bool = False, sys_prefix: bool = False, prefix: str | None = None) -> Path:
    """The ``kernels`` folder an install writes to; the user's data dir by default."""
    if prefix:
        return Path(prefix) / "share" / "jupyter" / "kernels"
    if sys_prefix:
        return Path(sys.prefix) / "share" / "jupyter" / "kernels"
    return jupyter_data_dir() / "kernels"


def spec_metadata(kernelkit: dict[str, Any]) -> dict[str, Any]:
    """A kernelspec's ``metadata``: kernelkit's own entry, and CurveZMQ support if libzmq has it.

    ``supported_encryption: ["curve"]`` lets jupyter_client (>= 8.9) provision Curve keys
    in the connection file (``transport_encryption`` "auto" or "required").
    """
    import zmq

    metadata: dict[str, Any] = {"kernelkit": kernelkit}
    if zmq.has("curve"):
        metadata["supported_encryption"] = ["curve"]
    return metadata


def run_argv(kernel: str, path: str | None = None) -> list[str]:
    """How Jupyter starts a kernelkit kernel (`kernelkit run`), ``{connection_file}`` to fill."""
    argv = [sys.executable, "-m", "kernelkit", "run", kernel]
    if path:
        argv += ["--path", path]
    return [*argv, "-f", "{connection_file}"]


def bridge_argv(command: list[str]) -> list[str]:
    """How Jupyter starts a bridge kernel whose backend is ``command`` (`kernelkit bridge`)."""
    return [sys.executable, "-m", "kernelkit", "bridge", "-f", "{connection_file}", "--",
            *command]


def make_spec(
    kernel: str,
    display_name: str,
    language: str,
    interrupt_mode: str = "signal",
    path: str | None = None,
) -> dict[str, Any]:
    """The kernel.json of a kernel class run by ``kernelkit run``."""
    return _spec(run_argv(kernel, path), display_name, language, interrupt_mode,
                 {"kernel": kernel})


def bridge_spec(command: list[str], display_name: str, language: str,
                interrupt_mode: str = "signal") -> dict[str, Any]:
    """The kernel.json of a bridge kernel whose backend is ``command``."""
    return _spec(bridge_argv(command), display_name, language, interrupt_mode,
                 {"bridge": command})


def _spec(argv: list[str], display_name: str, language: str, interrupt_mode: str,
          kernelkit: dict[str, Any]) -> dict[str, Any]:
    return {
        "argv": argv,
        "display_name": display_name,
        "language": language,
        "interrupt_mode": interrupt_mode,
        "kernel_protocol_version": PROTOCOL_VERSION,
        "metadata": spec_metadata(kernelkit),
    }


def install(spec: dict[str, Any], name: str, kernels_dir: Path) -> Path:
    if not NAME_RE.match(name):
        raise KernelspecError(f"bad kernelspec name {name!r}: use letters, digits, '.', '_' or '-'")
    dest = kernels_dir / name.lower()
    try:
        # Readable by all (Jupyter may run as another user), writable by the owner only,
        # whatever the umask: a kernel.json anyone can write is code anyone can run.
        make_dirs(dest, 0o755)
        replace_file(dest / "kernel.json", (json.dumps(spec, indent=2) + "\n").encode(), 0o644)
    except OSError as exc:
        raise KernelspecError(f"cannot write kernelspec to {dest}: {exc.strerror}") from None
    return dest


def find_all() -> list[InstalledSpec]:
    """Every kernelspec on Jupyter's path; the first of a name wins, as in Jupyter."""
    found: dict[str, InstalledSpec] = {}
    for data in data_dirs():
        kernels = data / "kernels"
        if not kernels.is_dir():
            continue
        for entry in sorted(kernels.iterdir()):
            name = entry.name.lower()
            if name in found or not (entry / "kernel.json").is_file():
                continue
            try:
                spec = json.loads((entry / "kernel.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(spec, dict):
                found[name] = InstalledSpec(name, entry, spec)
    return sorted(found.values(), key=lambda s: s.name)


def remove(name: str) -> Path:
    """Delete a kernelkit kernelspec; refuses other kernels' specs."""
    for spec in find_all():
        if spec.name == name.lower():
            if not spec.is_kernelkit:
                raise KernelspecError(
                    f"kernelspec {name!r} at {spec.path} is not a kernelkit kernel; "
                    "use `jupyter kernelspec remove` for it"
                )
            try:
                shutil.rmtree(spec.path)
            except OSError as exc:
                raise KernelspecError(f"cannot remove {spec.path}: {exc.strerror}") from None
            return spec.path
    raise KernelspecError(f"no kernelspec named {name!r}")


def probe_with_env(env: list[tuple[str, str]]) -> None:
    """Look for the kernel as it will run: with the kernelspec's env (PYTHONPATH among it)."""
    for name, value in env:
        os.environ[name] = value
        if name == "PYTHONPATH":
            sys.path[:0] = [p for p in value.split(os.pathsep) if p]


def for_gateway(args: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """The kernelspec as written, or, with --remote-launcher, the one a gateway needs."""
    if args.remote_launcher is None:
        if args.remote_hosts:
            raise UsageError("--remote-hosts is for --remote-launcher")
        return spec
    from .launch import remote_spec

    spec = remote_spec(spec, args.remote_launcher, args.remote_hosts)
    if not args.display_name:
        spec["display_name"] += " (remote)"
    return spec
