"""A notebook frontend's side of comms and Jupyter widgets, on a jupyter_client client.

Tests drive a kernel with it as JupyterLab's widget manager would: open a comm (maybe on a
subshell), send comm messages with binary buffers, read IOPub and pick out the comm messages
of one comm, and build the widget protocol 2.1 messages (``update``, ``request_state``,
``custom``, the ``jupyter.widget.control`` comm's ``request_states``).

Everything read from IOPub and shell is kept, so a test can wait for one message and still
find the others later: ``until_idle(msg_id)`` returns every IOPub message whose parent is
``msg_id``, up to its idle status, whenever they were read.

    fe = Frontend(kc)
    comm_id, msg_id = fe.comm_open("echo", {"x": 1})
    msgs = fe.until_idle(msg_id)
    fe.comm_msg(comm_id, {"y": 2}, buffers=[b"\\x00\\x01"])
"""

from __future__ import annotations

import time
import uuid
from typing import Any

Msg = dict[str, Any]

WIDGET_TARGET = "jupyter.widget"
CONTROL_TARGET = "jupyter.widget.control"
WIDGET_PROTOCOL_VERSION = "2.1.0"
VIEW_MIMETYPE = "application/vnd.jupyter.widget-view+json"
COMM_TYPES = ("comm_open", "comm_msg", "comm_close")


def is_idle(msg: Msg) -> bool:
    return msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle"


class Frontend:
    """One client, as a frontend: requests on shell/control, everything read kept."""

    def __init__(self, kc: Any, timeout: float = 30) -> None:
        self.kc = kc
        self.timeout = timeout
        self.iopub: list[Msg] = []  # every IOPub message read, in order
        self._replies: dict[str, Msg] = {}  # shell/control replies read, by parent msg_id

    # -- sending -----------------------------------------------------------------------------

    def send(self, msg_type: str, content: Msg | None = None, *, metadata: Msg | None = None,
             buffers: list[bytes] | None = None, subshell_id: str | None = None,
             channel: str = "shell") -> str:
        """Send one request; its msg_id."""
        msg = self.kc.session.msg(msg_type, content or {}, metadata=metadata or {})
        if subshell_id is not None:
            msg["header"]["subshell_id"] = subshell_id
        chan = getattr(self.kc, f"{channel}_channel")
        self.kc.session.send(chan.socket, msg, buffers=list(buffers or []))
        return str(msg["header"]["msg_id"])

    def execute(self, code: str, *, subshell_id: str | None = None, **content: Any) -> str:
        body = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                "allow_stdin": False, "stop_on_error": True, **content}
        return self.send("execute_request", body, subshell_id=subshell_id)

    def comm_open(self, target_name: str, data: Msg | None = None, *,
                  metadata: Msg | None = None, buffers: list[bytes] | None = None,
                  comm_id: str | None = None, subshell_id: str | None = None) -> tuple[str, str]:
        """Open a comm from the frontend: (comm_id, msg_id)."""
        comm_id = comm_id or uuid.uuid4().hex
        msg_id = self.send("comm_open", {"comm_id": comm_id, "target_name": target_name,
                                         "data": data or {}},
                           metadata=metadata, buffers=buffers, subshell_id=subshell_id)
        return comm_id, msg_id

    def comm_msg(self, comm_id: str, data: Msg, *, metadata: Msg | None = None,
                 buffers: list[bytes] | None = None, subshell_id: str | None = None) -> str:
        return self.send("comm_msg", {"comm_id": comm_id, "data": data}, metadata=metadata,
                         buffers=buffers, subshell_id=subshell_id)

    def comm_close(self, comm_id: str, data: Msg | None = None, *,
                   buffers: list[bytes] | None = None, subshell_id: str | None = None) -> str:
        return self.send("comm_close", {"comm_id": comm_id, "data": data or {}},
                         buffers=buffers, subshell_id=subshell_id)

    def comm_info(self, target_name: str | None = None) -> dict[str, Msg]:
        """The kernel's open comms ({comm_id: {"target_name": …}}), maybe for one target."""
        content = {} if target_name is None else {"target_name": target_name}
        reply = self.reply(self.send("comm_info_request", content))["content"]
        assert reply["status"] == "ok", reply
        return reply["comms"]  # type: ignore[no-any-return]

    def create_subshell(self) -> str:
        reply = self.reply(self.send("create_subshell_request", channel="control"), "control")
        assert reply["content"]["status"] == "ok", reply["content"]
        return str(reply["content"]["subshell_id"])

    # -- receiving ---------------------------------------------------------------------------

    def reply(self, msg_id: str, channel: str = "shell", timeout: float | None = None) -> Msg:
        """The reply to msg_id on shell or control (replies to other requests are kept)."""
        if msg_id in self._replies:
            return self._replies.pop(msg_id)
        chan = getattr(self.kc, f"{channel}_channel")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            msg = chan.get_msg(timeout=max(0.01, deadline - time.monotonic()))
            parent = msg["parent_header"].get("msg_id")
            if parent == msg_id:
                return msg  # type: ignore[no-any-return]
            self._replies[parent] = msg

    def first_reply(self, *msg_ids: str, timeout: float | None = None) -> str:
        """Which of these requests is answered first on shell (the reply stays for reply())."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for msg_id in msg_ids:
                if msg_id in self._replies:
                    return msg_id
            msg = self.kc.shell_channel.get_msg(timeout=max(0.01, deadline - time.monotonic()))
            self._replies[msg["parent_header"].get("msg_id")] = msg

    def _read(self, deadline: float) -> Msg:
        msg: Msg = self.kc.iopub_channel.get_msg(timeout=max(0.01, deadline - time.monotonic()))
        self.iopub.append(msg)
        return msg

    def children(self, msg_id: str) -> list[Msg]:
        """The IOPub messages read so far whose parent is msg_id."""
        return [m for m in self.iopub if m["parent_header"].get("msg_id") == msg_id]

    def until_idle(self, msg_id: str, timeout: float | None = None) -> list[Msg]:
        """Every IOPub message whose parent is msg_id, through its idle status."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not any(is_idle(m) for m in self.children(msg_id)):
            self._read(deadline)
        return self.children(msg_id)

    def wait_for(self, pred: Any, timeout: float | None = None) -> Msg:
        """The first IOPub message (read before or now) for which pred(msg) is true."""
        for msg in self.iopub:
            if pred(msg):
                return msg
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            msg = self._read(deadline)
            if pred(msg):
                return msg

    def comm_messages(self, comm_id: str, msg_type: str | None = None) -> list[Msg]:
        """The comm_open/comm_msg/comm_close messages read so far for comm_id."""
        return [m for m in self.iopub if m["msg_type"] in COMM_TYPES
                and m["content"].get("comm_id") == comm_id
                and (msg_type is None or m["msg_type"] == msg_type)]

    def run(self, code: str, **kw: Any) -> tuple[Msg, list[Msg]]:
        """Execute code: (its reply, its IOPub messages through idle)."""
        msg_id = self.execute(code, **kw)
        reply = self.reply(msg_id)
        return reply, self.until_idle(msg_id)

    def stdout(self, code: str, **kw: Any) -> str:
        reply, msgs = self.run(code, **kw)
        assert reply["content"]["status"] == "ok", reply["content"]
        return stdout_of(msgs)

    # -- widgets -------------------------------------------------------------------------------

    def widget_update(self, model_id: str, state: Msg, *, buffers: dict[str, bytes] | None = None,
                      subshell_id: str | None = None) -> str:
        """The frontend sets keys of a model (a slider moved): an ``update`` message.

        ``buffers`` maps top-level keys to binary values, sent as buffers with their paths.
        """
        data, raw = update_data(state, buffers)
        return self.comm_msg(model_id, data, buffers=raw, subshell_id=subshell_id)

    def widget_custom(self, model_id: str, content: Msg, *, buffers: list[bytes] | None = None,
                      subshell_id: str | None = None) -> str:
        """A custom message to the kernel's model (a button click is {"event": "click"})."""
        return self.comm_msg(model_id, {"method": "custom", "content": content}, buffers=buffers,
                             subshell_id=subshell_id)

    def request_state(self, model_id: str, subshell_id: str | None = None) -> str:
        return self.comm_msg(model_id, {"method": "request_state"}, subshell_id=subshell_id)

    def request_states(self, timeout: float | None = None) -> tuple[Msg, list[bytes]]:
        """What a reloaded page does: open jupyter.widget.control, ask for every widget's
        state, close it. Returns the ``update_states`` data and its buffers."""
        control, opened = self.comm_open(CONTROL_TARGET, metadata={"version": "1.0.0"})
        self.until_idle(opened, timeout)
        assert not self.comm_messages(control, "comm_close"), "the control comm was refused"
        asked = self.comm_msg(control, {"method": "request_states"})
        answers = [m for m in self.until_idle(asked, timeout)
                   if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == control]
        self.until_idle(self.comm_close(control), timeout)
        assert answers, "no answer to request_states"
        data = answers[0]["content"]["data"]
        assert data["method"] == "update_states", data
        return data, [bytes(b) for b in answers[0].get("buffers") or []]


def update_data(state: Msg, buffers: dict[str, bytes] | None = None) -> tuple[Msg, list[bytes]]:
    """An ``update`` message's data and buffers: binary values travel as buffers."""
    items = list((buffers or {}).items())
    data = {"method": "update", "state": dict(state), "buffer_paths": [[k] for k, _ in items]}
    return data, [v for _, v in items]


def stdout_of(msgs: list[Msg]) -> str:
    return "".join(m["content"]["text"] for m in msgs
                   if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")


def widget_opens(msgs: list[Msg]) -> dict[str, Msg]:
    """model_id -> state, of the widget comms opened in these messages."""
    return {m["content"]["comm_id"]: m["content"]["data"]["state"] for m in msgs
            if m["msg_type"] == "comm_open" and m["content"]["target_name"] == WIDGET_TARGET}


def displayed_models(msgs: list[Msg]) -> list[str]:
    """The model ids of the widget views displayed in these messages."""
    return [m["content"]["data"][VIEW_MIMETYPE]["model_id"] for m in msgs
            if m["msg_type"] in ("display_data", "execute_result")
            and VIEW_MIMETYPE in m["content"]["data"]]


def resolve(state: Msg, opened: dict[str, Msg], key: str) -> Msg:
    """The state of the model a "IPY_MODEL_<id>" reference at state[key] names."""
    ref = state[key]
    assert isinstance(ref, str) and ref.startswith("IPY_MODEL_"), ref
    return opened[ref[len("IPY_MODEL_"):]]
