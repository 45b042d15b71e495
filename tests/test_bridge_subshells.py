"""Bridge backends that opt in to subshells (protocol 1.1), on real Deno and Python,
through jupyter_client: concurrent requests, each with its own output, input and reply."""

from __future__ import annotations

import select
import sys
import threading
import time
from typing import Any

import pytest

from conftest import SUPPORT
from kernelkit.bridge.kernel import BridgeKernel
from kernelkit.testing import attach, request
from test_subshells import Wire

BACKENDS = ["kk-js-subshells", "kk-py-subshells"]


@pytest.fixture(params=BACKENDS)
def wire(start_kernel: Any, request: pytest.FixtureRequest) -> Wire:
    return Wire(start_kernel(request.param))


def test_a_backend_that_opts_in_advertises_subshells(wire: Wire) -> None:
    info = wire.reply(wire.send("kernel_info_request"))["content"]
    assert "kernel subshells" in info["supported_features"]


def test_a_subshell_runs_while_the_main_shell_sleeps(wire: Wire) -> None:
    sub = wire.create()
    long_cell = wire.execute("sleep 3")
    wire.wait_started(long_cell)
    quick = wire.execute("quick", subshell_id=sub)
    assert wire.first_reply(long_cell, quick) == quick
    assert wire.reply(quick)["content"]["status"] == "ok"
    out = wire.until_idle(quick)
    streams = [m["content"]["text"] for m in out if m["msg_type"] == "stream"]
    assert streams == [f"quick [{sub}]"]  # the backend saw the subshell, output its cell
    assert wire.reply(long_cell)["content"]["status"] == "ok"
    texts = "".join(m["content"]["text"] for m in wire.until_idle(long_cell)
                    if m["msg_type"] == "stream")
    assert texts == "started\nslept 3\n"


def test_two_subshells_and_the_main_shell_keep_their_own_output(wire: Wire) -> None:
    a, b = wire.create(), wire.create()
    ids = {wire.execute("sleep 1", subshell_id=a): "a", wire.execute("sleep 1", subshell_id=b): "b",
           wire.execute("sleep 1"): "main"}
    for msg_id in ids:
        assert wire.reply(msg_id)["content"]["status"] == "ok"
        texts = "".join(m["content"]["text"] for m in wire.until_idle(msg_id)
                        if m["msg_type"] == "stream")
        assert texts == "started\nslept 1\n", ids[msg_id]


def test_input_on_a_subshell_while_the_main_shell_sleeps(wire: Wire) -> None:
    sub = wire.create()
    long_cell = wire.execute("sleep 3")
    wire.wait_started(long_cell)
    asking = wire.execute("input name?", subshell_id=sub, allow_stdin=True)
    request = wire.kc.get_stdin_msg(timeout=20)
    assert request["msg_type"] == "input_request"
    assert request["parent_header"]["msg_id"] == asking
    assert request["content"]["prompt"] == "name?"
    wire.kc.input("polly")
    assert wire.reply(asking)["content"]["status"] == "ok"
    texts = [m["content"]["text"] for m in wire.until_idle(asking) if m["msg_type"] == "stream"]
    assert "".join(texts) == "got:polly\n"
    assert wire.reply(long_cell)["content"]["status"] == "ok"


def test_an_error_on_a_subshell_stays_there(wire: Wire) -> None:
    sub = wire.create()
    failing = wire.execute("raise nope", subshell_id=sub)
    content = wire.reply(failing)["content"]
    assert (content["status"], content["ename"]) == ("error", "TypeError")
    assert [m["content"]["ename"] for m in wire.until_idle(failing) if m["msg_type"] == "error"] \
        == ["TypeError"]
    assert wire.reply(wire.execute("fine"))["content"]["status"] == "ok"


@pytest.mark.parametrize("wire", ["kk-py-subshells"], indirect=True)
def test_an_interrupt_stops_every_running_request(wire: Wire) -> None:
    sub = wire.create()
    main = wire.execute("spin")
    wire.wait_started(main)
    other = wire.execute("spin", subshell_id=sub)
    wire.wait_started(other)
    wire.k.km.interrupt_kernel()
    for msg_id in (main, other):
        content = wire.reply(msg_id)["content"]
        assert (content["status"], content["ename"]) == ("error", "KeyboardInterrupt")
    assert wire.reply(wire.execute("after"))["content"]["status"] == "ok"


@pytest.mark.parametrize("wire", ["kk-js-subshells"], indirect=True)
def test_a_backend_that_ignores_the_interrupt_is_ended_for_every_request(wire: Wire) -> None:
    """A JavaScript loop never yields to its SIGINT listener: after the grace the host ends
    the backend, both requests in flight get an error reply, and the next one restarts it."""
    sub = wire.create()
    waiting = wire.execute("sleep 30", subshell_id=sub)
    wire.wait_started(waiting)
    spinning = wire.execute("spin")
    wire.wait_started(spinning)
    wire.k.km.interrupt_kernel()
    for msg_id in (spinning, waiting):
        content = wire.reply(msg_id, timeout=30)["content"]
        assert (content["status"], content["ename"]) == ("error", "KeyboardInterrupt"), content
    assert wire.reply(wire.execute("after"))["content"]["status"] == "ok"


@pytest.mark.parametrize("wire", ["kk-py-subshells"], indirect=True)
def test_a_backend_death_answers_every_request_in_flight(wire: Wire) -> None:
    sub = wire.create()
    waiting = wire.execute("sleep 30", subshell_id=sub)
    wire.wait_started(waiting)
    dying = wire.execute("die")
    for msg_id in (dying, waiting):
        content = wire.reply(msg_id, timeout=30)["content"]
        assert (content["status"], content["ename"]) == ("error", "BackendDied"), content
    assert wire.reply(wire.execute("after"))["content"]["status"] == "ok"


def test_an_early_execute_keeps_its_output_behind_its_execute_input() -> None:
    """With subshells too, an execute that finds nothing in flight goes to the backend
    before its busy and execute_input are published (Shared.start). Forced here: a
    subshell's execute arrives in that gap, and the backend's answer to the first is already
    in the pipe. The newcomer must not read it and publish its output ahead of the first's
    execute_input: the early execute holds the reader role until do_execute reads."""
    kernel = BridgeKernel([sys.executable, str(SUPPORT / "concurrent_backend.py")])
    shared = kernel._shared
    assert shared is not None
    start = kernel._start_execute
    sub = request("execute_request", {"code": "quick"}, subshell_id="sub-1")
    newcomer = threading.Thread(target=lambda: dispatcher.handle("shell", sub))
    in_gap: list[Any] = []

    def start_then_force(*args: Any) -> None:
        start(*args)
        if args[0] != "first":
            return  # (the newcomer's own: sent by request, as something is in flight)
        assert kernel.backend is not None
        assert select.select([kernel.backend._out_fd], [], [], 20)[0]  # its answer is there
        newcomer.start()
        deadline = time.monotonic() + 20
        while len(shared.slots) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(shared.slots) == 2, "the newcomer's execute never went out"
        time.sleep(0.3)  # room for the newcomer to read, if it could take the reader role
        in_gap.extend(transport.iopub(first))

    kernel._start_execute = start_then_force  # type: ignore[method-assign]
    transport, dispatcher = attach(kernel)  # (which takes _start_execute as it is now)
    first = request("execute_request", {"code": "first"})
    try:
        dispatcher.handle("shell", first)
        newcomer.join(20)
        assert not newcomer.is_alive()
        assert in_gap == []  # nothing on IOPub yet: busy and execute_input come after it
        for msg, text in ((first, "first [main]"), (sub, "quick [sub-1]")):
            assert transport.reply_to(msg)["status"] == "ok"
            assert [s.msg_type for s in transport.iopub(msg)] == [
                "status", "execute_input", "stream", "status"]
            assert transport.iopub(msg, "stream")[0].content["text"] == text
        assert shared.reader is None and not shared.slots
    finally:
        kernel.do_shutdown(False)
