"""The backend process: start it, write lines to it, read its lines, and end it.

Two reader threads turn the backend's stdout and stderr into events on one
queue, so the kernel's main thread waits in a single place (and stays
interruptible). The backend runs in its own session: a SIGINT that Jupyter
sends to the kernel's process group reaches the host, which decides what the
backend gets.
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import queue
import signal
import subprocess
import threading
from dataclasses import dataclass

# Lines of the backend's stderr kept for reports when it dies.
STDERR_TAIL = 20


@dataclass(frozen=True, slots=True)
class Line:
    """One line from the backend's stdout (with its newline)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Stderr:
    text: str


@dataclass(frozen=True, slots=True)
class Exited:
    """The backend's stdout closed: it exited or is about to."""


Event = Line | Stderr | Exited


class BackendProcess:
    """One running backend program."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
        # While a request runs, stderr goes to the queue (and to the notebook);
        # between requests it is only logged.
        self.forward_stderr = False
        self._write_lock = threading.Lock()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
            bufsize=0,  # requests are written whole and must leave at once
        )
        threading.Thread(
            target=self._read_stdout, name="kernelkit-backend-out", daemon=True
        ).start()
        threading.Thread(
            target=self._read_stderr, name="kernelkit-backend-err", daemon=True
        ).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        out = io.BufferedReader(self.proc.stdout, 1 << 16)  # type: ignore[type-var]
        try:
            for line in iter(out.readline, b""):
                self.events.put(Line(line))
        except (OSError, ValueError):
            pass
        self.events.put(Exited())

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        err = io.BufferedReader(self.proc.stderr, 1 << 16)  # type: ignore[type-var]
        try:
            for raw in iter(err.readline, b""):
                text = raw.decode("utf-8", "replace")
                self.stderr_tail.append(text.rstrip("\n"))
                if self.forward_stderr:
                    self.events.put(Stderr(text))
                else:
                    from ..logs import logger

                    logger().warning("backend stderr: %s", text.rstrip("\n"))
        except (OSError, ValueError):
            pass

    def send(self, data: bytes) -> bool:
        """Write one line; False if the backend no longer reads its stdin."""
        stdin = self.proc.stdin
        assert stdin is not None
        with self._write_lock:
            try:
                stdin.write(data)
                stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                return False
        return True

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signum)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def describe_exit(self, timeout: float = 2.0) -> str:
        """How the backend ended, in words: exit code or signal name."""
        code = self.wait(timeout)
        if code is None:
            return "stopped answering (its output closed but it is still running)"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"was killed by {name}"
        return f"exited with code {code}"

    def stop(self, grace: float = 1.0) -> None:
        """Close its stdin, give it a moment to leave, then kill its whole session."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        if self.wait(grace) is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
            self.wait(grace)
