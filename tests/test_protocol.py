"""The messaging protocol as a jupyter_client user sees it, against real kernel processes."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import zmq
from jupyter_client.session import Session as JCSession

Msgs = list[dict[str, Any]]


def types(msgs: Msgs) -> list[str]:
    return [m["msg_type"] for m in msgs]


def statuses(msgs: Msgs) -> list[str]:
    return [m["content"]["execution_state"] for m in msgs if m["msg_type"] == "status"]


def test_echo_execute_is_bracketed_and_echoed(start_kernel: Any) -> None:
    k = start_kernel("kernelkit-echo")
    reply, msgs = k.execute("hello, parrot")
    assert reply["content"]["status"] == "ok"
    assert reply["content"]["execution_count"] == 1
    assert types(msgs) == ["status", "execute_input", "stream", "status"]
    assert statuses(msgs) == ["busy", "idle"]
    assert msgs[1]["content"] == {"code": "hello, parrot", "execution_count": 1}
    assert msgs[2]["content"] == {"name": "stdout", "text": "hello, parrot"}


def test_kernel_info_on_shell_and_control(start_kernel: Any) -> None:
    k = start_kernel("kernelkit-echo")
    for channel in ("shell", "control"):
        msg_id = k.request("kernel_info_request", channel=channel)
        content = k.reply(msg_id, channel)["content"]
        assert content["implementation"] == "Echo"
        assert content["implementation_version"] == "1.0"
        assert content["banner"] == "Echo kernel - as useful as a parrot"
        assert content["language_info"] == {
            "name": "Any text", "mimetype": "text/plain", "file_extension": ".txt",
            # filled from the class's language_version: strict clients require it
            "version": "0.1"}
        assert content["protocol_version"] == "5.5"
        assert statuses(k.iopub_until_idle(msg_id)) == ["busy", "idle"]


def test_execution_count_follows_the_spec(start_kernel: Any) -> None:
    k = start_kernel()
    assert k.execute("a")[0]["content"]["execution_count"] == 1
    silent_reply, silent_msgs = k.execute("b", silent=True)
    assert silent_reply["content"]["execution_count"] == 1
    assert "execute_input" not in types(silent_msgs)
    assert "stream" not in types(silent_msgs)
    assert k.execute("c", store_history=False)[0]["content"]["execution_count"] == 1
    assert k.execute("d")[0]["content"]["execution_count"] == 2
    assert k.stdout("count") == "3"


def test_exception_in_hook_is_an_error_reply_and_iopub_error(start_kernel: Any) -> None:
    k = start_kernel()
    reply, msgs = k.execute("raise it broke")
    c = reply["content"]
    assert c["status"] == "error" and c["ename"] == "ValueError" and c["evalue"] == "it broke"
    assert any("it broke" in line for line in c["traceback"])
    errors = [m for m in msgs if m["msg_type"] == "error"]
    assert len(errors) == 1 and errors[0]["content"]["ename"] == "ValueError"
    assert statuses(msgs) == ["busy", "idle"]
    assert k.stdout("still alive") == "still alive"


def test_hook_returning_none_is_an_error_not_a_hang(start_kernel: Any) -> None:
    k = start_kernel()
    reply, _ = k.execute("none")
    assert reply["content"]["status"] == "error"
    assert "expected a dict" in reply["content"]["evalue"]


def test_error_in_other_hooks(start_kernel: Any) -> None:
    k = start_kernel()
    msg_id = k.request("complete_request", {"code": "crash", "cursor_pos": 5})
    c = k.reply(msg_id)["content"]
    assert c["status"] == "error" and c["ename"] == "RuntimeError"
    msg_id = k.request("complete_request", {"code": "prin", "cursor_pos": 4})
    assert k.reply(msg_id)["content"]["matches"] == ["print"]


def test_stop_on_error_aborts_queued_executes(start_kernel: Any) -> None:
    k = start_kernel()
    first = k.kc.execute("sleep-raise 0.5")
    queued = [k.kc.execute(f"q{i}") for i in range(3)]
    info = k.request("kernel_info_request")
    # kernel_info is answered whenever it is read (it calls no hook): collect by id.
    replies: dict[str, Any] = {}
    while len(replies) < 5:
        msg = k.kc.get_shell_msg(timeout=20)
        replies[msg["parent_header"]["msg_id"]] = msg["content"]
    assert replies[first]["status"] == "error"
    for msg_id in queued:
        assert replies[msg_id]["status"] == "aborted"
    assert replies[info]["status"] == "ok"
    assert k.stdout("after") == "after"


def test_stop_on_error_false_keeps_the_queue(start_kernel: Any) -> None:
    k = start_kernel()
    first = k.kc.execute("sleep-raise 0.3", stop_on_error=False)
    second = k.kc.execute("next")
    assert k.reply(first)["content"]["status"] == "error"
    assert k.reply(second)["content"]["status"] == "ok"


def test_unknown_request_gets_an_error_reply(start_kernel: Any) -> None:
    k = start_kernel()
    msg_id = k.request("frobnicate_request", {})
    reply = k.reply(msg_id)
    assert reply["msg_type"] == "frobnicate_reply"
    assert reply["content"]["status"] == "error"


def test_other_requests_have_ipykernel_defaults(start_kernel: Any) -> None:
    k = start_kernel("kernelkit-echo")
    cases = {
        "complete_request": ({"code": "ab", "cursor_pos": 2},
                             {"matches": [], "cursor_start": 2, "cursor_end": 2}),
        "inspect_request": ({"code": "ab", "cursor_pos": 2, "detail_level": 0},
                            {"found": False, "data": {}}),
        "history_request": ({"hist_access_type": "tail", "n": 5, "output": False, "raw": True},
                            {"history": []}),
        "is_complete_request": ({"code": "ab"}, {"status": "unknown"}),
        "comm_info_request": ({}, {"comms": {}}),
    }
    for msg_type, (content, expected) in cases.items():
        msg_id = k.request(msg_type, content)
        reply = k.reply(msg_id)
        assert reply["msg_type"] == msg_type.replace("_request", "_reply")
        for key, value in expected.items():
            assert reply["content"][key] == value, (msg_type, reply["content"])
        assert statuses(k.iopub_until_idle(msg_id)) == ["busy", "idle"]


def test_comm_open_is_closed_quietly(start_kernel: Any) -> None:
    k = start_kernel("kernelkit-echo")
    msg_id = k.request("comm_open", {"comm_id": "c1", "target_name": "nothing", "data": {}})
    msgs = k.iopub_until_idle(msg_id)
    assert types(msgs) == ["status", "comm_close", "status"]
    assert msgs[1]["content"]["comm_id"] == "c1"
    msg_id = k.request("comm_msg", {"comm_id": "c1", "data": {}})
    assert statuses(k.iopub_until_idle(msg_id)) == ["busy", "idle"]
    assert k.stdout("fine") == "fine"


def test_stdin_round_trip(start_kernel: Any) -> None:
    k = start_kernel()
    for code, prefix, password in (("input Name? ", "got:", False),
                                   ("getpass Secret: ", "secret:", True)):
        msg_id = k.kc.execute(code, allow_stdin=True)
        request = k.kc.stdin_channel.get_msg(timeout=10)
        assert request["msg_type"] == "input_request"
        assert request["content"]["prompt"] == code.split(" ", 1)[1].strip()
        assert request["content"]["password"] is password
        assert request["parent_header"]["msg_id"] == msg_id
        k.kc.input("Polly")
        assert k.reply(msg_id)["content"]["status"] == "ok"
        streams = [m for m in k.iopub_until_idle(msg_id) if m["msg_type"] == "stream"]
        assert streams[-1]["content"]["text"] == prefix + "Polly"


def test_stdin_refused_when_client_does_not_allow_it(start_kernel: Any) -> None:
    k = start_kernel()
    reply, _ = k.execute("input Name? ", allow_stdin=False)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "StdinNotImplementedError"


def test_print_becomes_stream_output(start_kernel: Any) -> None:
    k = start_kernel()
    _reply, msgs = k.execute("print hi there")
    streams = [(m["content"]["name"], m["content"]["text"]) for m in msgs
               if m["msg_type"] == "stream"]
    assert ("stdout", "hi there\n") in streams
    assert ("stderr", "to stderr\n") in streams


def test_async_hook_and_cell_id(start_kernel: Any) -> None:
    k = start_kernel("kk-async")
    assert k.stdout("hello") == "hello"
    msg = k.kc.session.msg("execute_request", {"code": "cell-id", "silent": False,
                                               "store_history": True, "user_expressions": {},
                                               "allow_stdin": False})
    msg["metadata"]["cellId"] = "cell-42"
    k.kc.shell_channel.send(msg)
    msg_id = msg["header"]["msg_id"]
    assert k.reply(msg_id)["content"]["status"] == "ok"
    texts = [m["content"]["text"] for m in k.iopub_until_idle(msg_id) if m["msg_type"] == "stream"]
    assert texts == ["cell_id=cell-42"]
    reply, _ = k.execute("raise async boom")
    assert reply["content"]["evalue"] == "async boom"


def test_classic_echo_with_only_its_import_changed(start_kernel: Any) -> None:
    k = start_kernel("kk-classic-echo")
    assert k.stdout("classic") == "classic"
    msg_id = k.request("kernel_info_request")
    assert k.reply(msg_id)["content"]["implementation"] == "Echo"


def _interrupt_while_looping(k: Any, code: str = "loop") -> dict[str, Any]:
    msg_id = k.kc.execute(code)
    k.wait_started(msg_id)
    k.km.interrupt_kernel()
    return k.reply(msg_id, timeout=10)  # type: ignore[no-any-return]


@pytest.mark.parametrize("spec", ["kk-commands", "kk-commands-message"])
def test_interrupt_stops_a_pure_python_loop(start_kernel: Any, spec: str) -> None:
    k = start_kernel(spec)
    reply = _interrupt_while_looping(k)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    # The traceback ends at the user's loop, not in kernelkit's signal handler.
    traceback = "\n".join(reply["content"]["traceback"])
    assert "kk_testkernels.py" in traceback, traceback
    assert "kernelkit/server.py" not in traceback and "interrupts.py" not in traceback, traceback
    assert reply["content"]["traceback"][-1] == "KeyboardInterrupt"
    assert k.stdout("alive") == "alive"
    reply = _interrupt_while_looping(k, "sleep 30")
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    assert k.stdout("alive again") == "alive again"


def test_interrupt_async_hook(start_kernel: Any) -> None:
    k = start_kernel("kk-async")
    for _ in range(3):  # repeatedly: the event loop must stay usable
        for code in ("async-loop", "async-busy"):
            reply = _interrupt_while_looping(k, code)
            assert reply["content"]["ename"] == "KeyboardInterrupt"
            assert k.stdout("alive") == "alive"


def test_interrupt_request_message_gets_a_reply(start_kernel: Any) -> None:
    k = start_kernel("kk-commands-message")
    exec_id = k.kc.execute("sleep 30")
    k.wait_started(exec_id)
    msg_id = k.request("interrupt_request", channel="control")
    assert k.reply(msg_id, "control")["msg_type"] == "interrupt_reply"
    assert k.reply(exec_id)["content"]["ename"] == "KeyboardInterrupt"


def test_sigint_while_idle_is_harmless(start_kernel: Any) -> None:
    k = start_kernel()
    for _ in range(3):
        k.km.interrupt_kernel()
    time.sleep(0.2)
    assert k.stdout("unharmed") == "unharmed"
    assert k.km.is_alive()


def test_control_and_heartbeat_answer_while_shell_is_busy(start_kernel: Any) -> None:
    k = start_kernel()
    exec_id = k.kc.execute("loop")
    k.wait_started(exec_id)
    t0 = time.monotonic()
    msg_id = k.request("kernel_info_request", channel="control")
    assert k.reply(msg_id, "control", timeout=5)["content"]["implementation"] == "commands"
    assert time.monotonic() - t0 < 5
    ctx = zmq.Context.instance()
    hb = ctx.socket(zmq.REQ)
    hb.linger = 0
    hb.connect(f"tcp://127.0.0.1:{k.km.hb_port}")
    try:
        for i in range(3):
            hb.send(b"ping-%d" % i)
            assert hb.poll(5000), "heartbeat did not answer while the kernel was busy"
            assert hb.recv() == b"ping-%d" % i
    finally:
        hb.close()
    k.km.interrupt_kernel()
    assert k.reply(exec_id)["content"]["ename"] == "KeyboardInterrupt"


def _raw_shell(k: Any) -> tuple[zmq.Socket[bytes], JCSession]:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(f"tcp://127.0.0.1:{k.km.shell_port}")
    return sock, JCSession(key=k.km.session.key, signature_scheme=k.km.session.signature_scheme)


def test_bad_signature_and_replays_do_not_execute(start_kernel: Any) -> None:
    k = start_kernel()
    sock, session = _raw_shell(k)
    try:
        forged = JCSession(key=b"not-the-key")
        sock.send_multipart(forged.serialize(forged.msg("execute_request", {"code": "forged"})))
        msg = session.msg("execute_request", {"code": "genuine", "silent": False})
        frames = session.serialize(msg)
        sock.send_multipart(frames)
        assert sock.poll(10000)
        _, reply_frames = session.feed_identities(sock.recv_multipart())
        reply = session.deserialize(reply_frames)
        assert reply["parent_header"]["msg_id"] == msg["header"]["msg_id"]
        assert reply["content"]["execution_count"] == 1  # the forged one never ran
        sock.send_multipart(frames)  # a replay of the genuine message
        sock.send_multipart([b"garbage"])
        sock.send_multipart([b"<IDS|MSG>", b"sig", b"{}"])
        assert not sock.poll(500), "the kernel answered a replayed or malformed message"
        assert k.execute("x")[0]["content"]["execution_count"] == 2
    finally:
        sock.close()


def test_shutdown_request_exits_zero_and_honours_restart(start_kernel: Any) -> None:
    k = start_kernel("kernelkit-echo")
    for restart in (True,):
        msg_id = k.request("shutdown_request", {"restart": restart}, channel="control")
        reply = k.reply(msg_id, "control")
        assert reply["content"] == {"status": "ok", "restart": restart}
    proc = k.km.provisioner.process
    assert proc.wait(timeout=10) == 0


def test_shutdown_on_shell_for_old_clients(start_kernel: Any) -> None:
    k = start_kernel("kernelkit-echo")
    msg_id = k.request("shutdown_request", {"restart": False}, channel="shell")
    assert k.reply(msg_id)["content"]["restart"] is False
    assert k.km.provisioner.process.wait(timeout=10) == 0


def test_shutdown_while_busy_still_exits(start_kernel: Any) -> None:
    k = start_kernel()
    k.wait_started(k.kc.execute("loop"))
    msg_id = k.request("shutdown_request", {"restart": False}, channel="control")
    assert k.reply(msg_id, "control")["content"]["status"] == "ok"
    assert k.km.provisioner.process.wait(timeout=10) == 0


def test_restart_through_kernel_manager(start_kernel: Any) -> None:
    k = start_kernel("kernelkit-echo")
    k.execute("one")
    old_pid = k.km.provisioner.process.pid
    k.km.restart_kernel(now=False)
    assert k.km.provisioner.process.pid != old_pid
    k.kc.wait_for_ready(timeout=30)
    reply, _ = k.execute("two")
    assert reply["content"]["execution_count"] == 1


def test_iopub_welcome_for_each_subscriber(start_kernel: Any) -> None:
    k = start_kernel("kernelkit-echo")
    ctx = zmq.Context.instance()
    session = JCSession(key=k.km.session.key)
    for _ in range(2):
        sub = ctx.socket(zmq.SUB)
        sub.linger = 0
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(f"tcp://127.0.0.1:{k.km.iopub_port}")
        try:
            assert sub.poll(5000), "no iopub_welcome"
            _, frames = session.feed_identities(sub.recv_multipart())
            msg = session.deserialize(frames)
            assert msg["msg_type"] == "iopub_welcome"
            assert msg["content"] == {"subscription": ""}
        finally:
            sub.close()


def test_import_footprint(start_kernel: Any) -> None:
    k = start_kernel()
    modules = set(json.loads(k.stdout("modules")))
    for heavy in ("IPython", "tornado", "traitlets", "jupyter_client", "jupyter_core",
                  "ipykernel", "asyncio"):
        assert heavy not in modules, f"the kernel process imported {heavy}"
    assert "zmq" in modules


def test_kernel_survives_client_disconnects(start_kernel: Any) -> None:
    k = start_kernel("kernelkit-echo")
    k.kc.execute("sent, then the client vanishes")
    k.kc.stop_channels()
    k.kc = k.km.client()
    k.kc.start_channels()
    k.kc.wait_for_ready(timeout=10)
    assert k.stdout("back") == "back"


def test_execute_sent_after_an_error_reply_is_not_aborted(start_kernel: Any) -> None:
    k = start_kernel()
    for _ in range(20):
        assert k.execute("raise")[0]["content"]["status"] == "error"
        assert k.execute("next")[0]["content"]["status"] == "ok"
