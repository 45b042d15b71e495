"""SDK conformance: ONE table of bridge-protocol cases, run against every backend SDK.

The test is the bridge host itself: it starts a tiny backend on each SDK (the JS SDK on
Deno, also with its synchronous stdin, and on Node.js, the Python SDK) with pipes and
speaks JSON lines to it, as docs/bridge-protocol.md says. A new SDK language is done when
it passes this table, in both of a backend's modes: with subshells (requests may run side
by side) and without (one request at a time; the Python SDK then runs them on its main
thread).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conftest import DENO, NODE, SUPPORT
from kernelkit.bridge import BRIDGE_PROTOCOL_VERSION

TIMEOUT = 10.0
SDKS = {
    "py": [sys.executable, str(SUPPORT / "conformance_backend.py")],
    "deno": [DENO, "run", "--allow-env=CONFORMANCE_SUBSHELLS",
             str(SUPPORT / "conformance_backend.mjs")],
    # The JS SDK on Deno with serve({ syncStdin: true }): stdin read with a blocking read
    # whenever no request waits for I/O (the Deno Echo example runs so).
    "deno-sync": [DENO, "run", "--allow-env=CONFORMANCE_SUBSHELLS",
                  str(SUPPORT / "conformance_backend.mjs"), "sync"],
    "node": [NODE, str(SUPPORT / "conformance_backend.mjs")],
}


class Backend:
    """A backend subprocess; every read has a timeout (a reader thread feeds a queue)."""

    def __init__(self, cmd: list[str], subshells: bool) -> None:
        self.subshells = subshells
        env = {**os.environ, "CONFORMANCE_SUBSHELLS": "1" if subshells else "0"}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env)
        self.lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.next_id = 0

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(b"")

    def write(self, raw: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(raw)
        self.proc.stdin.flush()

    def send(self, obj: dict[str, Any]) -> None:
        self.write(json.dumps(obj).encode() + b"\n")

    def request(self, method: str, params: Any = None) -> int:
        self.next_id += 1
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return self.next_id

    def read(self) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=TIMEOUT)
        except queue.Empty:
            pytest.fail(f"no line from the backend in {TIMEOUT} s")
        assert line, "the backend closed its stdout"
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        msg = json.loads(line)
        assert isinstance(msg, dict) and msg.get("jsonrpc") == "2.0", line
        return msg

    def until_response(self, rid: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The response for rid, and the notifications before it."""
        notes = []
        while True:
            msg = self.read()
            if "method" not in msg:
                assert msg["id"] == rid, msg
                return msg, notes
            notes.append(msg)

    def call(self, method: str, params: Any = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return self.until_response(self.request(method, params))

    def initialize(self) -> dict[str, Any]:
        reply, _ = self.call("initialize", {"protocol_version": BRIDGE_PROTOCOL_VERSION,
                                            "kernelkit_version": "0.0"})
        return reply


def execute_params(code: str) -> dict[str, Any]:
    return {"code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": True, "execution_count": 1, "cell_id": None, "subshell_id": None}


def stdout_text(notes: list[dict[str, Any]], rid: int) -> str:
    text = ""
    for n in notes:
        assert n["method"] == "stream", n
        assert n["params"]["name"] == "stdout" and n["params"]["request"] == rid
        text += n["params"]["text"]
    return text


def case_framing(b: Backend) -> None:
    b.initialize()
    ids = [b.request("execute", execute_params(f"line {i}")) for i in range(3)]
    seen = {}
    while len(seen) < 3:
        msg = b.read()
        if "method" not in msg:
            seen[msg["id"]] = msg
    assert sorted(seen) == ids
    assert all(m["result"]["status"] == "ok" for m in seen.values())


def case_initialize(b: Backend) -> None:
    result = b.initialize()["result"]
    assert result["implementation"] == "conformance"
    assert result["language_info"]["name"] == "conformance"
    assert result["interrupt_mode"] == "message"
    assert result.get("subshells", False) is b.subshells
    assert isinstance(result.get("banner", ""), str)
    assert result.get("comm_targets") == ["echo"]
    assert BRIDGE_PROTOCOL_VERSION == "1.2"  # the doc's version, sent in the request


def case_execute(b: Backend) -> None:
    b.initialize()
    rid = b.request("execute", execute_params("hello"))
    reply, notes = b.until_response(rid)
    assert reply["result"]["status"] == "ok"
    assert stdout_text(notes, rid) == "hello"


def case_execute_error(b: Backend) -> None:
    b.initialize()
    reply, _ = b.call("execute", execute_params("error"))
    result = reply["result"]
    assert result["status"] == "error" and result["evalue"] == "bad"
    assert result["ename"] in ("ValueError", "TypeError")
    assert isinstance(result["traceback"], list)


def case_defaults(b: Backend) -> None:
    b.initialize()
    for method, params, keys in [
        ("complete", {"code": "x", "cursor_pos": 1}, {"matches", "cursor_start", "cursor_end"}),
        ("inspect", {"code": "x", "cursor_pos": 1, "detail_level": 0}, {"found"}),
        ("is_complete", {"code": "x"}, {"status"}),
    ]:
        reply, _ = b.call(method, params)
        if "error" in reply:
            assert reply["error"]["code"] == -32601, (method, reply)
        else:
            assert keys <= set(reply["result"]), (method, reply)


def case_unknown_method(b: Backend) -> None:
    b.initialize()
    reply, _ = b.call("no_such_method", {})
    assert reply["error"]["code"] == -32601
    assert "result" not in reply


def case_input(b: Backend) -> None:
    b.initialize()
    rid = b.request("execute", execute_params("input Name? "))
    ask = b.read()
    assert ask["method"] == "input" and "id" in ask
    assert ask["params"]["prompt"] == "Name? " and ask["params"]["password"] is False
    assert ask["params"]["request"] == rid
    b.send({"jsonrpc": "2.0", "id": ask["id"], "result": {"value": "Polly"}})
    reply, notes = b.until_response(rid)
    assert reply["result"]["status"] == "ok"
    assert stdout_text(notes, rid) == "got:Polly"


def case_interrupt(b: Backend) -> None:
    b.initialize()
    rid = b.request("execute", execute_params("wait"))
    with pytest.raises(queue.Empty):
        b.lines.get(timeout=0.3)  # still running
    b.send({"jsonrpc": "2.0", "method": "interrupt", "params": {}})
    reply, _ = b.until_response(rid)
    assert reply["result"]["status"] == "error"
    assert "Interrupt" in reply["result"]["ename"] or "Abort" in reply["result"]["ename"]
    reply, _ = b.call("execute", execute_params("after"))  # still serving
    assert reply["result"]["status"] == "ok"


def case_shutdown(b: Backend) -> None:
    b.initialize()
    reply, _ = b.call("shutdown", {"restart": False})
    assert reply["result"]["status"] == "ok"
    assert b.proc.wait(timeout=TIMEOUT) == 0


def case_parse_error(b: Backend) -> None:
    b.initialize()
    b.write(b"this is {not json\n")
    msg = b.read()
    assert msg["id"] is None and msg["error"]["code"] == -32700
    reply, _ = b.call("execute", execute_params("still here"))
    assert reply["result"]["status"] == "ok"


def case_no_method(b: Backend) -> None:
    b.initialize()
    b.send({"jsonrpc": "2.0", "id": 99, "params": {}})  # neither request nor a known answer
    reply, _ = b.call("execute", execute_params("still here"))  # ignored, not answered
    assert reply["result"]["status"] == "ok"


def case_interrupt_signal(b: Backend) -> None:
    """The other way an interrupt comes (interrupt_mode "signal"): SIGINT to the backend."""
    b.initialize()
    rid = b.request("execute", execute_params("wait"))
    with pytest.raises(queue.Empty):
        b.lines.get(timeout=0.3)  # still running
    b.proc.send_signal(signal.SIGINT)
    reply, _ = b.until_response(rid)
    assert reply["result"]["status"] == "error"
    assert "Interrupt" in reply["result"]["ename"] or "Abort" in reply["result"]["ename"]
    reply, _ = b.call("execute", execute_params("after"))  # still serving
    assert reply["result"]["status"] == "ok"


def comm_params(comm_id: str, **kw: Any) -> dict[str, Any]:
    return {"comm_id": comm_id, "data": {}, "metadata": {}, "buffers": [], **kw}


def case_comm_from_the_frontend(b: Backend) -> None:
    b.initialize()
    reply, _ = b.call("comm_open", comm_params("c1", target_name="echo"))
    assert "error" not in reply, reply
    rid = b.request("comm_msg", comm_params("c1", data={"x": 1}, buffers=["AAE="]))
    reply, notes = b.until_response(rid)
    assert "error" not in reply, reply
    echoes = [n for n in notes if n["method"] == "comm_msg"]
    assert len(echoes) == 1, notes
    assert echoes[0]["params"]["comm_id"] == "c1"
    assert echoes[0]["params"]["data"] == {"echo": {"x": 1}}
    assert echoes[0]["params"]["buffers"] == ["AAE="]
    assert echoes[0]["params"]["request"] == rid
    reply, _ = b.call("comm_close", comm_params("c1"))
    assert "error" not in reply, reply
    reply, _ = b.call("comm_msg", comm_params("c1", data={"x": 2}))  # closed: not known
    assert "error" in reply, reply
    reply, _ = b.call("comm_msg", comm_params("never-opened"))
    assert "error" in reply, reply


def case_comm_from_the_backend(b: Backend) -> None:
    b.initialize()
    rid = b.request("execute", execute_params("open"))
    reply, notes = b.until_response(rid)
    assert reply["result"]["status"] == "ok"
    comm_notes = [n for n in notes if n["method"].startswith("comm_")]
    assert [n["method"] for n in comm_notes] == ["comm_open", "comm_msg", "comm_close"], notes
    opened, sent, _closed = (n["params"] for n in comm_notes)
    assert opened["target_name"] == "conformance.out" and opened["data"] == {"n": 1}
    assert isinstance(opened["comm_id"], str) and opened["comm_id"]
    assert {p["comm_id"] for p in (n["params"] for n in comm_notes)} == {opened["comm_id"]}
    assert sent["data"] == {"n": 2} and sent["buffers"] == ["AAE="]
    assert all(n["params"].get("request") == rid for n in comm_notes)


CASES: dict[str, Callable[[Backend], None]] = {
    "framing": case_framing, "initialize": case_initialize, "execute": case_execute,
    "execute_error": case_execute_error, "defaults": case_defaults,
    "unknown_method": case_unknown_method, "input": case_input, "interrupt": case_interrupt,
    "interrupt_signal": case_interrupt_signal, "shutdown": case_shutdown,
    "parse_error": case_parse_error, "no_method": case_no_method,
    "comm_from_the_frontend": case_comm_from_the_frontend,
    "comm_from_the_backend": case_comm_from_the_backend,
}


MODES = {"subshells": True, "one_at_a_time": False}


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    sdk, mode = request.param
    b = Backend(SDKS[sdk], MODES[mode])
    yield b
    if b.proc.poll() is None:
        b.proc.kill()
    b.proc.wait(timeout=TIMEOUT)


@pytest.mark.parametrize(
    ("case", "backend"),
    [pytest.param(c, (s, m), id=f"{c}-{s}-{m}") for c in CASES for s in SDKS for m in MODES],
    indirect=["backend"])
def test_conformance(case: str, backend: Backend) -> None:
    CASES[case](backend)
