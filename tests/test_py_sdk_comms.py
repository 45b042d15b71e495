"""Comms in the Python backend SDK (bridge protocol 1.2), with real processes.

First the SDK alone: tests/support/comms_backend.py run as a child process and spoken
to line by line, as the host would (what exactly goes on the pipe). Then through the real
host (``kernelkit bridge``, installed as a kernelspec) and jupyter_client as the frontend,
in both of the SDK's modes: one request at a time, and concurrent (subshells).
"""

from __future__ import annotations

import base64
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import SUPPORT, kernelkit
from test_bridge_comms import Msg, comm_info, comm_msgs, send, stdout, until_idle

BACKEND = SUPPORT / "comms_backend.py"
MODES = {"kk-py-comms": [], "kk-py-comms-subshells": ["--subshells"]}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- the SDK alone, on its pipe ---------------------------------------------------------------


class Pipe:
    """comms_backend.py as a child process; this side plays the host."""

    def __init__(self, *args: str, protocol: str = "1.2") -> None:
        self.proc = subprocess.Popen([sys.executable, str(BACKEND), *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        result = self.result(self.request("initialize", {"protocol_version": protocol,
                                                         "kernelkit_version": "test"}))
        self.targets = result["comm_targets"]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def request(self, method: str, params: dict[str, Any]) -> int:
        self.next_id += 1
        line = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(line).encode() + b"\n")
        self.proc.stdin.flush()
        return self.next_id

    def until(self, rid: int, timeout: float = 20) -> list[dict[str, Any]]:
        """Every line up to and including the response to ``rid``."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            msg = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            got.append(msg)
            if msg.get("id") == rid and "method" not in msg:
                return got

    def result(self, rid: int) -> Any:
        answer = self.until(rid)[-1]
        assert "result" in answer, answer
        return answer["result"]

    def execute(self, code: str) -> list[dict[str, Any]]:
        """The lines of an execute, its response last (checked ok)."""
        got = self.until(self.request("execute", {"code": code, "silent": False}))
        assert got[-1]["result"]["status"] == "ok", got[-1]
        return got

    def stdout(self, code: str) -> str:
        return "".join(m["params"]["text"] for m in self.execute(code)
                       if m.get("method") == "stream")

    def comm(self, method: str, comm_id: str, data: dict[str, Any] | None = None,
             buffers: list[str] | None = None, **more: Any) -> list[dict[str, Any]]:
        return self.until(self.request(method, {"comm_id": comm_id, "data": data or {},
                                                "metadata": {}, "buffers": buffers or [],
                                                **more}))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


@pytest.fixture(params=list(MODES.values()), ids=list(MODES))
def pipe(request: pytest.FixtureRequest) -> Iterator[Pipe]:
    p = Pipe(*request.param)
    yield p
    p.close()


def notes(lines: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    return [m["params"] for m in lines if m.get("method") == method]


def test_targets_go_in_initialize_then_as_notifications(pipe: Pipe) -> None:
    assert pipe.targets == ["echo", "refuse"]  # backend.comm_targets, and one registered
    lines = pipe.execute("register extra")
    assert lines[:-1] == [{"jsonrpc": "2.0", "method": "comm_register_target",
                           "params": {"target_name": "extra"}}]
    assert pipe.execute("register extra")[:-1] == []  # again: a new handler, no news
    lines = pipe.execute("unregister extra")
    assert notes(lines, "comm_unregister_target") == [{"target_name": "extra"}]
    assert pipe.execute("unregister extra")[:-1] == []
    opened = pipe.comm("comm_open", "c-extra", target_name="extra")[-1]
    assert opened["error"]["message"] == "no comm target 'extra' is registered"


def test_a_frontend_comm_gets_messages_both_ways_with_buffers(pipe: Pipe) -> None:
    lines = pipe.comm("comm_open", "c1", {"a": 1}, [b64(b"\x00\x01")], target_name="echo")
    rid = lines[-1]["id"]
    assert lines[-1]["result"] == {}
    streams = notes(lines, "stream")  # the handler's print(), output of this request
    assert "".join(s["text"] for s in streams) == 'opened {"a": 1}\n'
    assert {(s["name"], s["request"]) for s in streams} == {("stdout", rid)}
    lines = pipe.comm("comm_msg", "c1", {"x": 1}, [b64(b"\x00\x01"), b64(b""), b64(b"\xff")])
    rid = lines[-1]["id"]
    assert lines[-1]["result"] == {}
    assert "".join(s["text"] for s in notes(lines, "stream")) == 'got {"x": 1}\n'
    assert notes(lines, "comm_msg") == [{"comm_id": "c1", "data": {"echo": {"x": 1}},
                                         "buffers": ["AAE=", "", "/w=="], "request": rid}]
    assert pipe.comm("comm_close", "c1", {"bye": 1})[-1]["result"] == {}
    got = json.loads(pipe.stdout("got"))
    assert [(g["event"], g["comm_id"], g["data"]) for g in got] == [
        ("open", "c1", {"a": 1}), ("msg", "c1", {"x": 1}), ("close", "c1", {"bye": 1})]
    assert got[0]["buffers"] == ["0001"] and got[1]["buffers"] == ["0001", "", "ff"]
    assert got[1]["types"] == ["bytes"]
    # closed on both sides: the backend no longer knows it
    after = pipe.comm("comm_msg", "c1", {})[-1]
    assert after["error"]["message"] == "comm_msg for comm c1, which is not open"


def test_what_the_backend_refuses_is_an_error_response(pipe: Pipe) -> None:
    refused = pipe.comm("comm_open", "c2", target_name="refuse")[-1]["error"]
    assert refused["data"]["ename"] == "RuntimeError"
    assert refused["message"].startswith("refused by design (at comms_backend.py:")
    assert refused["message"].endswith(" in refuse)")
    assert any("refused by design" in line for line in refused["data"]["traceback"])
    unknown = pipe.comm("comm_open", "c3", target_name="nope")[-1]["error"]
    assert unknown["message"] == "no comm target 'nope' is registered"
    assert pipe.comm("comm_msg", "nobody")[-1]["error"]["data"]["ename"] == "NoComm"
    assert pipe.comm("comm_close", "nobody")[-1]["error"]["data"]["ename"] == "NoComm"
    assert pipe.comm("comm_open", "c4", target_name="echo")[-1]["result"] == {}
    again = pipe.comm("comm_open", "c4", target_name="echo")[-1]["error"]
    assert again["message"] == "comm c4 is open already"
    bad = pipe.comm("comm_msg", "c4", {}, ["not base64!"])[-1]["error"]
    assert (bad["code"], bad["message"]) == (-32602, "buffers[0] is not a base64 string")
    lines = pipe.comm("comm_msg", "c4", {"raise": True})
    raised = lines[-1]["error"]
    assert raised["data"]["ename"] == "ValueError"
    assert raised["message"].startswith("asked to raise (at comms_backend.py:")
    assert "".join(s["text"] for s in notes(lines, "stream")) == 'got {"raise": true}\n'
    # the backend lives, the comm stays open, and the refused ones were never kept
    assert json.loads(pipe.stdout("list")) == ["c4"]


def test_a_comm_the_backend_opens(pipe: Pipe) -> None:
    lines = pipe.execute("open")
    rid = lines[-1]["id"]
    comm_id = "".join(s["text"] for s in notes(lines, "stream")).strip()
    assert len(comm_id) == 32  # a UUID's hex
    assert notes(lines, "comm_open") == [{
        "comm_id": comm_id, "target_name": "from-backend", "data": {"hello": 1},
        "metadata": {"m": 1}, "buffers": [b64(b"\x00\xff"), b64(b"xy")], "request": rid}]
    lines = pipe.execute("send hi")
    assert notes(lines, "comm_msg") == [{"comm_id": comm_id, "data": {"text": "hi"},
                                         "buffers": [b64(b"abc")], "request": lines[-1]["id"]}]
    assert notes(pipe.execute("later"), "comm_msg") == []
    # sent by a thread of no request, after the reply: not tagged
    assert pipe.lines.get(timeout=20) == {"jsonrpc": "2.0", "method": "comm_msg",
                                          "params": {"comm_id": comm_id,
                                                     "data": {"later": True}}}
    assert json.loads(pipe.stdout("list")) == [comm_id]
    # the frontend answers on it; then the backend closes it
    assert pipe.comm("comm_msg", comm_id, {"from": "frontend"})[-1]["result"] == {}
    lines = pipe.execute("close")
    assert notes(lines, "comm_close") == [{"comm_id": comm_id, "data": {"bye": True},
                                           "request": lines[-1]["id"]}]
    assert json.loads(pipe.stdout("list")) == []
    got = json.loads(pipe.stdout("got"))
    assert [(g["event"], g["data"]) for g in got] == [("msg", {"from": "frontend"})]


def test_wrong_calls_are_clear_errors_and_send_nothing(pipe: Pipe) -> None:
    lines = pipe.execute("misuse")
    printed = "".join(s["text"] for s in notes(lines, "stream")).splitlines()
    comm_id = notes(lines, "comm_open")[0]["comm_id"]
    assert printed == [
        "TypeError: comm data must be a dict, not list",
        "TypeError: buffers[0] must be bytes-like, not str",
        "TypeError: buffers must be a list of bytes-like objects, not bytes",
        "TypeError: Object of type bytes is not JSON serializable",
        f"ValueError: comm {comm_id} is open already",
        "TypeError: a comm target name must be a non-empty string",
        f"RuntimeError: comm {comm_id} (from-backend) is closed",
    ]
    assert [m["method"] for m in lines if "method" in m and m["method"] != "stream"] == [
        "comm_open", "comm_close"]


def test_a_host_without_comms_gets_none() -> None:
    """A 1.1 host knows no comm notifications: the SDK sends none, opening is an error."""
    pipe = Pipe(protocol="1.1")
    try:
        assert pipe.execute("register extra")[:-1] == []
        lines = pipe.until(pipe.request("execute", {"code": "open", "silent": False}))
        result = lines[-1]["result"]
        assert (result["status"], result["ename"]) == ("error", "RuntimeError")
        assert "protocol 1.2" in result["evalue"]
        assert notes(lines, "comm_open") == []
    finally:
        pipe.close()


def test_concurrent_mode_answers_a_comm_message_while_a_cell_runs() -> None:
    pipe = Pipe("--subshells")
    try:
        assert pipe.comm("comm_open", "c5", target_name="echo")[-1]["result"] == {}
        cell = pipe.request("execute", {"code": "sleep 2", "silent": False})
        msg = pipe.request("comm_msg", {"comm_id": "c5", "data": {"n": 1}, "metadata": {},
                                        "buffers": []})
        lines = pipe.until(cell, timeout=30)
        answered = [m["id"] for m in lines if "id" in m and "method" not in m]
        assert answered == [msg, cell]  # the comm message did not wait for the cell
        echo = [m["params"] for m in lines if m.get("method") == "comm_msg"]
        assert echo == [{"comm_id": "c5", "data": {"echo": {"n": 1}}, "request": msg}]
        got = [m["params"]["text"] for m in lines if m.get("method") == "stream"
               and m["params"]["request"] == msg]
        assert "".join(got) == 'got {"n": 1}\n'
    finally:
        pipe.close()


# -- through the real host, with jupyter_client -------------------------------------------------


@pytest.fixture(scope="module")
def installed() -> dict[str, Path]:
    prefix = Path(os.environ["JUPYTER_PATH"]).parents[1]  # conftest's test prefix
    for name, args in MODES.items():
        done = kernelkit("install", "--name", name, "--prefix", str(prefix), "--",
                         sys.executable, str(BACKEND), *args)
        assert done.returncode == 0, done.stderr
    return {name: prefix / "share" / "jupyter" / "kernels" / name for name in MODES}


@pytest.fixture(params=list(MODES))
def mode(installed: dict[str, Path], request: pytest.FixtureRequest) -> str:
    """The kernelspec of comms_backend.py in one of the SDK's modes."""
    return str(request.param)


@pytest.fixture
def k(mode: str, start_kernel: Any) -> Any:
    return start_kernel(mode)


def statuses(msgs: list[Msg]) -> list[str]:
    return [m["content"]["execution_state"] for m in msgs if m["msg_type"] == "status"]


def backend_got(k: Any) -> list[Msg]:
    """What the backend's comm callbacks received, by its own account."""
    return json.loads(k.stdout("got"))  # type: ignore[no-any-return]


def test_host_a_frontend_comm_round_trips_with_binary_buffers(k: Any) -> None:
    opened = send(k, "comm_open", {"comm_id": "c1", "target_name": "echo", "data": {"a": 1}})
    msgs = until_idle(k, opened)
    assert not comm_msgs(msgs, "comm_close"), "a registered target was closed"
    assert stdout(msgs) == 'opened {"a": 1}\n'  # printed by the handler: that message's output
    assert comm_info(k) == {"c1": {"target_name": "echo"}}
    assert comm_info(k, "echo") == {"c1": {"target_name": "echo"}}
    assert comm_info(k, "other") == {}

    sent = send(k, "comm_msg", {"comm_id": "c1", "data": {"x": 1}}, [b"\x00\x01", b"", b"\xff"])
    msgs = until_idle(k, sent)
    assert statuses(msgs) == ["busy", "idle"]
    kinds = [m["msg_type"] for m in msgs]
    assert kinds[0] == "status" and kinds[-1] == "status"
    assert "stream" in kinds and {*kinds[kinds.index("comm_msg") + 1:-1]} <= {"stream"}
    assert kinds.index("stream") < kinds.index("comm_msg")  # the print, then the echo
    assert all(m["parent_header"]["msg_id"] == sent for m in msgs)
    assert stdout(msgs) == 'got {"x": 1}\n'
    (echo,) = comm_msgs(msgs)
    assert echo["content"] == {"comm_id": "c1", "data": {"echo": {"x": 1}}}
    assert [bytes(b) for b in echo["buffers"]] == [b"\x00\x01", b"", b"\xff"]

    until_idle(k, send(k, "comm_close", {"comm_id": "c1", "data": {"bye": 1}}))
    assert comm_info(k) == {}
    got = backend_got(k)
    assert [(g["event"], g["comm_id"], g["data"]) for g in got] == [
        ("open", "c1", {"a": 1}), ("msg", "c1", {"x": 1}), ("close", "c1", {"bye": 1})]
    assert got[1]["buffers"] == ["0001", "", "ff"] and got[1]["types"] == ["bytes"]
    assert json.loads(k.stdout("list")) == []


def test_host_a_comm_opened_by_the_backend_in_a_cell(k: Any) -> None:
    reply, msgs = k.execute("open")
    cell = reply["parent_header"]["msg_id"]
    (opened,) = comm_msgs(msgs, "comm_open")
    comm_id = opened["content"]["comm_id"]
    assert opened["parent_header"]["msg_id"] == cell
    assert opened["content"] == {"comm_id": comm_id, "target_name": "from-backend",
                                 "data": {"hello": 1}}
    assert opened["metadata"] == {"m": 1}
    assert [bytes(b) for b in opened["buffers"]] == [b"\x00\xff", b"xy"]
    assert comm_info(k, "from-backend") == {comm_id: {"target_name": "from-backend"}}

    reply, msgs = k.execute("send hi")
    (sent,) = comm_msgs(msgs)
    assert sent["content"] == {"comm_id": comm_id, "data": {"text": "hi"}}
    assert [bytes(b) for b in sent["buffers"]] == [b"abc"]
    assert sent["parent_header"]["msg_id"] == reply["parent_header"]["msg_id"]

    # The frontend sends on it, then closes it: the backend's callbacks see both.
    until_idle(k, send(k, "comm_msg", {"comm_id": comm_id, "data": {"from": "lab"}}, [b"\x01"]))
    until_idle(k, send(k, "comm_close", {"comm_id": comm_id, "data": {}}))
    assert comm_info(k) == {}
    assert json.loads(k.stdout("list")) == []
    got = backend_got(k)
    assert [(g["event"], g["data"], g["buffers"]) for g in got] == [
        ("msg", {"from": "lab"}, ["01"]), ("close", {}, [])]

    # Another one, closed by the backend this time.
    _, msgs = k.execute("open")
    comm_id = comm_msgs(msgs, "comm_open")[0]["content"]["comm_id"]
    _, msgs = k.execute("close")
    assert [m["content"] for m in comm_msgs(msgs, "comm_close")] == [
        {"comm_id": comm_id, "data": {"bye": True}}]
    assert comm_info(k) == {}


def test_host_unknown_and_refusing_targets_are_closed(capfd: Any, mode: str,
                                                      start_kernel: Any) -> None:
    k = start_kernel(mode)  # started here, so that capfd has the host's log (its stderr)
    for target in ("nobody", "refuse"):
        cid = uuid.uuid4().hex
        msgs = until_idle(k, send(k, "comm_open", {"comm_id": cid, "target_name": target,
                                                   "data": {}}))
        assert [m["content"]["comm_id"] for m in comm_msgs(msgs, "comm_close")] == [cid]
    assert comm_info(k) == {}
    assert [g["event"] for g in backend_got(k)] == []  # the refused comm was not kept
    err = capfd.readouterr().err
    assert "the backend refused it: RuntimeError: refused by design (at comms_backend.py:" \
        in err


def test_host_a_raising_callback_is_logged_and_the_backend_lives(capfd: Any, mode: str,
                                                                 start_kernel: Any) -> None:
    k = start_kernel(mode)
    until_idle(k, send(k, "comm_open", {"comm_id": "c2", "target_name": "echo", "data": {}}))
    msgs = until_idle(k, send(k, "comm_msg", {"comm_id": "c2", "data": {"raise": True}}))
    assert statuses(msgs) == ["busy", "idle"]
    assert not comm_msgs(msgs)
    assert stdout(msgs) == 'got {"raise": true}\n'
    err = capfd.readouterr().err
    assert "backend comm_msg for comm c2 (echo) failed: ValueError: asked to raise (at " in err
    assert k.stdout("list") == '["c2"]\n'  # the next cell works: the same backend, comm open
    msgs = until_idle(k, send(k, "comm_msg", {"comm_id": "c2", "data": {"ok": 1}}))
    assert [m["content"]["data"] for m in comm_msgs(msgs)] == [{"echo": {"ok": 1}}]


def test_host_targets_registered_and_unregistered_after_initialize(k: Any) -> None:
    def opens(target: str) -> bool:
        msgs = until_idle(k, send(k, "comm_open", {"comm_id": uuid.uuid4().hex,
                                                   "target_name": target, "data": {}}))
        return not comm_msgs(msgs, "comm_close")

    assert not opens("late")
    k.execute("register late")
    assert opens("late")
    k.execute("unregister late")
    assert not opens("late")


def test_host_a_comm_message_on_a_subshell_while_a_cell_runs(installed: dict[str, Path],
                                                             start_kernel: Any) -> None:
    k = start_kernel("kk-py-comms-subshells")
    reply = k.reply(k.request("create_subshell_request", {}, "control"), "control")
    sid = reply["content"]["subshell_id"]
    until_idle(k, send(k, "comm_open", {"comm_id": "s1", "target_name": "echo", "data": {}},
                       subshell_id=sid))
    busy = k.kc.execute("sleep 3")
    k.wait_started(busy)
    sent = send(k, "comm_msg", {"comm_id": "s1", "data": {"n": 1}}, subshell_id=sid)
    msgs = until_idle(k, sent)
    assert [m["content"]["data"] for m in comm_msgs(msgs)] == [{"echo": {"n": 1}}]
    assert stdout(msgs) == 'got {"n": 1}\n'
    assert all(m["parent_header"]["subshell_id"] == sid for m in msgs)
    # The cell on the main shell is still running: the comm message did not wait for it.
    with pytest.raises(queue.Empty):
        k.reply(busy, timeout=0.05)
    assert k.reply(busy, timeout=20)["content"]["status"] == "ok"
    (got,) = [g for g in backend_got(k) if g["event"] == "msg"]
    assert got["thread"] != "MainThread"


def test_host_closes_the_comms_of_a_backend_that_died(k: Any) -> None:
    _, msgs = k.execute("open")
    mine = comm_msgs(msgs, "comm_open")[0]["content"]["comm_id"]
    until_idle(k, send(k, "comm_open", {"comm_id": "c3", "target_name": "echo", "data": {}}))
    assert set(comm_info(k)) == {mine, "c3"}
    reply, msgs = k.execute("die")
    assert reply["content"]["ename"] == "BackendDied"
    assert {m["content"]["comm_id"] for m in comm_msgs(msgs, "comm_close")} == {mine, "c3"}
    assert comm_info(k) == {}
    assert k.stdout("list") == "[]\n"  # the next cell works, on a fresh backend
    until_idle(k, send(k, "comm_open", {"comm_id": "c4", "target_name": "echo", "data": {}}))
    assert comm_info(k) == {"c4": {"target_name": "echo"}}  # its targets, from initialize


def test_the_python_sdk_and_the_host_speak_the_same_protocol_version() -> None:
    # The SDK is copied beside backends on its own, so it cannot import the host's constant.
    import importlib.util

    from kernelkit.bridge import BRIDGE_PROTOCOL_VERSION

    path = Path(__file__).parent.parent / "src/kernelkit/sdk/python/kernelkit_backend.py"
    spec = importlib.util.spec_from_file_location("kernelkit_backend_version", path)
    assert spec is not None and spec.loader is not None
    sdk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sdk)
    assert sdk.BRIDGE_PROTOCOL_VERSION == BRIDGE_PROTOCOL_VERSION == "1.2"
