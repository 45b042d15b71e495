"""Comms: the two-way channels between kernel code and a frontend that widgets are built on.

A comm is opened by either side (``comm_open`` with a target name), carries
``comm_msg`` both ways, and is closed by either side (``comm_close``). The kernel side
has a ``CommManager`` per kernel (``Kernel.comm_manager``): the targets kernel code
registered (a function called with the new comm when the frontend opens one to that
target), and the comms open now. Messages from the frontend arrive through the
dispatcher, which brackets them with busy/idle like any request, so output printed in
a comm callback belongs to the comm message that caused it.

The ``comm`` package (PyPI) is how libraries reach a kernel's comms without knowing
the kernel (ipywidgets 8, anywidget, bqplot): it exposes ``comm.create_comm`` and
``comm.get_comm_manager`` for the kernel to replace. kernelkit replaces them with its
own when ``comm`` is imported (``install``: an import hook, so a kernel that never
imports it pays nothing), and ``Comm``/``CommManager`` offer the same methods as the
package's ``BaseComm``/``CommManager``.

Shared state and its owner: ``CommManager._lock`` guards ``comms`` and ``targets``;
comm callbacks run on the thread that handles the message (the main shell, or a
subshell), never under the lock.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable
from typing import Any

from .wire import Message, new_id

# (msg_type, content, metadata, buffers) -> publishes on IOPub as a child of the current request
Publish = Callable[[str, dict[str, Any], dict[str, Any] | None, list[bytes]], Any]
CommCallback = Callable[[dict[str, Any]], Any]


def _warn(text: str) -> None:
    from .logs import logger

    logger().warning("%s", text)


def _buffers(buffers: Any) -> list[bytes]:
    return [bytes(b) for b in buffers] if buffers else []


class Comm:
    """One comm: send to the frontend, and callbacks for what it sends and for its close."""

    def __init__(
        self,
        target_name: str = "",
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[bytes] | None = None,
        comm_id: str | None = None,
        primary: bool = True,
        target_module: str | None = None,
        manager: CommManager | None = None,
        **kwargs: Any,
    ) -> None:
        self.comm_id = comm_id or new_id()
        self.target_name = target_name
        self.target_module = target_module
        self.primary = primary
        self.manager = manager if manager is not None else current_manager()
        self._closed = True
        self._msg_callback: CommCallback | None = None
        self._close_callback: CommCallback | None = None
        if primary:
            self.open(data, metadata, buffers)
        else:
            self._closed = False

    def publish_msg(
        self,
        msg_type: str,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[bytes] | None = None,
        **keys: Any,
    ) -> None:
        if sys.is_finalizing():
            return  # a widget's __del__ at interpreter exit: nothing can be sent any more
        content = {"data": {} if data is None else data, "comm_id": self.comm_id, **keys}
        self.manager.publish(msg_type, content, metadata or {}, _buffers(buffers))

    def open(
        self,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[bytes] | None = None,
    ) -> None:
        """Open the comm from the kernel's side (``comm_open`` to the frontend)."""
        self.manager.register_comm(self)
        try:
            keys: dict[str, Any] = {"target_name": self.target_name}
            if self.target_module is not None:
                keys["target_module"] = self.target_module
            self.publish_msg("comm_open", data, metadata, buffers, **keys)
            self._closed = False
        except BaseException:
            self.manager.unregister_comm(self)
            raise

    def send(
        self,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[bytes] | None = None,
    ) -> None:
        """Send a ``comm_msg`` to the frontend."""
        self.publish_msg("comm_msg", data, metadata, buffers)

    def close(
        self,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[bytes] | None = None,
        deleting: bool = False,
    ) -> None:
        """Close the comm (``comm_close`` to the frontend); closing twice does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            self.publish_msg("comm_close", data, metadata, buffers)
        finally:
            self.manager.unregister_comm(self)

    def on_msg(self, callback: CommCallback | None) -> None:
        self._msg_callback = callback

    def on_close(self, callback: CommCallback | None) -> None:
        self._close_callback = callback

    def handle_msg(self, msg: dict[str, Any]) -> None:
        if self._msg_callback is not None:
            self._msg_callback(msg)

    def handle_close(self, msg: dict[str, Any]) -> None:
        if self._close_callback is not None:
            self._close_callback(msg)


class CommManager:
    """A kernel's comm targets and open comms; handles the frontend's comm messages."""

    def __init__(self, publish: Publish) -> None:
        self.publish = publish
        self.comms: dict[str, Comm] = {}
        self.targets: dict[str, Callable[[Comm, dict[str, Any]], Any]] = {}
        self._lock = threading.Lock()

    # -- the comm package's API ---------------------------------------------------------

    def register_target(self, target_name: str, f: Callable[..., Any] | str) -> None:
        """Call ``f(comm, msg)`` when the frontend opens a comm to ``target_name``."""
        if isinstance(f, str):
            module, _, name = f.rpartition(".")
            f = getattr(importlib.import_module(module), name)
        assert callable(f)
        with self._lock:
            self.targets[target_name] = f

    def unregister_target(self, target_name: str, f: Any = None) -> Any:
        with self._lock:
            return self.targets.pop(target_name, None)

    def register_comm(self, comm: Comm) -> str:
        with self._lock:
            self.comms[comm.comm_id] = comm
        return comm.comm_id

    def unregister_comm(self, comm: Comm) -> None:
        with self._lock:
            if self.comms.get(comm.comm_id) is comm:
                del self.comms[comm.comm_id]

    def get_comm(self, comm_id: str) -> Comm | None:
        with self._lock:
            return self.comms.get(comm_id)

    def create_comm(self, *args: Any, **kwargs: Any) -> Comm:
        """``comm.create_comm``: a comm opened from the kernel."""
        kwargs.setdefault("manager", self)
        return Comm(*args, **kwargs)

    # -- what the frontend sends (the dispatcher calls these) ------------------------------

    def comm_info(self, target_name: str | None = None) -> dict[str, dict[str, str]]:
        with self._lock:
            return {cid: {"target_name": c.target_name} for cid, c in self.comms.items()
                    if target_name is None or c.target_name == target_name}

    def comm_open(self, msg: Message) -> None:
        content = msg.content
        comm_id, target = content.get("comm_id"), content.get("target_name")
        if not isinstance(comm_id, str) or not isinstance(target, str):
            _warn("comm_open without a comm_id and target_name string; ignored")
            return
        f = self._target(target)
        comm = Comm(target_name=target, comm_id=comm_id, primary=False, manager=self)
        if f is None:
            # The spec: a comm to a target the kernel does not know is closed at once.
            comm.close()
            return
        self.register_comm(comm)
        try:
            f(comm, as_dict(msg))
        except Exception as exc:
            _warn(f"comm target {target!r} raised {exc!r}; the comm is closed")
            comm.close()

    def comm_msg(self, msg: Message) -> None:
        comm = self._comm_of(msg)
        if comm is None:
            return
        try:
            comm.handle_msg(as_dict(msg))
        except Exception as exc:
            _warn(f"comm {comm.comm_id} ({comm.target_name}) message callback raised {exc!r}")

    def comm_close(self, msg: Message) -> None:
        comm = self._comm_of(msg)
        if comm is None:
            return
        comm._closed = True
        self.unregister_comm(comm)
        try:
            comm.handle_close(as_dict(msg))
        except Exception as exc:
            _warn(f"comm {comm.comm_id} ({comm.target_name}) close callback raised {exc!r}")

    def _comm_of(self, msg: Message) -> Comm | None:
        comm_id = msg.content.get("comm_id")
        comm = self.get_comm(comm_id) if isinstance(comm_id, str) else None
        if comm is None:
            _warn(f"{msg.msg_type} for no open comm ({comm_id!r}); ignored")
        return comm

    def _target(self, name: str) -> Callable[[Comm, dict[str, Any]], Any] | None:
        with self._lock:
            f = self.targets.get(name)
        if f is None and name.startswith("jupyter.widget") and "ipywidgets" in sys.modules:
            # ipywidgets registers its targets only under IPython (get_ipython()); do it
            # for it, so that a page reload's request_states finds its widgets.
            register = getattr(sys.modules["ipywidgets"], "register_comm_target", None)
            if callable(register):
                register()
                with self._lock:
                    f = self.targets.get(name)
        return f


# A kernel that routes comm messages to these by hand (metakernel puts them in its
# shell_handlers) gets kernelkit's handling of them (tables.custom_handler).
for _handler in (CommManager.comm_open, CommManager.comm_msg, CommManager.comm_close):
    _handler.kernelkit_default = True  # type: ignore[attr-defined]


def as_dict(msg: Message) -> dict[str, Any]:
    """A message as comm callbacks expect it (ipykernel's shape: a dict of its parts)."""
    return {
        "header": msg.header,
        "msg_id": msg.header.get("msg_id"),
        "msg_type": msg.msg_type,
        "parent_header": msg.parent_header,
        "metadata": msg.metadata,
        "content": msg.content,
        "buffers": [memoryview(b) for b in msg.buffers],
    }


# -- the comm package --------------------------------------------------------------------

_current: Callable[[], CommManager] | None = None


def current_manager() -> CommManager:
    if sys.is_finalizing():
        # Widgets close their comms in __del__ as the interpreter ends, when nothing can be
        # imported or sent any more: they get a manager that publishes nothing.
        return CommManager(lambda *args: None)
    if _current is None:
        raise RuntimeError("no kernelkit kernel is running in this process")
    return _current()


def _patch(module: Any) -> None:
    module.create_comm = lambda *args, **kwargs: current_manager().create_comm(*args, **kwargs)
    module.get_comm_manager = current_manager


class _CommImportHook:
    """Replaces the comm package's factories as soon as it is imported."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "comm":
            return None
        import importlib.machinery

        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader.exec_module = _patching(spec.loader.exec_module)  # type: ignore[method-assign,assignment]
                assert isinstance(spec, importlib.machinery.ModuleSpec)
                return spec
        return None


def _patching(exec_module: Callable[[Any], None]) -> Callable[[Any], None]:
    def patched(module: Any) -> None:
        exec_module(module)
        _patch(module)

    return patched


def install(manager: Callable[[], CommManager]) -> None:
    """Make ``manager()`` what the comm package hands out, now or when it is imported."""
    global _current
    _current = manager
    if "comm" in sys.modules:
        _patch(sys.modules["comm"])
    elif not any(isinstance(f, _CommImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _CommImportHook())
