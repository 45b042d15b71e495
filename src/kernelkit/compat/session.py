"""``kernel.session``: the part of jupyter_client's Session that wrapper kernels call.

Kernels answer from their own handlers with ``self.session.send(stream, msg_type,
content, parent, ident)``, test ``if self.session:`` before sending output, and
sometimes build a message with ``session.msg``. Here sending goes through the
kernel's dispatcher (tables.send), so the promises of the engine hold: one reply
per request, output in order and with its request as parent.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..tables import send as send_as_kernel
from ..wire import JSONDict, dumps, new_id
from ..wire import Session as WireSession

if TYPE_CHECKING:
    from ..kernel import Kernel


class Session:
    """Sends as the kernel it belongs to; signs with the connection's key once it runs."""

    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel
        self.session = new_id()
        self.username = os.environ.get("USER", "kernel")

    def __bool__(self) -> bool:
        return True

    @property
    def _wire(self) -> WireSession | None:
        dispatcher = self._kernel._dispatcher
        return getattr(dispatcher.transport, "session", None) if dispatcher else None

    @property
    def key(self) -> bytes:
        wire = self._wire
        return wire.signer.key if wire is not None else b""

    @property
    def bsession(self) -> bytes:
        return self.session.encode()

    def msg_header(self, msg_type: str) -> JSONDict:
        wire = self._wire
        if wire is not None:
            return wire.header(msg_type)
        from ..wire import PROTOCOL_VERSION, utcnow_iso

        return {"msg_id": new_id(), "msg_type": msg_type, "username": self.username,
                "session": self.session, "date": utcnow_iso(), "version": PROTOCOL_VERSION}

    def msg(self, msg_type: str, content: JSONDict | None = None, parent: Any = None,
            header: JSONDict | None = None, metadata: JSONDict | None = None) -> JSONDict:
        """A message as a dict, as jupyter_client builds it (nothing is sent)."""
        header = header or self.msg_header(msg_type)
        return {
            "header": header,
            "msg_id": header["msg_id"],
            "msg_type": msg_type,
            "parent_header": _header_of(parent),
            "content": {} if content is None else content,
            "metadata": metadata or {},
        }

    def sign(self, msg_list: list[bytes]) -> bytes:
        """The HMAC of a message's four JSON frames, with the connection's key."""
        wire = self._wire
        return wire.signer.sign(list(msg_list)) if wire is not None else b""

    def send(self, stream: Any, msg_or_type: str | JSONDict, content: JSONDict | None = None,
             parent: Any = None, ident: Any = None, buffers: list[bytes] | None = None,
             track: bool = False, header: JSONDict | None = None,
             metadata: JSONDict | None = None) -> JSONDict | None:
        """Send on ``stream`` (the kernel's iopub_socket, shell_socket, ...) as the kernel.

        Returns the message sent, as a dict. ``stream=None`` builds it without sending,
        as jupyter_client does.
        """
        if isinstance(msg_or_type, dict):
            msg_type = str(msg_or_type.get("msg_type") or msg_or_type["header"]["msg_type"])
            content = msg_or_type.get("content", content)
            parent = msg_or_type.get("parent_header", parent)
            metadata = msg_or_type.get("metadata", metadata)
        else:
            msg_type = msg_or_type
        content = {} if content is None else content
        built = self.msg(msg_type, content, parent, header, metadata)
        if stream is None:
            return built
        dispatcher = self._kernel._dispatcher
        if dispatcher is None:
            raise RuntimeError("session.send needs a running kernel")
        channel = getattr(stream, "name", "iopub")
        sent = send_as_kernel(dispatcher, channel, msg_type, content, parent, ident, metadata,
                              list(buffers or ()))
        if sent:
            built["header"] = sent
            built["msg_id"] = sent.get("msg_id")
        return built

    def serialize(self, msg: JSONDict, ident: Any = None) -> list[bytes]:
        """A message dict's frames (for kernels that send frames themselves; rare)."""
        parts = [dumps(msg["header"]), dumps(msg.get("parent_header") or {}),
                 dumps(msg.get("metadata") or {}), dumps(msg.get("content") or {})]
        ids = ident if isinstance(ident, list) else [ident] if ident else []
        return [*ids, b"<IDS|MSG>", self.sign(parts), *parts]


def _header_of(parent: Any) -> JSONDict:
    if isinstance(parent, dict):
        header = parent.get("header", parent)
        return dict(header) if isinstance(header, dict) else {}
    return {}
