"""sys.stdout and sys.stderr that reach the notebook while a request runs.

Kernel authors print while debugging, and ipykernel sends what a wrapper kernel
prints to the client as ``stream`` messages. Text written on the thread that is
handling a request goes to that request's output; anything else (start-up
messages, other threads) goes to the process's real stream.
"""

from __future__ import annotations

import io
from typing import IO, Any, Protocol

# Flush once this much text is waiting even without a newline, so that a long
# progress line does not sit in memory.
FLUSH_BYTES = 64 * 1024


class _Publisher(Protocol):
    @property
    def parent(self) -> Any: ...

    def publish(self, msg_type: str, content: dict[str, Any]) -> Any: ...


class OutStream(io.TextIOBase):
    """A text stream that becomes ``stream`` messages for the current request."""

    def __init__(self, name: str, publisher: _Publisher, fallback: IO[str] | None = None) -> None:
        super().__init__()
        self.name_ = name
        self.publisher = publisher
        self.fallback = fallback
        self._buffer: list[str] = []
        self._size = 0

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
        self._buffer.append(text)
        self._size += len(text)
        if "\n" in text or self._size >= FLUSH_BYTES:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if not self._buffer:
            if self.fallback is not None and self.publisher.parent is None:
                self.fallback.flush()
            return
        text = "".join(self._buffer)
        self._buffer.clear()
        self._size = 0
        self.publisher.publish("stream", {"name": self.name_, "text": text})

    def fileno(self) -> int:
        if self.fallback is None:
            raise io.UnsupportedOperation("fileno")
        return self.fallback.fileno()
