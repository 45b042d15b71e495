"""The bridge's JSON-RPC 2.0 codec, sans-IO: one JSON object per line, UTF-8.

Turns lines read from a backend into events and calls into lines to write. A
line that is not JSON at all is program output (a stray ``print``); a line that
claims to be JSON-RPC but is broken is reported as ``Malformed``, never raised.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

from .. import literals
from ..literals import KEPT

# 1.1: backends may opt in to subshells (several requests in flight; docs/bridge-protocol.md).
BRIDGE_PROTOCOL_VERSION = "1.2"

# JSON-RPC 2.0 error codes (section 5.1 of the specification).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


@dataclass(slots=True)
class Request:
    id: int | str
    method: str
    params: dict[str, Any]


@dataclass(slots=True)
class Notification:
    method: str
    params: dict[str, Any]
    # Big strings of params whose JSON text is kept (literals.py; Codec.parse's ``keep``),
    # for the reader to drop once the notification is published.
    kept: tuple[str, ...] = ()


@dataclass(slots=True)
class Response:
    id: int | str | None
    result: Any = None
    error: dict[str, Any] | None = None


@dataclass(slots=True)
class Text:
    """A line that is not a protocol message: output the backend printed."""

    text: str


@dataclass(slots=True)
class Malformed:
    """A line that looks like JSON-RPC but is not valid; ``reason`` says why."""

    reason: str
    line: str


Event = Request | Notification | Response | Text | Malformed


# One encoder for every line: json.dumps with options builds a new one per call.
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _dump(obj: object) -> bytes:
    return _encoder.encode(obj).encode("utf-8", "surrogatepass")


def _dumps(obj: dict[str, Any]) -> bytes:
    # A 10 MB cell that came in as JSON goes to the backend as that JSON (literals.py).
    return KEPT.encode(obj, _dump, b"\n") or _dump(obj) + b"\n"


class Codec:
    """Numbers outgoing requests and parses incoming lines."""

    def __init__(self) -> None:
        # next() on a count is atomic: request threads of a concurrent backend share it.
        self._ids = itertools.count(1)

    def request(self, method: str, params: dict[str, Any]) -> tuple[int, bytes]:
        rid = next(self._ids)
        return rid, _dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})

    @staticmethod
    def notification(method: str, params: dict[str, Any]) -> bytes:
        return _dumps({"jsonrpc": "2.0", "method": method, "params": params})

    @staticmethod
    def result(rid: int | str, result: Any) -> bytes:
        return _dumps({"jsonrpc": "2.0", "id": rid, "result": result})

    @staticmethod
    def error(rid: int | str | None, code: int, message: str, data: Any = None) -> bytes:
        err: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            err["data"] = data
        return _dumps({"jsonrpc": "2.0", "id": rid, "error": err})

    @staticmethod
    def parse(line: bytes | bytearray, keep: bool = False) -> Event:
        """The event a line is. ``keep``: a notification keeps the JSON text of its
        params' big strings (``Notification.kept``), which the caller drops when done."""
        end = len(line)
        while end and line[end - 1] in b"\r\n":
            end -= 1
        view = memoryview(line)[:end]  # a line of many MB is not copied first
        if keep and end >= literals.MIN_CHARS:
            try:
                got = literals.loads(view)  # views of the line: nothing changes it now
            except (ValueError, RecursionError):
                got = None  # bad JSON: parsed below, which says what it is
            if got is not None:  # (None also when not UTF-8: decoded below, replacing)
                obj, kept = got
                event = _event(obj, view)
                if kept:
                    if isinstance(event, Notification):
                        event.kept = kept
                    else:
                        KEPT.drop(kept)
                return event
        text = str(view, "utf-8", "replace")
        if not text.lstrip().startswith("{"):
            return Text(text)
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as exc:  # too deep a nesting is broken JSON too
            if '"jsonrpc"' in text:
                return Malformed(f"broken JSON: {exc}", text)
            return Text(text)
        return _event(obj, text)


def _event(obj: Any, line: str | memoryview) -> Event:
    """What a line's parsed JSON is (``line``, decoded as needed, for what is not a message)."""
    if not isinstance(obj, dict) or obj.get("jsonrpc") != "2.0":
        return Text(_decoded(line))  # JSON the program printed, not a message
    method = obj.get("method")
    params = obj.get("params", {})
    if method is not None:
        if not isinstance(method, str):
            return Malformed("method is not a string", _decoded(line))
        if not isinstance(params, dict):
            return Malformed(f"params of {method} is not an object", _decoded(line))
        if "id" in obj:
            rid = obj["id"]
            if not isinstance(rid, int | str) or isinstance(rid, bool):
                return Malformed("id is not a number or string", _decoded(line))
            return Request(rid, method, params)
        return Notification(method, params)
    if "id" in obj and ("result" in obj or "error" in obj):
        error = obj.get("error")
        if error is not None and not (
            isinstance(error, dict) and isinstance(error.get("message", ""), str)
        ):
            return Malformed("error is not an object with a message", _decoded(line))
        return Response(obj["id"], obj.get("result"), error)
    return Malformed("neither a request, a notification nor a response", _decoded(line))


def _decoded(line: str | memoryview) -> str:
    return line if isinstance(line, str) else str(line, "utf-8", "replace")
