"""Big strings that came in as JSON go out as the JSON text they came in as.

A 10 MB cell is parsed from its ``execute_request``, sent back in its ``execute_input``,
often printed back (the Echo kernel), and through the bridge it crosses the backend's
pipe twice more. CPython escapes a 10 MB string at about 200 to 500 MB/s, so each of those
encodings costs 20 to 50 ms: most of what a big output costs. Yet the string's JSON text
was in hand when it was parsed. So the parse (``loads``) notes, for each big string
value, the slice of the frame or line that is its JSON text, and the encoders
(``wire.dumps`` for messages, the bridge's line encoder) splice that text in when they
meet *the same string object* again (``Kept.encode``). What is spliced is the client's
own escaping of the same characters: the JSON decodes to the same value, whatever the
string holds, and the rest of the document is encoded as before. Nothing here depends
on what the text holds; only its size (``MIN_CHARS``) decides.

Identity, not equality: a string is looked up by ``id`` and the entry holds the string
itself, so the id cannot be reused while the entry lives. A string made anew (text
merged from several writes, a slice) is simply encoded.

Shared state and its owner
==========================

The entries live in the one ``KEPT`` of the process, and belong to its lock: the shell
reader keeps a request's strings, the thread that handles the request drops them when
its idle status has gone (``Dispatcher._bracketed``), and the bridge keeps and drops a
backend line's strings around publishing it. Encoders on any thread only read (a dict
lookup is atomic; an entry is an immutable tuple, and a literal in use stays valid
after it is dropped). Memory is bounded in bytes (``MAX_BYTES``): a request that is
never handled (queued when the kernel stopped) cannot hold its literal for ever, and
keeping one beyond the bound drops the oldest first.
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import threading
from collections.abc import Callable
from typing import Any

# The least a string's JSON text must take (characters) to be worth keeping: below it,
# encoding is cheaper than the bookkeeping (and the frames are below wire.JOIN_BELOW).
MIN_CHARS = 1 << 16
# The most bytes of JSON text kept at once. Each keeps the frame or line it came in
# alive beside the parsed string while its request runs (one more copy of a big cell);
# half the largest shell message (256 MiB) keeps that bounded.
MAX_BYTES = 128 << 20
# How deep into nested objects big strings are looked for: a message's content (1) and
# a bridge line's params or result (2). Lists are never looked into.
DEPTH = 2

Literal = bytes | memoryview
# The C scanner json.loads uses (typeshed types make_scanner's argument as its own class).
_scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
# The C string scanner json's decoder uses (not in typeshed's stubs of json.decoder).
_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]
# json's own whitespace pattern (compiled already: no start-up cost, and the same rule).
_space = json.decoder.WHITESPACE.match  # type: ignore[attr-defined]


def _skip(text: str, i: int) -> int:
    """The index of the first character at or after ``i`` that is not JSON whitespace."""
    end: int = _space(text, i).end()  # a * pattern always matches
    return end


class Kept:
    """The big strings whose JSON text is known, by identity (see the module docstring)."""

    def __init__(self, max_bytes: int = MAX_BYTES, min_chars: int = MIN_CHARS) -> None:
        self.max_bytes = max_bytes
        self.min_chars = min_chars
        self._lock = threading.Lock()
        self._by_id: dict[int, tuple[str, Literal]] = {}  # insertion-ordered: oldest first
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def bytes_kept(self) -> int:
        return self._bytes

    def keep(self, value: str, literal: Literal) -> bool:
        """Remember ``literal`` as the JSON text of ``value``; False if it is too big to."""
        size = len(literal)
        if size > self.max_bytes:
            return False
        with self._lock:
            old = self._by_id.pop(id(value), None)
            if old is not None:
                self._bytes -= len(old[1])
            while self._by_id and self._bytes + size > self.max_bytes:
                oldest = next(iter(self._by_id))
                self._bytes -= len(self._by_id.pop(oldest)[1])
            self._by_id[id(value)] = (value, literal)
            self._bytes += size
        return True

    def drop(self, values: tuple[str, ...] | list[str]) -> None:
        """Forget these strings (their request is done, or their line was published)."""
        with self._lock:
            for value in values:
                entry = self._by_id.get(id(value))
                if entry is not None and entry[0] is value:
                    del self._by_id[id(value)]
                    self._bytes -= len(entry[1])

    def literal(self, value: object) -> Literal | None:
        """The JSON text ``value`` came in as, if it is a kept string."""
        entry = self._by_id.get(id(value))
        return entry[1] if entry is not None and entry[0] is value else None

    def encode(self, obj: object, dump: Callable[[Any], bytes], tail: bytes = b""
               ) -> bytes | None:
        """``obj`` as JSON with kept strings spliced in (then ``tail``), or None if it
        holds none.

        ``dump`` encodes everything else, so its options (NaN refused, a default for
        odd types) hold for the rest of the document as they do without a splice.
        """
        if not self._by_id or type(obj) is not dict or not self._holds(obj, DEPTH):
            return None
        out: list[Literal] = []
        self._put(obj, dump, DEPTH, out)
        out.append(tail)
        return b"".join(out)

    def _holds(self, obj: dict[Any, Any], depth: int) -> bool:
        """Whether a kept string is among the values (a non-string key: leave it to json)."""
        found = False
        for key, value in obj.items():
            if type(key) is not str:
                return False
            kind = type(value)
            if kind is str:
                if len(value) >= self.min_chars and self.literal(value) is not None:
                    found = True
            elif kind is dict and depth > 1 and self._holds(value, depth - 1):
                found = True
        return found

    def _put(self, obj: dict[Any, Any], dump: Callable[[Any], bytes], depth: int,
             out: list[Literal]) -> None:
        sep = b"{"
        for key, value in obj.items():
            out.append(sep)
            out.append(dump(key))
            out.append(b":")
            kind = type(value)
            literal = self.literal(value) if kind is str else None
            if literal is not None:
                out.append(literal)
            elif kind is dict and depth > 1 and self._holds(value, depth - 1):
                self._put(value, dump, depth - 1, out)
            else:
                out.append(dump(value))
            sep = b","
        out.append(b"{}" if sep == b"{" else b"}")


KEPT = Kept()


def loads(data: bytes | bytearray | memoryview,
          kept: Kept | None = None) -> tuple[Any, tuple[str, ...]] | None:
    """Parse JSON as ``json.loads`` does, and keep the text of its big strings.

    Returns the value and the strings kept in ``kept`` (default ``KEPT``), which the
    caller drops when done with them; or None for data that is small or not strict
    UTF-8, which the caller parses its own way (json.loads also takes UTF-16 and
    encoded surrogates; the bridge replaces bytes that are not UTF-8). What is kept of
    ASCII data are views of it, so ``data`` must not change while they are kept (a frame
    is bytes; the bridge's reader hands a line over and never touches it again). Raises
    what ``json.loads`` raises for bad JSON.
    """
    kept = KEPT if kept is None else kept
    text = _text(data, kept.min_chars)
    if text is None:
        return None
    spans: list[tuple[str, int, int]] = []
    value = _walk(text, kept.min_chars, spans)
    if not spans:
        return value, ()
    view = memoryview(data)
    if len(text) == len(data):  # ASCII: character offsets are byte offsets
        literals: list[Literal] = [view[start:end] for _, start, end in spans]
    elif len(spans) == 1:  # the usual big cell or output: its bytes found from both ends
        _, start, end = spans[0]
        literals = [view[len(text[:start].encode()) : len(data) - len(text[end:].encode())]]
    else:
        literals = [text[start:end].encode() for _, start, end in spans]
    done = [string for (string, _, _), literal in zip(spans, literals, strict=True)
            if kept.keep(string, literal)]
    return value, tuple(done)


def parse(data: bytes | bytearray) -> Any:
    """``json.loads(data)``, faster for big frames of UTF-8 (and the same otherwise)."""
    text = _text(data, MIN_CHARS)
    return json.loads(data if text is None else text)


def _text(data: bytes | bytearray | memoryview, least: int) -> str | None:
    """``data`` decoded, if it is big and strict UTF-8 (None: leave it to json.loads).

    json.loads decodes bytes with the ``surrogatepass`` error handler, which takes
    CPython's slow path: 10 ms for 10 MB of ASCII, against 0.5 ms strictly. Text that
    is not strict UTF-8, or that json would read as UTF-16 or -32 or with a BOM, goes to
    json.loads as bytes, which decides as it always did.
    """
    if len(data) < least or json.detect_encoding(bytes(data[:4])) != "utf-8":
        return None
    try:
        return str(data, "utf-8")
    except UnicodeDecodeError:
        return None


def _walk(text: str, least: int, spans: list[tuple[str, int, int]]) -> Any:
    """json.loads(text), noting (string, start, end) of big string values in objects."""
    i = _skip(text, 0)
    if text[i : i + 1] != "{":
        return json.loads(text)  # not an object: nothing to keep, json says what it is
    value, i = _object(text, i, DEPTH, least, spans)
    if _skip(text, i) != len(text):
        raise json.JSONDecodeError("Extra data", text, i)
    return value


def _object(text: str, i: int, depth: int, least: int, spans: list[tuple[str, int, int]]
            ) -> tuple[dict[str, Any], int]:
    """The object whose ``{`` is at ``i``, and the index after its ``}``."""
    out: dict[str, Any] = {}
    i = _skip(text, i + 1)
    if text[i : i + 1] == "}":
        return out, i + 1
    while True:
        if text[i : i + 1] != '"':
            raise json.JSONDecodeError(
                "Expecting property name enclosed in double quotes", text, i)
        key, i = _scanstring(text, i + 1)
        i = _skip(text, i)
        if text[i : i + 1] != ":":
            raise json.JSONDecodeError("Expecting ':' delimiter", text, i)
        i = _skip(text, i + 1)
        if depth > 1 and text[i : i + 1] == "{":
            value, end = _object(text, i, depth - 1, least, spans)
        else:
            try:
                value, end = _scan(text, i)
            except StopIteration as exc:
                raise json.JSONDecodeError("Expecting value", text, exc.value) from None
            if type(value) is str and len(value) >= least:
                spans.append((value, i, end))
        out[key] = value  # a later duplicate key wins, as in json.loads
        i = _skip(text, end)
        c = text[i : i + 1]
        if c == "}":
            return out, i + 1
        if c != ",":
            raise json.JSONDecodeError("Expecting ',' delimiter", text, i)
        i = _skip(text, i + 1)
