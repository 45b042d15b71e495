"""Comms in Python kernels (kernelkit.comms): in-process through FakeTransport, then for real.

The real tests run kk_testkernels:PythonKernel (exec-based) under jupyter_client and use
the comm package and ipywidgets from PyPI as a notebook user's code would.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest

from kernelkit import Kernel
from kernelkit.dispatch import Dispatcher
from kernelkit.testing import FakeTransport, attach, request


class Plain(Kernel):
    implementation = "plain"
    implementation_version = "1"
    language_info = {"name": "plain", "mimetype": "text/plain", "file_extension": ".txt"}

    def do_execute(self, code: str, silent: bool, store_history: bool = True,
                   user_expressions: Any = None, allow_stdin: bool = False) -> Any:
        return {"status": "ok", "execution_count": self.execution_count, "payload": [],
                "user_expressions": {}}


def _kernel() -> tuple[Plain, FakeTransport, Dispatcher]:
    kernel = Plain()
    transport, dispatcher = attach(kernel)
    return kernel, transport, dispatcher


def test_a_comm_opened_by_the_frontend_to_a_target_gets_messages_both_ways() -> None:
    kernel, transport, dispatcher = _kernel()
    got: list[Any] = []

    def target(comm: Any, msg: dict[str, Any]) -> None:
        got.append(("open", msg["content"]["data"]))
        comm.on_msg(lambda m: (got.append(("msg", m["content"]["data"], m["buffers"])),
                               print("inside the callback"),
                               comm.send({"echo": m["content"]["data"]}, buffers=[b"\x00\x01"])))
        comm.on_close(lambda m: got.append(("close",)))

    kernel.comm_manager.register_target("echo", target)
    saved = sys.stdout, sys.stderr
    dispatcher.capture_output()
    try:
        dispatcher.handle("shell", request("comm_open", {"comm_id": "c1", "target_name": "echo",
                                                         "data": {"x": 1}}))
        msg = request("comm_msg", {"comm_id": "c1", "data": {"y": 2}})
        msg.buffers = [b"raw"]
        dispatcher.handle("shell", msg)
        info = request("comm_info_request", {"target_name": "echo"})
        dispatcher.handle("shell", info)
        dispatcher.handle("shell", request("comm_close", {"comm_id": "c1", "data": {}}))
    finally:
        sys.stdout, sys.stderr = saved
    assert got[0] == ("open", {"x": 1})
    assert got[1][:2] == ("msg", {"y": 2}) and bytes(got[1][2][0]) == b"raw"
    assert got[2] == ("close",)
    for_msg = [s for s in transport.sent if s.parent_id == msg.msg_id]
    kinds = [(s.msg_type, s.content.get("execution_state") or s.content.get("name"))
             for s in for_msg]
    # busy, the callback's print and its comm_msg (in that order), idle: all children of it
    assert kinds == [("status", "busy"), ("stream", "stdout"), ("comm_msg", None),
                     ("status", "idle")]
    echo = next(s for s in for_msg if s.msg_type == "comm_msg")
    assert echo.content == {"data": {"echo": {"y": 2}}, "comm_id": "c1"}
    assert echo.buffers == [b"\x00\x01"]
    assert transport.reply_to(info)["comms"] == {"c1": {"target_name": "echo"}}
    assert kernel.comm_manager.comms == {}


def test_a_comm_to_an_unknown_target_is_closed_at_once() -> None:
    kernel, transport, dispatcher = _kernel()
    dispatcher.handle("shell", request("comm_open", {"comm_id": "c2", "target_name": "nope",
                                                     "data": {}}))
    closes = [s for s in transport.sent if s.msg_type == "comm_close"]
    assert [c.content["comm_id"] for c in closes] == ["c2"]
    assert kernel.comm_manager.comms == {}


def test_comms_opened_by_the_kernel_are_listed_and_filtered() -> None:
    kernel, transport, dispatcher = _kernel()
    parent = request("execute_request", {"code": ""})
    dispatcher._local.parent = parent  # as if inside a cell
    a = kernel.comm_manager.create_comm(target_name="a", data={"v": 1}, buffers=[b"buf"])
    kernel.comm_manager.create_comm(target_name="b")
    opened = [s for s in transport.sent if s.msg_type == "comm_open"]
    assert opened[0].content == {"data": {"v": 1}, "comm_id": a.comm_id, "target_name": "a"}
    assert opened[0].buffers == [b"buf"] and opened[0].parent is parent
    dispatcher._local.parent = None
    for target, n in ((None, 2), ("a", 1), ("zzz", 0)):
        info = request("comm_info_request", {} if target is None else {"target_name": target})
        dispatcher.handle("shell", info)
        assert len(transport.reply_to(info)["comms"]) == n
    dispatcher._local.parent = parent
    a.close()
    a.close()  # twice: once on the wire
    closed = [s.content["comm_id"] for s in transport.sent if s.msg_type == "comm_close"]
    assert closed == [a.comm_id]


def test_a_callback_that_raises_is_logged_and_the_kernel_goes_on(caplog: Any) -> None:
    kernel, transport, dispatcher = _kernel()

    def target(comm: Any, msg: dict[str, Any]) -> None:
        comm.on_msg(lambda m: 1 / 0)

    kernel.comm_manager.register_target("bad", target)
    kernel.comm_manager.register_target("worse", lambda comm, msg: [][0])
    dispatcher.handle("shell", request("comm_open", {"comm_id": "c3", "target_name": "bad"}))
    dispatcher.handle("shell", request("comm_msg", {"comm_id": "c3", "data": {}}))
    dispatcher.handle("shell", request("comm_open", {"comm_id": "c4", "target_name": "worse"}))
    dispatcher.handle("shell", request("comm_msg", {"comm_id": "nowhere", "data": {}}))
    # the raising target's comm is closed; the one whose callback raised stays open
    assert set(kernel.comm_manager.comms) == {"c3"}
    assert [s.content["comm_id"] for s in transport.sent if s.msg_type == "comm_close"] == ["c4"]
    ex = request("execute_request", {"code": "after"})
    dispatcher.handle("shell", ex)
    assert transport.reply_to(ex)["status"] == "ok"


def test_comm_messages_without_comms_are_answered_quietly() -> None:
    kernel, transport, dispatcher = _kernel()
    dispatcher.handle("shell", request("comm_msg", {"comm_id": "x", "data": {}}))
    assert getattr(kernel, "_comm_manager", None) is None  # nothing was made for it
    assert [s.msg_type for s in transport.sent] == ["status", "status"]


# -- real kernels, real libraries --------------------------------------------------------------


def _iopub_until_idle(kc: Any, msg_id: str, timeout: float = 30) -> list[dict[str, Any]]:
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        out.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return out
    raise TimeoutError(msg_id)


@pytest.fixture
def python_kernel() -> Any:
    from jupyter_client import KernelManager

    km = KernelManager(kernel_name="kk-python")  # kk_testkernels:PythonKernel
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    kc.kernel_info()
    assert kc.get_shell_msg(timeout=30)["content"]["implementation"] == "kk-python"
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def _run(kc: Any, code: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    msg_id = kc.execute(code)
    reply = kc.get_shell_msg(timeout=30)
    assert reply["parent_header"]["msg_id"] == msg_id
    return reply, _iopub_until_idle(kc, msg_id)


def _stdout(msgs: list[dict[str, Any]]) -> str:
    return "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream")


def test_the_comm_package_reaches_the_kernels_comms(python_kernel: Any) -> None:
    kc = python_kernel
    reply, msgs = _run(kc, "import comm\n"
                           "c = comm.create_comm(target_name='kk.echo', data={'hello': 1})\n"
                           "got = []\n"
                           "c.on_msg(lambda m: (got.append(m['content']['data']),"
                           " c.send({'back': m['content']['data']})))\n")
    assert reply["content"]["status"] == "ok", reply["content"]
    opened = next(m for m in msgs if m["msg_type"] == "comm_open")
    assert opened["content"]["target_name"] == "kk.echo"
    assert opened["content"]["data"] == {"hello": 1}
    comm_id = opened["content"]["comm_id"]
    msg = kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {"n": 5}})
    kc.shell_channel.send(msg)
    back = _iopub_until_idle(kc, msg["header"]["msg_id"])
    answers = [m["content"]["data"] for m in back if m["msg_type"] == "comm_msg"]
    assert answers == [{"back": {"n": 5}}]
    reply, msgs = _run(kc, "print(got)")
    assert _stdout(msgs) == "[{'n': 5}]\n"
    info = kc.comm_info(target_name="kk.echo")
    assert kc.get_shell_msg(timeout=30)["content"]["comms"] == {comm_id: {"target_name": "kk.echo"}}
    assert info


def test_an_ipywidgets_slider_gets_the_frontends_value(python_kernel: Any) -> None:
    kc = python_kernel
    reply, msgs = _run(kc, "import ipywidgets, kernelkit\ns = ipywidgets.IntSlider(value=3)\n"
                           "print(type(ipywidgets.widgets.widget.comm.get_comm_manager())"
                           ".__module__)\n")
    assert _stdout(msgs) == "kernelkit.comms\n"  # the kernelkit kernel, not ipykernel
    assert reply["content"]["status"] == "ok", reply["content"]
    opened = [m for m in msgs if m["msg_type"] == "comm_open"]
    slider = next(m for m in opened if m["content"]["data"]["state"].get("_model_name")
                  == "IntSliderModel")
    comm_id = slider["content"]["comm_id"]
    assert slider["content"]["data"]["state"]["value"] == 3
    # The frontend moves the slider: an update of the model's state.
    update = kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {
        "method": "update", "state": {"value": 7}, "buffer_paths": []}})
    kc.shell_channel.send(update)
    _iopub_until_idle(kc, update["header"]["msg_id"])
    reply, msgs = _run(kc, "print(s.value)")
    assert _stdout(msgs) == "7\n"
    # A page reload: the widget manager opens jupyter.widget.control and asks for states.
    control = kc.session.msg("comm_open", {"comm_id": "control-1",
                                            "target_name": "jupyter.widget.control",
                                            "data": {}}, metadata={"version": "1.0.0"})
    kc.shell_channel.send(control)
    got = _iopub_until_idle(kc, control["header"]["msg_id"])
    assert not [m for m in got if m["msg_type"] == "comm_close"]
    ask = kc.session.msg("comm_msg", {"comm_id": "control-1",
                                       "data": {"method": "request_states"}})
    kc.shell_channel.send(ask)
    states = [m for m in _iopub_until_idle(kc, ask["header"]["msg_id"])
              if m["msg_type"] == "comm_msg"]
    assert states and states[0]["content"]["data"]["method"] == "update_states"
    assert states[0]["content"]["data"]["states"][comm_id]["state"]["value"] == 7


def test_comm_messages_on_a_subshell_are_handled_while_a_cell_runs(python_kernel: Any) -> None:
    """JupyterLab sends widget traffic over a subshell: it must not wait for the cell."""
    kc = python_kernel
    _run(kc, "import comm, threading\n"
             "seen = []\n"
             "c = comm.create_comm(target_name='kk.sub')\n"
             "c.on_msg(lambda m: seen.append(threading.current_thread().name))\n")
    req = kc.session.msg("create_subshell_request", {})
    kc.control_channel.send(req)
    subshell_id = kc.get_control_msg(timeout=30)["content"]["subshell_id"]
    # the comm's id, from the kernel's own listing
    kc.comm_info(target_name="kk.sub")
    comm_id = next(iter(kc.get_shell_msg(timeout=30)["content"]["comms"]))
    busy = kc.execute("import time\ntime.sleep(3)\nprint(seen)")
    by_parent: dict[str, list[dict[str, Any]]] = {}
    while True:  # the cell is running once its execute_input is out
        m = kc.get_iopub_msg(timeout=30)
        by_parent.setdefault(m["parent_header"].get("msg_id"), []).append(m)
        if m["msg_type"] == "execute_input" and m["parent_header"].get("msg_id") == busy:
            break
    msg = kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {}})
    msg["header"]["subshell_id"] = subshell_id
    kc.shell_channel.send(msg)
    idle: list[str] = []
    while len(idle) < 2:
        m = kc.get_iopub_msg(timeout=30)
        parent = m["parent_header"].get("msg_id")
        by_parent.setdefault(parent, []).append(m)
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle" and \
                parent in (busy, msg["header"]["msg_id"]):
            idle.append(parent)
    # The comm message was done while the cell slept: before it, and seen by its print.
    assert idle == [msg["header"]["msg_id"], busy]
    assert "kernelkit-subshell" in _stdout(by_parent[busy])
    assert kc.get_shell_msg(timeout=30)["parent_header"]["msg_id"] == busy


def _subshell(kc: Any, kind: str, subshell_id: str | None = None) -> str:
    content = {} if subshell_id is None else {"subshell_id": subshell_id}
    req = kc.session.msg(f"{kind}_subshell_request", content)
    kc.control_channel.send(req)
    reply = kc.get_control_msg(timeout=30)
    assert reply["parent_header"]["msg_id"] == req["header"]["msg_id"]
    assert reply["content"]["status"] == "ok", reply["content"]
    return str(reply["content"].get("subshell_id", ""))


def _closing_comms(kc: Any) -> None:
    """Comms whose close the kernel code records, to targets 'kk.t' (comms opened below)."""
    reply, _ = _run(kc, "import comm\nclosed = []\n"
                        "def target(c, msg):\n"
                        "    c.on_close(lambda m: closed.append(c.comm_id))\n"
                        "comm.get_comm_manager().register_target('kk.t', target)\n")
    assert reply["content"]["status"] == "ok", reply["content"]
    for comm_id in ("c1", "c2"):
        msg = kc.session.msg("comm_open", {"comm_id": comm_id, "target_name": "kk.t",
                                           "data": {}})
        kc.shell_channel.send(msg)
        _iopub_until_idle(kc, msg["header"]["msg_id"])


def _close_on(kc: Any, comm_id: str, subshell_id: str) -> str:
    msg = kc.session.msg("comm_close", {"comm_id": comm_id, "data": {}})
    msg["header"]["subshell_id"] = subshell_id
    kc.shell_channel.send(msg)
    return str(msg["header"]["msg_id"])


def test_a_comm_closed_on_a_subshell_that_is_deleted_at_once_is_closed(
        python_kernel: Any) -> None:
    """JupyterLab closes widget comms on a subshell and deletes it 1 ms later: the deletion
    (control) can come first, or find the close still queued. Both orders, forced here."""
    kc = python_kernel
    _closing_comms(kc)
    # 1. The deletion first: the close arrives for a subshell that no longer exists.
    gone = _subshell(kc, "create")
    _subshell(kc, "delete", gone)
    first = _close_on(kc, "c1", gone)
    msgs = _iopub_until_idle(kc, first)
    assert [m["content"]["execution_state"] for m in msgs if m["msg_type"] == "status"] == [
        "busy", "idle"]
    # 2. The close queued behind a running cell on the subshell when the deletion comes.
    busy = _subshell(kc, "create")
    cell = kc.session.msg("execute_request", {"code": "import time\nprint('started')\n"
                                                      "time.sleep(1)", "silent": False})
    cell["header"]["subshell_id"] = busy
    kc.shell_channel.send(cell)
    deadline = time.monotonic() + 30
    while True:  # the cell runs
        m = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        if m["parent_header"].get("msg_id") == cell["header"]["msg_id"] and \
                m["msg_type"] == "stream":
            break
    second = _close_on(kc, "c2", busy)
    _subshell(kc, "delete", busy)
    _iopub_until_idle(kc, second)
    assert kc.get_shell_msg(timeout=30)["parent_header"]["msg_id"] == cell["header"]["msg_id"]
    _, msgs = _run(kc, "print(sorted(closed))")
    assert _stdout(msgs) == "['c1', 'c2']\n"
    kc.comm_info(target_name="kk.t")
    assert kc.get_shell_msg(timeout=30)["content"]["comms"] == {}
