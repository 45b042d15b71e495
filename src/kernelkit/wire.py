"""The Jupyter wire format, sans-IO: frames in, messages out, and back.

Nothing here touches a socket or a thread. A message on the wire is a list of
byte frames (messaging spec, "The Wire Protocol")::

    [identity..., b"<IDS|MSG>", signature, header, parent_header, metadata, content, buffer...]

The signature is the HMAC hex digest of the four JSON frames, keyed by the
connection file's ``key``; an empty key means messages are not signed.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import math
import os
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .literals import KEPT
from .literals import loads as _loads_keeping
from .literals import parse as _parse

DELIMITER = b"<IDS|MSG>"
# Protocol 5.5 adds iopub_welcome on an XPUB IOPub socket, which the server implements.
PROTOCOL_VERSION = "5.5"
# How many recent signatures the replay guard remembers; jupyter_client's Session
# keeps the same order of magnitude (2**16) before culling.
REPLAY_MEMORY = 1 << 16
# Signing joins the four parts for one HMAC update, unless the content is at least this big:
# then each part is hashed as it is (joining a 10 MB output copied it, ~1 ms, for nothing).
JOIN_BELOW = 1 << 16
# How deeply a header may nest. Headers are flat objects of strings; every reply and
# IOPub message echoes the request's header as its parent_header, so a header must
# be one that can always be encoded again.
HEADER_MAX_DEPTH = 32

JSONDict = dict[str, Any]


class ProtocolError(ValueError):
    """A frame list that is not a valid, authentic Jupyter message."""


class Message:
    """One Jupyter message, as its four dicts plus routing and binary buffers.

    A plain slotted class rather than a dataclass: importing dataclasses (which
    imports inspect) would cost every kernel several milliseconds of start-up.
    """

    __slots__ = ("buffers", "content", "header", "identities", "kept", "metadata",
                 "parent_header", "raw_header")

    def __init__(
        self,
        header: JSONDict,
        parent_header: JSONDict,
        metadata: JSONDict,
        content: JSONDict,
        buffers: list[bytes] | None = None,
        identities: list[bytes] | None = None,
        raw_header: bytes = b"",
    ) -> None:
        self.header = header
        self.parent_header = parent_header
        self.metadata = metadata
        self.content = content
        self.buffers = buffers if buffers is not None else []
        self.identities = identities if identities is not None else []
        # The header frame as received: sent back verbatim as the parent_header of every
        # reply and output, which saves encoding it again for each of them.
        self.raw_header = raw_header
        # Big strings of the content whose JSON text is kept (literals.py), dropped when
        # the request is done.
        self.kept: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"<Message {self.header.get('msg_type')} {self.header.get('msg_id')}>"

    def header_only(self) -> Message:
        """A copy with only the header (and its frame): enough to be a parent, without
        holding on to content that may be megabytes (a cell's code)."""
        return Message(self.header, {}, {}, {}, raw_header=self.raw_header)

    @property
    def msg_type(self) -> str:
        return str(self.header["msg_type"])

    @property
    def msg_id(self) -> str:
        return str(self.header["msg_id"])


# The formatted second of the last timestamp. Every message's header carries one, and
# formatting all of it each time (datetime.now(timezone.utc).isoformat()) took 1.1 µs a
# call against 0.5 µs. One tuple, replaced whole, so that any thread may read and renew it.
_second: tuple[int, str] = (-1, "")


def utcnow_iso() -> str:
    """The current time as ISO 8601 in UTC with microseconds, as jupyter_client writes it."""
    global _second
    now = time.time()
    whole = int(now)
    second, prefix = _second
    if whole != second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second = (whole, prefix)
    return f"{prefix}.{int((now - whole) * 1_000_000):06d}Z"


def _json_default(obj: object) -> object:
    # Hooks sometimes return tuples of tuples, sets or datetimes; JSON has lists and strings.
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, set | frozenset):
        return list(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_json_default
)


def dumps(obj: object) -> bytes:
    """JSON-encode one message dict. NaN is refused: browsers cannot parse it."""
    return _encoder.encode(obj).encode("utf-8", "surrogatepass")


def _loads_dict(frame: bytes, what: str) -> JSONDict:
    value = _parsed(frame, what, json.loads if len(frame) < JOIN_BELOW else _parse)
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} is a JSON {type(value).__name__}, not an object")
    return value


def _loads_content(frame: bytes) -> tuple[JSONDict, tuple[str, ...]]:
    """The content, and its big strings kept with their JSON text (literals.py)."""
    value, kept = _parsed(frame, "content", _keeping_views)
    if not isinstance(value, dict):
        KEPT.drop(kept)
        raise ProtocolError(f"content is a JSON {type(value).__name__}, not an object")
    return value, kept


def _keeping_views(frame: bytes) -> tuple[Any, tuple[str, ...]]:
    got = _loads_keeping(frame)
    return (json.loads(frame), ()) if got is None else got


def _parsed(frame: bytes, what: str, loads: Callable[[bytes], Any]) -> Any:
    """``loads(frame)``, its failures as ProtocolError."""
    try:
        return loads(frame)
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"{what} is not valid UTF-8: {exc}") from None
    except ValueError as exc:
        raise ProtocolError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError(f"{what} is nested too deeply to parse") from None


def _check_header(header: JSONDict) -> None:
    """Refuse a header that could not be sent back as a parent_header (ProtocolError)."""
    stack: list[tuple[object, int]] = [(header, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: list[object] = list(value.values())
        elif isinstance(value, list):
            children = value
        else:
            if isinstance(value, float) and not math.isfinite(value):
                raise ProtocolError("header holds a number JSON cannot express (NaN or infinity)")
            continue
        if depth >= HEADER_MAX_DEPTH:
            raise ProtocolError(f"header is nested more than {HEADER_MAX_DEPTH} levels deep")
        stack.extend((child, depth + 1) for child in children)


class Signer:
    """HMAC signing with the connection's ``signature_scheme`` (``hmac-<hashlib name>``)."""

    def __init__(self, key: bytes, scheme: str = "hmac-sha256") -> None:
        if not scheme.startswith("hmac-"):
            raise ValueError(
                f"unsupported signature_scheme {scheme!r}: it must be 'hmac-<hash>'; "
                f"{supported_schemes()}"
            )
        digest = scheme[5:]
        try:
            # Checked even without a key: a client given this scheme could not sign either.
            hmac.new(b"probe", digestmod=digest).hexdigest()
        except (ValueError, TypeError):
            # OpenSSL says only "no reason supplied" for a hash HMAC cannot use.
            if digest.startswith("shake"):
                why = (f"{digest} is an extendable-output hash with no fixed digest size, "
                       "which HMAC cannot use")
            else:
                why = f"there is no hash named {digest!r}"
            raise ValueError(
                f"unsupported signature_scheme {scheme!r}: {why}; {supported_schemes()}"
            ) from None
        self.key = key
        self.scheme = scheme
        self._hmac = hmac.new(key, digestmod=digest) if key else None

    @property
    def enabled(self) -> bool:
        return self._hmac is not None

    def sign(self, parts: list[bytes]) -> bytes:
        if self._hmac is None:
            return b""
        h = self._hmac.copy()
        if len(parts[-1]) < JOIN_BELOW:
            h.update(b"".join(parts))  # one update: cheaper for the usual small message
        else:
            for part in parts:  # a big content: no copy of it just to hash it
                h.update(part)
        return h.hexdigest().encode("ascii")


def supported_schemes() -> str:
    """The schemes jupyter_client can sign with (hashlib's own hashes that HMAC accepts)."""
    usable = []
    for name in sorted(hashlib.algorithms_guaranteed):
        try:
            hmac.new(b"probe", digestmod=name).hexdigest()
        except (ValueError, TypeError):
            continue
        if name != "sha256":
            usable.append(f"hmac-{name}")
    return "supported: hmac-sha256 (Jupyter's default), " + ", ".join(usable)


class ReplayGuard:
    """Remembers recent signatures so that a captured message cannot be sent again.

    Its check-and-record must be one step for every thread that checks. This layer does no
    I/O and starts no threads, so it holds no lock of its own: ``lock`` is a no-op until
    the code that runs several checking threads sets a real one (the server does, for its
    shell and control threads).
    """

    def __init__(self, memory: int = REPLAY_MEMORY) -> None:
        self._seen: dict[bytes, None] = {}  # insertion-ordered: the first key is the oldest
        self._memory = memory
        self.lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()

    def check(self, signature: bytes) -> None:
        with self.lock:
            if signature in self._seen:
                raise ProtocolError("replayed message: this signature was already seen")
            self._seen[signature] = None
            if len(self._seen) > self._memory:
                del self._seen[next(iter(self._seen))]


class Session:
    """Builds and parses messages for one kernel session (one signing key, one session id)."""

    def __init__(
        self,
        key: bytes = b"",
        signature_scheme: str = "hmac-sha256",
        username: str = "kernel",
        session_id: str | None = None,
    ) -> None:
        self.signer = Signer(key, signature_scheme)
        self.replay_guard = ReplayGuard()
        self.session_id = session_id or new_id()
        self.username = username
        self._prefix = f"{self.session_id}_{os.getpid()}_"
        self._counter = itertools.count(1)  # next() on it is atomic: safe from any thread

    def new_msg_id(self) -> str:
        # Unique per message without the cost of a uuid each time: session id plus a counter.
        return f"{self._prefix}{next(self._counter)}"

    def header(self, msg_type: str) -> JSONDict:
        return {
            "msg_id": self.new_msg_id(),
            "msg_type": msg_type,
            "username": self.username,
            "session": self.session_id,
            "date": utcnow_iso(),
            "version": PROTOCOL_VERSION,
        }

    def serialize(
        self,
        msg_type: str,
        content: JSONDict,
        parent: JSONDict | bytes | None = None,
        metadata: JSONDict | None = None,
        identities: list[bytes] | tuple[bytes, ...] = (),
        buffers: list[bytes] | tuple[bytes, ...] = (),
        header: JSONDict | None = None,
    ) -> list[bytes]:
        """Frames for a new message; raises TypeError/ValueError if content is not JSON.

        ``parent`` may be the parent's header frame as received (bytes), sent as it is.
        """
        parts = [
            dumps(header if header is not None else self.header(msg_type)),
            parent if isinstance(parent, bytes) else dumps(parent) if parent else b"{}",
            dumps(metadata) if metadata else b"{}",
            KEPT.encode(content, dumps) or dumps(content),
        ]
        return [*identities, DELIMITER, self.signer.sign(parts), *parts, *buffers]

    def deserialize(self, frames: list[bytes], keep: bool = False) -> Message:
        """Parse, authenticate and replay-check one message; ProtocolError if it is bad.

        ``keep``: keep the JSON text of the content's big strings (literals.py) in the
        message's ``kept``, for whoever handles it to drop when done (the shell's requests).
        """
        try:
            split = frames.index(DELIMITER)
        except ValueError:
            raise ProtocolError("no <IDS|MSG> delimiter frame") from None
        if len(frames) - split < 6:
            raise ProtocolError(
                f"{len(frames) - split - 1} frames after the delimiter, at least 5 are needed"
            )
        signature = bytes(frames[split + 1])
        parts = [bytes(f) for f in frames[split + 2 : split + 6]]
        if self.signer.enabled:
            if not signature:
                raise ProtocolError("unsigned message, but this session requires signatures")
            if not hmac.compare_digest(signature, self.signer.sign(parts)):
                raise ProtocolError("invalid signature")
            self.replay_guard.check(signature)
        header = _loads_dict(parts[0], "header")
        msg_type = header.get("msg_type")
        if not isinstance(msg_type, str) or not msg_type:
            raise ProtocolError("header has no msg_type string")
        if not isinstance(header.get("msg_id"), str):
            raise ProtocolError("header has no msg_id string")
        _check_header(header)
        if header.get("session") == self.session_id:
            # Only this session signs with its id: a message it sent (its own IOPub output,
            # say) fed back in. Taking it as a request could loop without end.
            raise ProtocolError("a message this session sent itself, fed back")
        parent_header = _loads_dict(parts[1], "parent_header")
        metadata = _loads_dict(parts[2], "metadata")
        kept: tuple[str, ...] = ()
        if keep:
            content, kept = _loads_content(parts[3])
        else:
            content = _loads_dict(parts[3], "content")
        msg = Message(
            header=header,
            parent_header=parent_header,
            metadata=metadata,
            content=content,
            buffers=[bytes(f) for f in frames[split + 6 :]],
            identities=[bytes(f) for f in frames[:split]],
            raw_header=parts[0],
        )
        msg.kept = kept
        return msg


def new_id() -> str:
    """A random UUID-shaped id (uuid4's form without importing uuid at start-up)."""
    raw = os.urandom(16).hex()
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


def new_key() -> bytes:
    """A fresh signing key, as jupyter_client makes them (a UUID's text)."""
    return new_id().encode("ascii")


def welcome_content(subscription: str) -> JSONDict:
    """``iopub_welcome`` content (protocol 5.5): the subscription it answers."""
    return {"subscription": subscription}
