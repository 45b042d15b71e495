"""Output capture: sys.stdout and sys.stderr that reach the notebook while a request runs.

Kernel authors print while debugging, and ipykernel sends what a wrapper kernel
prints to the client as ``stream`` messages. Text belongs to the request that the
writing thread is handling: each thread has its own buffer, so a control request
answered while a cell runs, or a subshell's cell, never publishes (or flushes) text
another request wrote. Text written on a thread that handles no request (start-up
messages, the author's own threads) goes to the process's real stream.
"""

from __future__ import annotations

import io
import threading
from typing import IO, Any, Protocol

# Flush once this much text is waiting even without a newline, so that a long
# progress line does not sit in memory.
FLUSH_BYTES = 64 * 1024


class _Publisher(Protocol):
    @property
    def parent(self) -> Any: ...

    def publish(self, msg_type: str, content: dict[str, Any]) -> Any: ...


class _Pending(threading.local):
    """One thread's unflushed text (owned by that thread alone)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0


class OutStream(io.TextIOBase):
    """A text stream that becomes ``stream`` messages for the writing thread's request."""

    def __init__(self, name: str, publisher: _Publisher, fallback: IO[str] | None = None) -> None:
        super().__init__()
        self.name_ = name
        self.publisher = publisher
        self.fallback = fallback
        self._pending = _Pending()

    encoding = "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if self.publisher.parent is None:
            if self.fallback is not None:
                self.fallback.write(text)
            return len(text)
        pending = self._pending
        pending.parts.append(text)
        pending.size += len(text)
        if "\n" in text or pending.size >= FLUSH_BYTES:
            self.flush()
        return len(text)

    def flush(self) -> None:
        pending = self._pending
        if not pending.parts:
            if self.fallback is not None and self.publisher.parent is None:
                self.fallback.flush()
            return
        text = "".join(pending.parts)
        pending.parts.clear()
        pending.size = 0
        self.publisher.publish("stream", {"name": self.name_, "text": text})

    def fileno(self) -> int:
        if self.fallback is None:
            raise io.UnsupportedOperation("fileno")
        return self.fallback.fileno()
