"""Kernels that route messages themselves: ipykernel's ``shell_handlers`` and ``control_handlers``.

An ipykernel kernel keeps a dict from msg_type to handler and may install its own
entries (metakernel points the comm messages at its comm manager) or override a
handler method (zsh-jupyter-kernel's ``kernel_info_request(self, stream, ident,
parent)``, which answers with ``self.session.send``). The dispatcher honours such
entries: a handler that is not one of kernelkit's own defaults (marked
``kernelkit_default``) is called ipykernel's way, inside the usual busy/idle
bracket, and kernelkit's promises still hold around it:

* a request is answered exactly once: a second reply is dropped (logged), and a
  handler that raises or sends none gets an error reply sent for it;
* a ``kernel_info_reply`` it sends is completed with the fields the spec requires
  that it left out (strict clients reject a reply without them);
* what it publishes goes out with the request as parent, in order with its stream text.

State: ``replied`` for the request on the calling thread lives in the dispatcher's
thread-local, owned by that thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .wire import JSONDict, Message

if TYPE_CHECKING:
    from .dispatch import Dispatcher


def custom_handler(kernel: Any, channel: str, msg_type: str) -> Callable[..., Any] | None:
    """The kernel's own handler for ``msg_type`` on ``channel``, if it installed one."""
    table = getattr(kernel, f"{channel}_handlers", None)
    if not isinstance(table, dict):
        return None
    handler: Callable[..., Any] | None = table.get(msg_type)
    if handler is None or getattr(handler, "kernelkit_default", False) or not callable(handler):
        return None
    return handler


def run(dispatcher: Dispatcher, channel: str, msg: Message,
        handler: Callable[..., Any]) -> JSONDict | None:
    """Call ``handler(stream, idents, msg)``; the reply to send for it if it sent none."""
    from .comms import as_dict

    local = dispatcher._local
    local.replied = False
    local.raw = raw = as_dict(msg)
    stream = getattr(dispatcher.kernel, f"{channel}_socket", None)
    name = getattr(handler, "__qualname__", repr(handler))
    try:
        dispatcher.run_kernel_code(lambda: handler(stream, list(msg.identities), raw))
    except (Exception, KeyboardInterrupt) as exc:
        if local.replied or not msg.msg_type.endswith("_request"):
            _log("warning", "%s raised %r handling %s", name, exc, msg.msg_type)
            return None
        from .dispatch import error_content

        return error_content(exc)
    finally:
        local.raw = None
    if local.replied or not msg.msg_type.endswith("_request"):
        return None
    evalue = f"{name} sent no reply to {msg.msg_type}"
    _log("warning", "%s", evalue)
    return {"status": "error", "ename": "NoReply", "evalue": evalue, "traceback": [evalue]}


def send(dispatcher: Dispatcher, channel: str, msg_type: str, content: JSONDict,
         parent: Any, idents: Any, metadata: JSONDict | None,
         buffers: list[bytes] | tuple[bytes, ...]) -> JSONDict:
    """What a kernel's ``session.send(stream, ...)`` does: send as the request's child or reply."""
    current = dispatcher.parent
    target = current if current is not None and _same(parent, current) else _message(parent, idents)
    if channel == "iopub":
        return dispatcher.publish(msg_type, content, metadata, buffers, parent=target)
    if target is current and current is not None and msg_type.endswith("_reply"):
        local = dispatcher._local
        if getattr(local, "replied", False):
            _log("warning", "a second %s to %s was dropped", msg_type, current.msg_type)
            return {}
        local.replied = True
        if msg_type == "kernel_info_reply":
            content = _completed_kernel_info(dispatcher, content)
        dispatcher.streams.flush(current)
    return dispatcher.transport.send(channel, msg_type, content, target, metadata, buffers)


def _completed_kernel_info(dispatcher: Dispatcher, content: JSONDict) -> JSONDict:
    """The handler's reply over kernelkit's info: what it says wins, what it left out is filled."""
    from .kernelinfo import complete

    try:
        ours = dispatcher.kernel_info()
    except Exception:
        return content
    merged = {**ours, **content}  # (a language_info of its own is kept whole, completed)
    return complete(_Info(merged, dispatcher.kernel), dispatcher.subshells)


class _Info:
    def __init__(self, info: JSONDict, kernel: Any) -> None:
        self.kernel_info = info
        self.language = getattr(kernel, "language", "")
        self.language_version = getattr(kernel, "language_version", "")


def _same(parent: Any, current: Message) -> bool:
    if parent is None:
        return True
    header = parent.get("header", parent) if isinstance(parent, dict) else None
    return isinstance(header, dict) and header.get("msg_id") == current.header.get("msg_id")


def _message(parent: Any, idents: Any) -> Message | None:
    """A Message for a parent given as ipykernel's dict (a header, or a whole message)."""
    if not isinstance(parent, dict):
        return None
    header = parent.get("header", parent)
    ids = [i for i in (idents if isinstance(idents, list) else [idents] if idents else [])
           if isinstance(i, bytes)]
    return Message(header if isinstance(header, dict) else {}, {}, {}, {}, identities=ids)


def _log(level: str, text: str, *args: object) -> None:
    from .logs import logger

    getattr(logger(), level)(text, *args)
