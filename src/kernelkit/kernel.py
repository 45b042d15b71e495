"""The API kernel authors see: ``kernelkit.Kernel``, shaped like ipykernel's wrapper-kernel base.

A wrapper kernel written for ``ipykernel.kernelbase.Kernel`` runs here with its
import line changed: the same class attributes, the same ``do_*`` hooks with
ipykernel's defaults, and the same helpers (``send_response(self.iopub_socket, ...)``,
``execution_count``, ``raw_input``, ``getpass``, ``log``). Nothing here knows
about ZeroMQ: output goes through the dispatcher the kernel is attached to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import __version__
from .dispatch import StdinNotImplementedError
from .wire import PROTOCOL_VERSION, JSONDict, Message

if TYPE_CHECKING:
    import logging

    from .comms import CommManager
    from .dispatch import Dispatcher

# Message: a request as backends built on Kernel hold it (the bridge keeps late comm
# messages' parents); authors see its header through get_parent().
__all__ = ["Kernel", "Message", "StdinNotImplementedError"]


class Channel:
    """Stands where ipykernel has a socket, so ``send_response(self.iopub_socket, ...)`` works."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<kernelkit channel {self.name}>"


IOPUB = Channel("iopub")


class Kernel:
    """Base class for kernels: set the class attributes, override ``do_execute``."""

    implementation: str = "kernelkit"
    implementation_version: str = __version__
    language: str = ""
    language_version: str = ""
    language_info: JSONDict = {}
    banner: str = ""
    help_links: list[JSONDict] = []

    # Subshells (JEP 91) are advertised and served for every kernel: kernelkit's own
    # messages (kernel_info, comms) run on them at once. A request that calls one of
    # your hooks waits until no other hook runs, unless you set concurrent_hooks: then
    # hooks run at the same time on several threads (subshells, control), which only
    # a kernel written for it can take. supports_subshells = False hides subshells.
    supports_subshells: bool = True
    concurrent_hooks: bool = False

    iopub_socket: Channel = IOPUB
    stdin_socket: Channel = Channel("stdin")
    shell_socket: Channel = Channel("shell")
    control_socket: Channel = Channel("control")

    def __init__(self, **kwargs: Any) -> None:
        # ipykernel kernels are configured with keyword arguments; keep them as attributes.
        for name, value in kwargs.items():
            setattr(self, name, value)
        self.execution_count: int = 0
        self._dispatcher: Dispatcher | None = None
        self._log: logging.Logger | None = None

    # -- information -------------------------------------------------------------

    @property
    def kernel_info(self) -> JSONDict:
        """kernel_info_reply content (without status), built from the class attributes."""
        return {
            "protocol_version": PROTOCOL_VERSION,
            "implementation": self.implementation,
            "implementation_version": self.implementation_version,
            "language_info": self.language_info,
            "banner": self.banner,
            "help_links": self.help_links,
            "debugger": False,
            "supported_features": [],
        }

    @property
    def comm_manager(self) -> CommManager:
        """This kernel's comms and comm targets (made on first use; see kernelkit.comms)."""
        manager: CommManager | None = getattr(self, "_comm_manager", None)
        if manager is None:
            from .comms import CommManager

            manager = self._comm_manager = CommManager(self._publish_comm)
        return manager

    @comm_manager.setter
    def comm_manager(self, value: CommManager) -> None:
        self._comm_manager = value

    def _publish_comm(self, msg_type: str, content: JSONDict, metadata: JSONDict | None,
                      buffers: list[bytes]) -> Any:
        if self._dispatcher is None:
            raise RuntimeError("comms need a running kernel")
        return self._dispatcher.publish(msg_type, content, metadata, buffers)

    @property
    def log(self) -> logging.Logger:
        """A logger writing to the kernel's stderr (the terminal that runs Jupyter)."""
        if self._log is None:
            from .logs import kernel_logger

            self._log = kernel_logger(type(self).__name__)
        return self._log

    @log.setter
    def log(self, value: logging.Logger) -> None:
        self._log = value

    def get_parent(self, channel: str | None = None) -> JSONDict:
        """The header of the request being handled on this thread ({} between requests)."""
        msg = self._dispatcher.parent if self._dispatcher is not None else None
        return msg.header if msg is not None else {}

    @property
    def _parent_header(self) -> JSONDict:
        return self.get_parent()

    # -- output and input ----------------------------------------------------------

    def send_response(
        self,
        stream: Any,
        msg_or_type: str | JSONDict,
        content: JSONDict | None = None,
        ident: Any = None,
        buffers: list[bytes] | None = None,
        track: bool = False,
        header: JSONDict | None = None,
        metadata: JSONDict | None = None,
        channel: str | None = None,
    ) -> JSONDict:
        """Publish a message (``stream``, ``display_data``, ...) as output of the current request.

        ``stream`` is accepted for ipykernel compatibility; output always goes to IOPub.
        ``stream`` messages of one request are merged, as ``print`` output is: the first
        goes out at once, ones close behind it together a little later, all in the order
        sent and before the reply (kernelkit.streams); the header returned for one that
        waits is ``{}``.
        """
        if isinstance(msg_or_type, dict):
            content = msg_or_type.get("content", content)
            msg_type = str(msg_or_type["header"]["msg_type"])
        else:
            msg_type = msg_or_type
        if self._dispatcher is None:
            raise RuntimeError("send_response() needs a running kernel")
        sent = self._dispatcher.publish(msg_type, content or {}, metadata, buffers or ())
        return {"header": sent, "msg_type": msg_type, "content": content or {}}

    def display(self, obj: Any, metadata: JSONDict | None = None,
                display_id: str | None = None) -> JSONDict:
        """Show a Python object as output of the current request (``display_data``).

        What IPython's ``display()`` would show, without IPython: the object's
        ``_repr_mimebundle_()`` (how ipywidgets, anywidget and many libraries describe
        themselves), its ``_repr_html_``/``_repr_png_``/... methods, and ``repr`` as
        text/plain. ``display_id`` lets a later ``update_display_data`` replace it.
        """
        data, meta = mimebundle(obj)
        content: JSONDict = {"data": data, "metadata": {**meta, **(metadata or {})},
                             "transient": {"display_id": display_id} if display_id else {}}
        return self.send_response(self.iopub_socket, "display_data", content)

    def raw_input(self, prompt: str = "") -> str:
        """Ask the user for a line of text through the client (the stdin channel)."""
        return self._input(str(prompt), password=False)

    def getpass(self, prompt: str = "", stream: Any = None) -> str:
        """Like raw_input, but the client hides what is typed."""
        return self._input(str(prompt), password=True)

    def _input(self, prompt: str, password: bool) -> str:
        if self._dispatcher is None:
            raise StdinNotImplementedError("input needs a running kernel")
        return self._dispatcher.input(prompt, password)

    # -- hooks, with ipykernel's defaults ------------------------------------------

    def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: JSONDict | None = None,
        allow_stdin: bool = False,
    ) -> JSONDict:
        """Run code; must be overridden."""
        raise NotImplementedError(f"{type(self).__name__} does not implement do_execute")

    def do_complete(self, code: str, cursor_pos: int) -> JSONDict:
        return {
            "status": "ok",
            "matches": [],
            "cursor_start": cursor_pos,
            "cursor_end": cursor_pos,
            "metadata": {},
        }

    def do_inspect(
        self, code: str, cursor_pos: int, detail_level: int = 0, omit_sections: Any = ()
    ) -> JSONDict:
        return {"status": "ok", "data": {}, "metadata": {}, "found": False}

    def do_history(
        self,
        hist_access_type: str,
        output: bool,
        raw: bool,
        session: int | None = None,
        start: int | None = None,
        stop: int | None = None,
        n: int | None = None,
        pattern: str | None = None,
        unique: bool = False,
    ) -> JSONDict:
        return {"status": "ok", "history": []}

    def do_is_complete(self, code: str) -> JSONDict:
        return {"status": "unknown"}

    def do_shutdown(self, restart: bool) -> JSONDict:
        return {"status": "ok", "restart": restart}


# IPython's rich-display methods and the MIME type each gives.
_REPR_METHODS = (
    ("_repr_html_", "text/html"),
    ("_repr_markdown_", "text/markdown"),
    ("_repr_svg_", "image/svg+xml"),
    ("_repr_png_", "image/png"),
    ("_repr_jpeg_", "image/jpeg"),
    ("_repr_latex_", "text/latex"),
    ("_repr_json_", "application/json"),
    ("_repr_javascript_", "application/javascript"),
)


def mimebundle(obj: Any) -> tuple[JSONDict, JSONDict]:
    """(data, metadata) for showing ``obj``, as IPython's display formatter would make them."""
    data: JSONDict = {}
    metadata: JSONDict = {}
    method = getattr(obj, "_repr_mimebundle_", None)
    if callable(method):
        got = method(include=None, exclude=None)
        if isinstance(got, tuple) and len(got) == 2:
            got, meta = got
            metadata.update(meta or {})
        data.update(got or {})
    for name, mime in _REPR_METHODS:
        if mime in data:
            continue
        repr_method = getattr(obj, name, None)
        if not callable(repr_method):
            continue
        value = repr_method()
        if isinstance(value, tuple) and len(value) == 2:
            value, meta = value
            metadata[mime] = meta
        if value is None:
            continue
        if isinstance(value, bytes):  # images: base64 text, as on the wire
            import base64

            value = base64.b64encode(value).decode("ascii")
        data[mime] = value
    data.setdefault("text/plain", repr(obj))
    return data, metadata
