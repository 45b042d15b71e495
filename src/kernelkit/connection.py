"""Connection files: where the five channels listen and how messages are signed.

The format is jupyter_client's: a JSON object with ``transport``, ``ip``, the five
``*_port`` numbers, ``key`` and ``signature_scheme`` (plus ``kernel_name``), and, when
the client asks for transport encryption (jupyter_client >= 8.9), the kernel's CurveZMQ
keypair ``curve_publickey`` / ``curve_secretkey`` (Z85 text).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

CHANNELS = ("shell", "iopub", "stdin", "control", "hb")

# Field names and defaults, in connection-file order. A plain class rather than a
# dataclass: importing dataclasses (and, through it, inspect) costs every kernel
# several milliseconds of start-up.
FIELDS: dict[str, Any] = {
    "transport": "tcp",
    "ip": "127.0.0.1",
    "shell_port": 0,
    "iopub_port": 0,
    "stdin_port": 0,
    "control_port": 0,
    "hb_port": 0,
    "key": "",
    "signature_scheme": "hmac-sha256",
    "kernel_name": "",
    # CurveZMQ: the kernel's sockets are Curve servers with this keypair (Z85), if set.
    "curve_publickey": None,
    "curve_secretkey": None,
}


class ConnectionFileError(ValueError):
    """A connection file that cannot be read or makes no sense."""


# Where a kernel may choose its ports when the connection file leaves them 0: "LO..HI",
# inclusive (a gateway's launcher sets it so that only a firewall's open range is used).
PORT_RANGE_ENV = "KERNELKIT_PORT_RANGE"


def parse_port_range(text: str) -> tuple[int, int] | None:
    """``"LO..HI"`` as (LO, HI), inclusive; ``"0..0"`` or ``""`` mean any port (None).

    Enterprise Gateway's spelling. A range too narrow for a kernel's five ports and a
    launcher's one is refused rather than left to fail at bind time.
    """
    text = text.strip()
    if text in ("", "0..0"):
        return None
    lo_text, sep, hi_text = text.partition("..")
    try:
        lo, hi = int(lo_text), int(hi_text)
    except ValueError:
        lo = hi = -1
    if not sep or not 1 <= lo <= hi <= 65535:
        raise ValueError(f"port range {text!r} is not LO..HI with 1 <= LO <= HI <= 65535")
    if hi - lo + 1 < len(CHANNELS) + 1:
        raise ValueError(f"port range {text!r} holds fewer than {len(CHANNELS) + 1} ports")
    return lo, hi


class ConnectionInfo:
    """Everything a client needs to reach the kernel, as in a connection file."""

    transport: str
    ip: str
    shell_port: int
    iopub_port: int
    stdin_port: int
    control_port: int
    hb_port: int
    key: str
    signature_scheme: str
    kernel_name: str
    curve_publickey: str | None
    curve_secretkey: str | None

    def __init__(self, extra: dict[str, Any] | None = None, **values: Any) -> None:
        unknown = set(values) - set(FIELDS)
        if unknown:
            raise TypeError(f"unknown connection fields: {', '.join(sorted(unknown))}")
        for name, default in FIELDS.items():
            setattr(self, name, values.get(name, default))
        self.extra: dict[str, Any] = dict(extra or {})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConnectionInfo):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={getattr(self, k)!r}" for k in FIELDS if k != "curve_secretkey")
        return f"ConnectionInfo({shown})"

    def ports(self) -> list[int]:
        return [self.port(channel) for channel in CHANNELS]

    def port(self, channel: str) -> int:
        return int(getattr(self, f"{channel}_port"))

    def set_port(self, channel: str, port: int) -> None:
        setattr(self, f"{channel}_port", port)

    def url(self, channel: str) -> str:
        """The ZeroMQ endpoint of one channel; ipc uses jupyter_client's ``<ip>-<port>`` path."""
        if self.transport == "ipc":
            return f"ipc://{self.ip}-{self.port(channel)}"
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{self.transport}://{host}:{self.port(channel)}"

    def ipc_paths(self) -> list[str]:
        """The socket files of an ipc transport (libzmq leaves them behind at close)."""
        if self.transport != "ipc":
            return []
        return [f"{self.ip}-{port}" for port in self.ports()]

    @property
    def curve(self) -> bool:
        """Whether the channels are encrypted with CurveZMQ."""
        return self.curve_secretkey is not None

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in FIELDS}
        data.update(self.extra)
        if not self.curve:  # jupyter_client turns Curve on when the keys are present at all
            del data["curve_publickey"], data["curve_secretkey"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConnectionInfo:
        if not isinstance(data, dict):
            raise ConnectionFileError("a connection file must hold a JSON object")
        values: dict[str, Any] = {k: v for k, v in data.items() if k in FIELDS}
        extra = {k: v for k, v in data.items() if k not in FIELDS}
        info = cls(**values, extra=extra)
        if info.transport not in ("tcp", "ipc"):
            raise ConnectionFileError(f"unsupported transport {info.transport!r} (tcp or ipc)")
        for channel in CHANNELS:
            given = getattr(info, f"{channel}_port")
            try:
                port = info.port(channel)
            except (TypeError, ValueError, OverflowError):
                port = -1
            if isinstance(given, bool) or not 0 <= port <= 65535:
                raise ConnectionFileError(
                    f"{channel}_port must be an integer 0-65535, not {given!r}"
                )
        if not isinstance(info.key, str):
            raise ConnectionFileError("key must be a string")
        if not isinstance(info.signature_scheme, str):
            raise ConnectionFileError("signature_scheme must be a string")
        if not isinstance(info.ip, str):
            raise ConnectionFileError("ip must be a string")
        curve_keys = (info.curve_publickey, info.curve_secretkey)
        if curve_keys != (None, None) and not all(
            isinstance(k, str) and len(k) == 40 for k in curve_keys
        ):
            raise ConnectionFileError(
                "curve_publickey and curve_secretkey must both be given, as 40-character Z85 keys"
            )
        return info

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ConnectionInfo:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except OSError as exc:
            raise ConnectionFileError(
                f"cannot read connection file {path}: {exc.strerror}"
            ) from None
        except (ValueError, RecursionError) as exc:
            raise ConnectionFileError(f"connection file {path} is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def _json(self) -> bytes:
        return (json.dumps(self.to_dict(), indent=2) + "\n").encode("utf-8")

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write (or replace) the file at ``path``, readable by its owner only.

        The key lets anyone who reads it run code. The file is written whole under a
        fresh name and then renamed over ``path``, so a symlink planted there is
        replaced, never followed, and a reader never sees half a file.
        """
        parent = os.path.dirname(os.fspath(path))
        if parent:
            make_dirs(parent, 0o700)
        replace_file(path, self._json(), 0o600)

    def write_new(self, directory: str | os.PathLike[str]) -> Path:
        """Write a new connection file named ``kernel-<random uuid>.json`` in ``directory``.

        The name cannot be guessed and the file is created exclusively (``O_EXCL``,
        ``O_NOFOLLOW``, mode 0600), so nothing another process planted in the folder is
        read, followed or overwritten: a name that exists already is skipped.
        """
        from pathlib import Path

        from .wire import new_id

        make_dirs(directory, 0o700)
        for _ in range(NEW_NAME_ATTEMPTS):
            path = Path(directory) / f"kernel-{new_id()}.json"
            try:
                _write_exclusive(path, self._json(), 0o600)
            except FileExistsError:
                continue
            return path
        raise FileExistsError(
            errno.EEXIST,
            f"every one of {NEW_NAME_ATTEMPTS} new random names was already taken",
            str(directory),
        )


# How many fresh random names write_new tries before giving up (one is all it ever needs
# unless something creates files with uuid names in the runtime folder on purpose).
NEW_NAME_ATTEMPTS = 16
_EXCLUSIVE = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
)


def _write_exclusive(path: str | os.PathLike[str], data: bytes, mode: int) -> None:
    """Create ``path`` (never an existing file or symlink) with ``mode`` and write ``data``.

    The umask can only take permissions away from ``mode``, never add them.
    """
    fd = os.open(path, _EXCLUSIVE, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    os.close(fd)


def replace_file(path: str | os.PathLike[str], data: bytes, mode: int) -> None:
    """Put ``data`` at ``path`` with permissions ``mode`` (at most), atomically.

    Written under a fresh random name beside ``path``, then renamed over it: whatever
    was at ``path`` (an older file with looser permissions, a planted symlink) is
    replaced, not written through.
    """
    from .wire import new_id

    target = os.fspath(path)
    folder, name = os.path.split(target)
    temp = os.path.join(folder, f".{name}.{new_id()}.tmp")
    try:
        _write_exclusive(temp, data, mode)
    except PermissionError:
        # A folder we may not add files to: rewrite the file in place, but never
        # through a symlink, and only a file that is there already.
        if not os.path.isfile(target):
            raise
        fd = os.open(target, os.O_WRONLY | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0))
        with contextlib.suppress(OSError):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return
    try:
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def make_dirs(path: str | os.PathLike[str], mode: int) -> None:
    """``os.makedirs`` giving every folder it creates ``mode`` (less what the umask removes).

    ``os.makedirs`` gives the parents it creates 0777 less the umask: under umask 000,
    folders anyone could write to.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path.rstrip(os.sep))
    if parent and parent != path:
        make_dirs(parent, mode)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        if not os.path.isdir(path):
            raise


def jupyter_runtime_dir() -> Path:
    """Where Jupyter looks for connection files (jupyter_core's rule, without importing it)."""
    from pathlib import Path

    env = os.environ.get("JUPYTER_RUNTIME_DIR")
    if env:
        return Path(env)
    return jupyter_data_dir() / "runtime"


def jupyter_data_dir() -> Path:
    from pathlib import Path

    env = os.environ.get("JUPYTER_DATA_DIR")
    if env:
        return Path(env)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Jupyter"
    if os.name == "nt":
        appdata = os.environ.get("APPDATA")
        return Path(appdata) / "jupyter" if appdata else Path.home() / ".jupyter" / "data"
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "jupyter"
