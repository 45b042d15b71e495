"""``ipykernel.kernelbase.Kernel`` for kernels run unchanged: kernelkit.Kernel with what they use.

Beyond kernelkit.Kernel (hooks, ``send_response``, ``execution_count``), real
wrapper kernels use ipykernel's inside parts: ``shell_handlers`` and
``control_handlers`` (tables.py honours what they install), ``session`` (session.py),
``parent`` (the kernel app: ``extra_args``, ``connection_file``, ``config``),
``protocol_version``, ``ident`` and the handler methods they override and call
``super()`` of. The comm package (``comm.get_comm_manager()``) is this kernel's from
its ``__init__`` on, as under ipykernel.

Traitlets. metakernel declares config traits on its kernel class
(``plot_settings = Dict(...).tag(config=True)``), which need a traitlets
``Configurable`` base. The metaclass gives a class that base when — and only when —
its own body declares traits; a kernel that never uses traitlets never imports it.
"""

from __future__ import annotations

from typing import Any

from .. import kernel as _kernel
from ..wire import PROTOCOL_VERSION, new_id
from .rebase import Rebasing
from .session import Session

__all__ = ["Kernel"]

SHELL_MSG_TYPES = [
    "execute_request", "complete_request", "inspect_request", "history_request",
    "comm_info_request", "kernel_info_request", "connect_request", "shutdown_request",
    "is_complete_request", "interrupt_request",
]
CONTROL_MSG_TYPES = [
    *SHELL_MSG_TYPES, "debug_request", "usage_request", "create_subshell_request",
    "delete_subshell_request", "list_subshell_request",
]


class _KernelMeta(Rebasing):
    """Rebases a kernel class whose body declares traits on a Configurable kernel."""

    root = staticmethod(lambda: Kernel)

    @staticmethod
    def flavour() -> type:
        from .traits import configurable_kernel

        return configurable_kernel()


def _default_handler(msg_type: str) -> Any:
    async def handler(self: Kernel, stream: Any, ident: Any, parent: Any) -> None:
        dispatcher = self._dispatcher
        if dispatcher is not None:
            dispatcher.run_default()

    handler.__name__ = handler.__qualname__ = msg_type
    handler.__doc__ = f"kernelkit's handling of {msg_type} (a subclass may override it)."
    handler.kernelkit_default = True  # type: ignore[attr-defined]
    return handler


class Kernel(_kernel.Kernel, metaclass=_KernelMeta):
    """ipykernel's wrapper-kernel base, as kernels that use its inside parts expect it."""

    protocol_version: str = PROTOCOL_VERSION
    msg_types: list[str] = SHELL_MSG_TYPES
    control_msg_types: list[str] = CONTROL_MSG_TYPES

    def __init__(self, **kwargs: Any) -> None:
        self.parent: Any = kwargs.pop("parent", None)
        session = kwargs.pop("session", None)
        super().__init__(**kwargs)
        self._session = session
        self.ident: str = new_id()
        self.shell_handlers: dict[str, Any] = {t: getattr(self, t) for t in self.msg_types}
        self.control_handlers: dict[str, Any] = {
            t: getattr(self, t) for t in self.control_msg_types
        }
        from .. import comms

        comms.install(lambda: self.comm_manager)  # comm.get_comm_manager() in __init__ works

    @property
    def session(self) -> Any:
        if self._session is None:
            self._session = Session(self)
        return self._session

    @session.setter
    def session(self, value: Any) -> None:
        self._session = value

    def set_parent(self, ident: Any, parent: Any, channel: str = "shell") -> None:
        """Kept for kernels that call it: the parent of output is the request being handled."""

    def _publish_status(self, status: str, channel: str = "shell", parent: Any = None) -> None:
        self.send_response(self.iopub_socket, "status", {"execution_state": status})


for _msg_type in CONTROL_MSG_TYPES:
    setattr(Kernel, _msg_type, _default_handler(_msg_type))
