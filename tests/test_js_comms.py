"""Comms in the JavaScript SDK (bridge protocol 1.2): sdk/js/kernelkit.js's `comms`, on real
Deno and Node.js, through the real host (kernelkit bridge) driven by jupyter_client.

The backend is tests/support/comms_backend.mjs; its `log` command says what its comm
handlers saw, so each test checks both ends.
"""

from __future__ import annotations

import json
import queue
import subprocess
import uuid
from typing import Any

import pytest
from widget_frontend import Frontend, stdout_of

from conftest import DENO, NODE, ROOT, SUPPORT

BACKEND = SUPPORT / "comms_backend.mjs"

BACKENDS = ["kk-js-comms", "kk-node-comms"]  # the same file on Deno and on Node.js


def _frontend(start_kernel: Any, spec: str = "kk-js-comms") -> Frontend:
    return Frontend(start_kernel(spec).kc)


@pytest.fixture(params=BACKENDS)
def fe(start_kernel: Any, request: pytest.FixtureRequest) -> Frontend:
    return _frontend(start_kernel, request.param)


@pytest.fixture
def deno(start_kernel: Any) -> Frontend:
    return _frontend(start_kernel)


def seen(fe: Frontend) -> list[dict[str, Any]]:
    """What the backend's comm handlers were given, by their own account."""
    return json.loads(fe.stdout("log"))  # type: ignore[no-any-return]


def of_type(msgs: list[dict[str, Any]], msg_type: str) -> list[dict[str, Any]]:
    return [m for m in msgs if m["msg_type"] == msg_type]


def opens(fe: Frontend, target: str) -> bool:
    """Whether a frontend comm to target stays open (the host closes refused ones)."""
    _, msgs_id = fe.comm_open(target)
    return not of_type(fe.until_idle(msgs_id), "comm_close")


def test_the_sdk_speaks_protocol_1_2_and_names_its_targets(fe: Frontend) -> None:
    info = fe.reply(fe.send("kernel_info_request"))["content"]
    assert info["implementation"] == "comms-js"
    assert "kernel subshells" in info["supported_features"]
    for target in ("echo", "early", "refuse"):  # serve({commTargets}) and registerTarget
        assert opens(fe, target) == (target != "refuse"), target


def test_a_frontend_comm_gets_messages_both_ways_with_buffers(fe: Frontend) -> None:
    comm_id, opened = fe.comm_open("echo", {"greet": 1}, buffers=[b"\x00\x01"])
    msgs = fe.until_idle(opened)
    assert not of_type(msgs, "comm_close")
    assert stdout_of(msgs) == "opened echo\n"  # printed by the target handler: its output
    assert fe.comm_info("echo") == {comm_id: {"target_name": "echo"}}
    assert fe.comm_info("other") == {}

    sent = fe.comm_msg(comm_id, {"x": 1}, buffers=[b"\x00\x01\xff", b""])
    msgs = fe.until_idle(sent)
    assert [m["content"]["execution_state"] for m in of_type(msgs, "status")] == ["busy", "idle"]
    assert stdout_of(msgs) == 'got {"x":1}\n'
    (echo,) = of_type(msgs, "comm_msg")
    assert echo["content"] == {"comm_id": comm_id, "data": {"echo": {"x": 1}}}
    assert echo["metadata"] == {"echoed": True}
    assert [bytes(b) for b in echo["buffers"]] == [b"\x00\x01\xff", b""]

    fe.until_idle(fe.comm_close(comm_id, {"z": 1}, buffers=[b"\x07"]))
    assert fe.comm_info() == {}
    assert seen(fe) == [
        {"kind": "open", "comm": comm_id, "target": "echo", "data": {"greet": 1},
         "buffers": [[0, 1]]},
        {"kind": "msg", "comm": comm_id, "data": {"x": 1}, "metadata": {},
         "buffers": [[0, 1, 255], []]},
        {"kind": "close", "comm": comm_id, "data": {"z": 1}, "buffers": [[7]]},
    ]


def test_a_backend_comm_opens_sends_hears_and_closes(fe: Frontend) -> None:
    reply, msgs = fe.run('open kk.mine {"a": 1}')
    (opened,) = of_type(msgs, "comm_open")
    comm_id = opened["content"]["comm_id"]
    assert stdout_of(msgs) == f"{comm_id}\n"
    assert len(comm_id) == 32 and int(comm_id, 16) >= 0  # a UUID's hex digits
    assert opened["content"] == {"comm_id": comm_id, "target_name": "kk.mine", "data": {"a": 1}}
    assert opened["metadata"] == {"m": 1}
    assert [bytes(b) for b in opened["buffers"]] == [b"\x01\x02\x03"]
    assert opened["parent_header"]["msg_id"] == reply["parent_header"]["msg_id"]
    assert fe.comm_info("kk.mine") == {comm_id: {"target_name": "kk.mine"}}

    reply, msgs = fe.run(f'send {comm_id} {{"n": 2}}')
    (sent,) = of_type(msgs, "comm_msg")
    assert sent["content"] == {"comm_id": comm_id, "data": {"n": 2}}
    assert [bytes(b) for b in sent["buffers"]] == [b"\x04\x05"]  # given as an ArrayBuffer

    # The frontend answers on it: the backend's onMsg gets data and buffers.
    fe.until_idle(fe.comm_msg(comm_id, {"hello": "lab"}, buffers=[b"\xfe"]))
    assert seen(fe)[-1] == {"kind": "msg", "comm": comm_id, "data": {"hello": "lab"},
                            "buffers": [[254]]}

    # Sent from a timer after the cell has finished: published all the same.
    fe.run(f"later {comm_id}")
    late = fe.wait_for(lambda m: m["msg_type"] == "comm_msg"
                       and m["content"]["data"] == {"late": True})
    assert late["content"]["comm_id"] == comm_id

    reply, msgs = fe.run(f"close {comm_id}")
    (closed,) = of_type(msgs, "comm_close")
    assert closed["content"] == {"comm_id": comm_id, "data": {"bye": True}}
    assert fe.comm_info() == {}
    assert fe.stdout("list") == ""


def test_the_frontend_closes_a_backend_comm(deno: Frontend) -> None:
    fe = deno
    _, msgs = fe.run("open kk.mine")
    comm_id = of_type(msgs, "comm_open")[0]["content"]["comm_id"]
    fe.until_idle(fe.comm_close(comm_id, {"why": "done"}))
    assert seen(fe)[-1] == {"kind": "close", "comm": comm_id, "data": {"why": "done"},
                            "buffers": []}
    assert fe.stdout("list") == ""  # the backend forgot it
    reply, _ = fe.run(f"send {comm_id}")
    assert reply["content"]["status"] == "error"
    assert f"no comm {comm_id}" in reply["content"]["evalue"]


def test_a_handler_closes_its_comm_while_answering(deno: Frontend) -> None:
    fe = deno
    comm_id, opened = fe.comm_open("echo")
    fe.until_idle(opened)
    msgs = fe.until_idle(fe.comm_msg(comm_id, {"close": True}))
    assert [m["msg_type"] for m in msgs if m["msg_type"].startswith("comm_")] == [
        "comm_msg", "comm_close"]
    assert of_type(msgs, "comm_close")[0]["content"]["data"] == {"closing": True}
    assert fe.comm_info() == {}


def test_unknown_and_refusing_targets_are_closed(capfd: Any, start_kernel: Any) -> None:
    fe = _frontend(start_kernel)  # started here, so that capfd has the kernel's stderr
    for target in (f"nobody-{uuid.uuid4().hex}", "refuse"):
        comm_id, msg_id = fe.comm_open(target)
        (closed,) = of_type(fe.until_idle(msg_id), "comm_close")
        assert closed["content"]["comm_id"] == comm_id
    assert fe.comm_info() == {}
    assert fe.stdout("list") == ""  # the refused comm is not left open in the backend
    assert "refused by handler" in capfd.readouterr().err  # the host logged the SDK's error


def test_a_callback_that_throws_is_logged_and_the_backend_lives(capfd: Any,
                                                                start_kernel: Any) -> None:
    fe = _frontend(start_kernel)
    comm_id, opened = fe.comm_open("echo")
    fe.until_idle(opened)
    msgs = fe.until_idle(fe.comm_msg(comm_id, {"boom": 1}))
    assert not of_type(msgs, "comm_msg") and not of_type(msgs, "comm_close")
    assert "boom in onMsg" in capfd.readouterr().err
    # The same backend (its comm is still open in it) answers the next message and cell.
    msgs = fe.until_idle(fe.comm_msg(comm_id, {"ok": 1}))
    assert [m["content"]["data"] for m in of_type(msgs, "comm_msg")] == [{"echo": {"ok": 1}}]
    assert fe.stdout("list") == f"{comm_id} echo\n"
    assert fe.comm_info() == {comm_id: {"target_name": "echo"}}


@pytest.mark.parametrize("runtime", ["deno", "node"])
def test_on_the_pipe_bad_comm_requests_get_error_responses(runtime: str) -> None:
    """The SDK alone, on its stdin/stdout: what the host never sends (it keeps the comm
    table) must still be answered, with JSON-RPC errors, and the backend goes on."""
    cmd = [DENO, "run", str(BACKEND)] if runtime == "deno" else [NODE, str(BACKEND)]
    requests = [
        ("initialize", {"protocol_version": "1.2", "kernelkit_version": "test"}),
        ("comm_msg", {"comm_id": "nope", "data": {}, "metadata": {}, "buffers": []}),
        ("comm_close", {"comm_id": "nope", "data": {}, "metadata": {}, "buffers": []}),
        ("comm_open", {"comm_id": "c1", "target_name": "nobody", "data": {}, "metadata": {},
                       "buffers": []}),
        ("comm_open", {"comm_id": "c2", "target_name": "echo", "data": {}, "metadata": {},
                       "buffers": []}),
        ("comm_open", {"comm_id": "c2", "target_name": "echo", "data": {}, "metadata": {},
                       "buffers": []}),
        ("comm_msg", {"comm_id": "c2", "data": {"x": 1}, "metadata": {}, "buffers": [3]}),
        ("comm_msg", {"comm_id": "c2", "data": {"x": 2}, "metadata": {}, "buffers": ["AAE="]}),
    ]
    lines = "".join(json.dumps({"jsonrpc": "2.0", "id": i + 1, "method": m, "params": p}) + "\n"
                    for i, (m, p) in enumerate(requests))
    out: dict[int, dict[str, Any]] = {}
    notes: list[dict[str, Any]] = []
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(lines)
        proc.stdin.flush()
        while len(out) < len(requests):
            msg = json.loads(proc.stdout.readline())
            if "id" in msg:
                out[msg["id"]] = msg
            else:
                notes.append(msg)
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0  # stdin closed: it exits by itself
    assert set(out[1]["result"]["comm_targets"]) == {"echo", "early", "refuse"}
    errors = {i: out[i]["error"]["message"] for i in out if "error" in out[i]}
    assert errors.keys() == {2, 3, 4, 6, 7}
    assert "no comm nope is open" in errors[2] and "no comm nope is open" in errors[3]
    assert "no comm target 'nobody' is registered" in errors[4]
    assert "comm c2 is already open" in errors[6]
    assert "buffers[0] must be a base64 string" in errors[7]
    assert out[5]["result"] == {} and out[8]["result"] == {}
    (echo,) = [n for n in notes if n["method"] == "comm_msg"]
    assert echo["params"] == {"comm_id": "c2", "data": {"echo": {"x": 2}},
                              "metadata": {"echoed": True}, "buffers": ["AAE="], "request": 8}


def test_targets_registered_and_unregistered_after_initialize(deno: Frontend) -> None:
    fe = deno
    assert not opens(fe, "late")
    fe.run("register late")
    assert opens(fe, "late")
    fe.run("unregister late")
    assert not opens(fe, "late")


def test_comm_traffic_on_a_subshell_while_a_cell_runs(fe: Frontend) -> None:
    sub = fe.create_subshell()
    comm_id, opened = fe.comm_open("echo", subshell_id=sub)
    fe.until_idle(opened)
    busy = fe.execute("sleep 3")
    fe.wait_for(lambda m: m["parent_header"].get("msg_id") == busy
                and m["msg_type"] == "stream" and "started" in m["content"]["text"])
    sent = fe.comm_msg(comm_id, {"n": 1}, subshell_id=sub)
    msgs = fe.until_idle(sent)
    (echo,) = of_type(msgs, "comm_msg")
    assert echo["content"]["data"] == {"echo": {"n": 1}}
    assert echo["parent_header"]["msg_id"] == sent  # tagged: not the running cell's
    assert stdout_of(msgs) == 'got {"n":1}\n'
    # The cell on the main shell was still running all along, and ends well.
    with pytest.raises(queue.Empty):
        fe.reply(busy, timeout=0.05)
    assert fe.reply(busy)["content"]["status"] == "ok"
    assert stdout_of(fe.until_idle(busy)) == "started\nslept 3\n"


def test_the_sdk_and_the_host_speak_the_same_protocol_version() -> None:
    from kernelkit.bridge import BRIDGE_PROTOCOL_VERSION

    sdk = (ROOT / "src/kernelkit/sdk/js/kernelkit.js").as_uri()
    script = (f'import {{ BRIDGE_PROTOCOL_VERSION }} from "{sdk}";'
              "console.log(BRIDGE_PROTOCOL_VERSION); Deno.exit(0);")
    done = subprocess.run([DENO, "eval", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == BRIDGE_PROTOCOL_VERSION == "1.2"
