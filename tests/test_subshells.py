"""Subshells (JEP 91) through a real client (jupyter_client), against real kernel processes.

Each test reads every IOPub message into one place (``Wire``) so that messages of
requests running at once on different subshells are never thrown away.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from conftest import Kernel


class Wire:
    """A started kernel's client, with requests that can target a subshell."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.kc = k.kc
        self.iopub: list[dict[str, Any]] = []
        self.replies: dict[str, dict[str, Any]] = {}

    def send(self, msg_type: str, content: dict[str, Any] | None = None,
             subshell_id: str | None = None, channel: str = "shell") -> str:
        msg = self.kc.session.msg(msg_type, content or {})
        if subshell_id is not None:
            msg["header"]["subshell_id"] = subshell_id
        getattr(self.kc, f"{channel}_channel").send(msg)
        return str(msg["header"]["msg_id"])

    def execute(self, code: str, subshell_id: str | None = None, **content: Any) -> str:
        body = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                "allow_stdin": False, "stop_on_error": True, **content}
        return self.send("execute_request", body, subshell_id)

    def control(self, msg_type: str, content: dict[str, Any] | None = None) -> dict[str, Any]:
        msg_id = self.send(msg_type, content, channel="control")
        return self.reply(msg_id, "control")["content"]  # type: ignore[no-any-return]

    def create(self) -> str:
        content = self.control("create_subshell_request")
        assert content["status"] == "ok", content
        return str(content["subshell_id"])

    def reply(self, msg_id: str, channel: str = "shell", timeout: float = 20) -> dict[str, Any]:
        if msg_id in self.replies:
            return self.replies.pop(msg_id)
        chan = getattr(self.kc, f"{channel}_channel")
        deadline = time.monotonic() + timeout
        while True:
            msg = chan.get_msg(timeout=max(0.01, deadline - time.monotonic()))
            parent = msg["parent_header"].get("msg_id")
            if parent == msg_id:
                return msg  # type: ignore[no-any-return]
            self.replies[parent] = msg

    def first_reply(self, *msg_ids: str, timeout: float = 20) -> str:
        """Which of these requests is answered first on shell."""
        for msg_id in msg_ids:
            if msg_id in self.replies:
                return msg_id
        deadline = time.monotonic() + timeout
        while True:
            msg = self.kc.shell_channel.get_msg(timeout=max(0.01, deadline - time.monotonic()))
            parent = msg["parent_header"].get("msg_id")
            self.replies[parent] = msg
            if parent in msg_ids:
                return str(parent)

    def until_idle(self, msg_id: str, timeout: float = 20) -> list[dict[str, Any]]:
        def mine() -> list[dict[str, Any]]:
            return [m for m in self.iopub if m["parent_header"].get("msg_id") == msg_id]

        deadline = time.monotonic() + timeout
        while not any(m["msg_type"] == "status" and m["content"]["execution_state"] == "idle"
                      for m in mine()):
            self.iopub.append(
                self.kc.iopub_channel.get_msg(timeout=max(0.01, deadline - time.monotonic())))
        return mine()

    def wait_started(self, msg_id: str) -> None:
        deadline = time.monotonic() + 20
        while not any(m["msg_type"] == "stream" and "started" in m["content"]["text"]
                      for m in self.iopub if m["parent_header"].get("msg_id") == msg_id):
            self.iopub.append(
                self.kc.iopub_channel.get_msg(timeout=max(0.01, deadline - time.monotonic())))


@pytest.fixture
def wire(start_kernel: Any, request: pytest.FixtureRequest) -> Wire:
    return Wire(start_kernel(getattr(request, "param", "kk-concurrent")))


def test_python_kernels_advertise_subshells(start_kernel: Any) -> None:
    for name in ("kk-commands", "kernelkit-echo"):
        k = start_kernel(name)
        info = k.reply(k.request("kernel_info_request"))["content"]
        assert "kernel subshells" in info["supported_features"]


def test_a_subshell_answers_while_the_main_shell_runs_a_long_cell(wire: Wire) -> None:
    sub = wire.create()
    long_cell = wire.execute("sleep 5")
    wire.wait_started(long_cell)
    quick = wire.execute("quick", subshell_id=sub)
    assert wire.first_reply(long_cell, quick) == quick
    reply = wire.reply(quick)
    assert reply["content"]["status"] == "ok"
    assert reply["parent_header"]["subshell_id"] == sub
    out = wire.until_idle(quick)
    assert [m["msg_type"] for m in out] == ["status", "execute_input", "stream", "status"]
    assert all(m["parent_header"]["subshell_id"] == sub for m in out)
    assert out[2]["content"]["text"] == "quick"
    assert wire.reply(long_cell)["content"]["status"] == "ok"
    assert all("subshell_id" not in m["parent_header"] for m in wire.until_idle(long_cell))


def test_subshells_are_listed_and_deleted(wire: Wire) -> None:
    a, b = wire.create(), wire.create()
    assert a != b
    assert sorted(wire.control("list_subshell_request")["subshell_id"]) == sorted([a, b])
    assert wire.control("delete_subshell_request", {"subshell_id": a}) == {"status": "ok"}
    assert wire.control("list_subshell_request")["subshell_id"] == [b]
    gone = wire.execute("x", subshell_id=a)
    content = wire.reply(gone)["content"]
    assert (content["status"], content["ename"]) == ("error", "SubshellNotFound")
    assert [m["content"].get("execution_state") for m in wire.until_idle(gone)] == [
        "busy", "idle"]
    bad = wire.control("delete_subshell_request", {"subshell_id": "no-such"})
    assert bad["ename"] == "SubshellNotFound"


def test_stop_on_error_aborts_only_the_failing_subshells_queue(wire: Wire) -> None:
    sub = wire.create()
    main_cell = wire.execute("sleep 1.5")
    wire.wait_started(main_cell)
    failing = wire.execute("sleep-raise 0.5", subshell_id=sub)
    behind = wire.execute("x", subshell_id=sub)
    main_next = wire.execute("y")  # queued on the main shell: must still run
    assert wire.reply(failing)["content"]["status"] == "error"
    assert wire.reply(behind)["content"]["status"] == "aborted"
    assert wire.reply(main_cell)["content"]["status"] == "ok"
    assert wire.reply(main_next)["content"]["status"] == "ok"


@pytest.mark.parametrize("wire", ["kk-concurrent", "kk-concurrent-message"], indirect=True)
def test_interrupt_reaches_a_loop_in_a_subshell(wire: Wire) -> None:
    sub = wire.create()
    loop = wire.execute("loop", subshell_id=sub)
    wire.wait_started(loop)
    if wire.k.km.kernel_spec.interrupt_mode == "message":
        assert wire.control("interrupt_request")["status"] == "ok"
    else:
        wire.k.km.interrupt_kernel()
    content = wire.reply(loop)["content"]
    assert (content["status"], content["ename"]) == ("error", "KeyboardInterrupt")
    after = wire.execute("still here", subshell_id=sub)
    assert wire.reply(after)["content"]["status"] == "ok"


def test_a_subshell_deleted_while_busy_ends_cleanly(wire: Wire) -> None:
    sub = wire.create()
    loop = wire.execute("loop", subshell_id=sub)
    wire.wait_started(loop)
    queued = wire.execute("x", subshell_id=sub)
    assert wire.control("delete_subshell_request", {"subshell_id": sub}) == {"status": "ok"}
    content = wire.reply(loop)["content"]
    assert (content["status"], content["ename"]) == ("error", "KeyboardInterrupt")
    content = wire.reply(queued)["content"]
    # Aborted behind the interrupted request (stop_on_error) or refused as deleted if
    # it was queued by then; not found if it reached the kernel after the deletion.
    assert content["status"] in ("aborted", "error")
    if content["status"] == "error":
        assert content["ename"] in ("SubshellDeleted", "SubshellNotFound")
    assert wire.control("list_subshell_request")["subshell_id"] == []
    assert wire.reply(wire.execute("main ok"))["content"]["status"] == "ok"


@pytest.mark.parametrize("wire", ["kk-commands"], indirect=True)
def test_non_concurrent_kernels_answer_their_own_requests_at_once_and_queue_hooks(
    wire: Wire,
) -> None:
    """Without concurrent_hooks, kernel_info and comm_info on a subshell do not wait for the
    main shell's cell; an execute on the subshell runs after it."""
    sub = wire.create()
    long_cell = wire.execute("sleep 3")
    wire.wait_started(long_cell)
    info = wire.send("kernel_info_request", subshell_id=sub)
    comms = wire.send("comm_info_request", subshell_id=sub)
    waits = wire.execute("after", subshell_id=sub)
    assert wire.first_reply(long_cell, info) == info
    assert wire.first_reply(long_cell, comms) == comms
    assert wire.first_reply(long_cell, waits) == long_cell
    assert wire.reply(waits)["content"]["status"] == "ok"


def test_bridge_kernels_do_not_advertise_subshells(start_kernel: Any) -> None:
    w = Wire(start_kernel("kk-python-echo"))
    info = w.reply(w.send("kernel_info_request"))["content"]
    assert "kernel subshells" not in info["supported_features"]
    assert w.control("create_subshell_request")["ename"] == "SubshellsNotSupported"
