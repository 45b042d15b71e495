"""Comms through the bridge (protocol 1.2): the host's half of a backend's comms.

Every comm passes through the host, so the host keeps the table of open comms
(a ``kernelkit.comms.CommManager``): it answers ``comm_info`` itself, routes the
frontend's messages to the backend, and when the backend ends it closes what was
open with it, so that a frontend never holds a widget whose other half is gone.

Frontend to backend: the dispatcher hands ``comm_open``/``comm_msg``/``comm_close``
to the manager (on the thread that handles the message, with busy/idle around it);
for a target the backend registered, each becomes a host request of the same name,
so what the backend prints while handling it is that message's output.

Backend to frontend: ``comm_open``/``comm_msg``/``comm_close`` notifications, and
``comm_register_target``/``comm_unregister_target``. Unlike output they are state, not
text for a cell: they are published whenever they come — during the request they
name, during another, or between requests (read by the process watcher) — never
dropped as late.

Shared state and its owner: ``_lock`` guards ``targets`` and ``_parents``; the comm
table is the manager's (its own lock). Nothing here calls the backend under a lock.
"""

from __future__ import annotations

import base64
import binascii
import collections
import threading
from typing import TYPE_CHECKING, Any

from ..comms import Comm, CommManager
from ..kernel import Message
from ..logs import logger
from ..requests import describe
from . import jsonrpc

if TYPE_CHECKING:
    from .kernel import BridgeKernel

# Notifications from the backend handled here (published whenever they come).
COMM_NOTIFICATIONS = frozenset(
    {"comm_open", "comm_msg", "comm_close", "comm_register_target", "comm_unregister_target"}
)
# Recent host requests whose parent a late comm message may still name.
RECENT_REQUESTS = 64


class BridgeCommManager(CommManager):
    """A comm table whose targets are the backend's: opening one asks the backend."""

    def __init__(self, comms: BackendComms) -> None:
        super().__init__(comms.kernel._publish_comm)
        self._bridge = comms

    def _target(self, name: str) -> Any:
        local = super()._target(name)  # one the host's own code registered, if any
        if local is not None:
            return local
        return self._bridge.accept if self._bridge.has_target(name) else None


class BackendComms:
    """The backend's comm targets, and the forwarding of comm traffic both ways."""

    def __init__(self, kernel: BridgeKernel) -> None:
        self.kernel = kernel
        self.manager = BridgeCommManager(self)
        self._lock = threading.Lock()
        self.targets: set[str] = set()
        # rid -> the request message it was sent for; bounded (RECENT_REQUESTS).
        self._parents: collections.OrderedDict[int, Message] = collections.OrderedDict()

    # -- targets ------------------------------------------------------------------------

    def has_target(self, name: str) -> bool:
        with self._lock:
            return name in self.targets

    def set_targets(self, names: list[str]) -> None:
        with self._lock:
            self.targets = set(names)

    # -- parents ------------------------------------------------------------------------

    def sent(self, rid: int, parent: Message | None) -> None:
        """A host request went out for ``parent``: late comm messages naming it get it.

        Only its header is kept (a cell's code may be megabytes): enough to be a parent.
        """
        if parent is None:
            return
        stub = parent.header_only()
        with self._lock:
            self._parents[rid] = stub
            while len(self._parents) > RECENT_REQUESTS:
                self._parents.popitem(last=False)

    def parent_of(self, tag: Any, running: Message | None) -> Message | None:
        if isinstance(tag, int) and not isinstance(tag, bool):
            with self._lock:
                known = self._parents.get(tag)
            if known is not None:
                if running is not None and running.header.get("msg_id") == known.header.get(
                        "msg_id"):
                    return running  # the request itself: its waiting text goes out first
                return known
        return running

    # -- frontend -> backend ----------------------------------------------------------------

    def accept(self, comm: Comm, msg: dict[str, Any]) -> None:
        """The frontend opened a comm to one of the backend's targets: ask the backend."""
        reply = self.kernel._request("comm_open", {
            "comm_id": comm.comm_id, "target_name": comm.target_name, **_parts(msg),
        })
        if reply.get("status") == "error":
            # CommManager.comm_open logs this and closes the comm (comm_close to the frontend).
            raise RuntimeError(f"the backend refused it: {reply.get('ename')}: "
                               f"{reply.get('evalue')}")
        self._wire(comm)

    def _wire(self, comm: Comm) -> None:
        comm.on_msg(lambda msg: self._forward("comm_msg", comm, msg))
        comm.on_close(lambda msg: self._forward("comm_close", comm, msg))

    def _forward(self, method: str, comm: Comm, msg: dict[str, Any]) -> None:
        reply = self.kernel._request(method, {"comm_id": comm.comm_id, **_parts(msg)})
        if reply.get("status") == "error":
            logger().warning("backend %s for comm %s (%s) failed: %s: %s", method, comm.comm_id,
                             comm.target_name, reply.get("ename"), reply.get("evalue"))

    # -- backend -> frontend ----------------------------------------------------------------

    def notification(self, msg: jsonrpc.Notification, running: Message | None) -> None:
        """A comm notification from the backend, published whatever request runs (if any)."""
        params = msg.params
        method = msg.method
        if method in ("comm_register_target", "comm_unregister_target"):
            name = params.get("target_name")
            if not isinstance(name, str) or not name:
                _drop(method, "target_name must be a non-empty string")
                return
            with self._lock:
                if method == "comm_register_target":
                    self.targets.add(name)
                else:
                    self.targets.discard(name)
            return
        parts, problem = _check(method, params)
        if problem:
            _drop(method, problem)
            return
        comm_id: str = params["comm_id"]
        parent = self.parent_of(params.get("request"), running)
        content: dict[str, Any] = {"comm_id": comm_id, "data": parts["data"]}
        if method == "comm_open":
            content["target_name"] = params["target_name"]
            if isinstance(params.get("target_module"), str):
                content["target_module"] = params["target_module"]
            if self.manager.get_comm(comm_id) is not None:
                _drop(method, f"comm {comm_id} is open already")
                return
            comm = Comm(target_name=params["target_name"], comm_id=comm_id, primary=False,
                        manager=self.manager)
            self._wire(comm)
            self.manager.register_comm(comm)
        else:
            known = self.manager.get_comm(comm_id)
            if known is None:
                logger().warning("backend %s for comm %s, which is not open (closed by the "
                                 "frontend?): dropped", method, comm_id)
                return
            if method == "comm_close":
                known._closed = True
                self.manager.unregister_comm(known)
        self.kernel._publish(method, content, parent, parts["metadata"], parts["buffers"])

    def backend_gone(self) -> None:
        """The backend ended: close its comms for the frontend and forget its targets."""
        with self._lock:
            self.targets.clear()
            self._parents.clear()
        for comm in list(self.manager.comms.values()):
            try:
                comm.close()  # comm_close to the frontend; no callback: the backend is gone
            except Exception as exc:  # a full IOPub must not stop the restart
                logger().warning("could not close comm %s: %r", comm.comm_id, exc)


def _parts(msg: dict[str, Any]) -> dict[str, Any]:
    """data, metadata and base64 buffers of a frontend comm message, for the backend."""
    content = msg.get("content") or {}
    data = content.get("data")
    return {
        "data": data if isinstance(data, dict) else {},
        "metadata": msg.get("metadata") or {},
        "buffers": [base64.b64encode(b).decode("ascii") for b in msg.get("buffers") or ()],
    }


def _check(method: str, params: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The data, metadata and decoded buffers of a backend comm notification, or a problem."""
    parts: dict[str, Any] = {}
    if not isinstance(params.get("comm_id"), str) or not params["comm_id"]:
        return parts, "comm_id must be a non-empty string"
    if method == "comm_open" and not isinstance(params.get("target_name"), str):
        return parts, "target_name must be a string"
    for key in ("data", "metadata"):
        value = params.get(key, {})
        if value is None:
            value = {}
        if not isinstance(value, dict):
            return parts, f"{key} must be an object, not {describe(value)}"
        parts[key] = value
    raw = params.get("buffers") or []
    if not isinstance(raw, list):
        return parts, f"buffers must be an array of base64 strings, not {describe(raw)}"
    buffers = []
    for i, item in enumerate(raw):
        if not isinstance(item, str):
            return parts, f"buffers[{i}] must be a base64 string, not {describe(item)}"
        try:
            buffers.append(base64.b64decode(item, validate=True))
        except (binascii.Error, ValueError):
            return parts, f"buffers[{i}] is not valid base64"
    parts["buffers"] = buffers
    return parts, None


def _drop(method: str, problem: str) -> None:
    logger().warning("backend %s notification ignored: %s", method, problem)
