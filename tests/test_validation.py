"""Request contents are checked against the messaging spec's types before any hook runs.

Unit tests go through kernelkit.testing.FakeTransport (as tests/test_dispatch.py does):
for every rule, a wrong value gets one error reply naming the field and what was
expected, no hook runs and the execution count stays; what real clients send (and
omit) keeps working with the spec's defaults. The last tests run a real kernel process
through jupyter_client. The signature-scheme and empty-key start-up checks are here too.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

from kernelkit import Kernel
from kernelkit.dispatch import Dispatcher
from kernelkit.requests import describe
from kernelkit.testing import FakeTransport, attach, request
from kernelkit.wire import Session, Signer


class Recorder(Kernel):
    """Records each hook call (name, positional arguments, keyword arguments)."""

    implementation = "recorder"
    language_info = {"name": "recorder", "mimetype": "text/plain", "file_extension": ".txt"}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def do_execute(self, code: str, silent: bool, store_history: bool = True,
                   user_expressions: Any = None, allow_stdin: bool = False,
                   *, cell_id: str | None = None) -> Any:
        self.calls.append(("do_execute", (code, silent, store_history, user_expressions,
                                          allow_stdin), {"cell_id": cell_id}))
        return {"status": "ok", "execution_count": self.execution_count, "payload": [],
                "user_expressions": {}}

    def do_complete(self, code: str, cursor_pos: int) -> Any:
        self.calls.append(("do_complete", (code, cursor_pos), {}))
        return super().do_complete(code, cursor_pos)

    def do_inspect(self, code: str, cursor_pos: int, detail_level: int = 0,
                   omit_sections: Any = ()) -> Any:
        self.calls.append(("do_inspect", (code, cursor_pos, detail_level),
                           {"omit_sections": omit_sections}))
        return super().do_inspect(code, cursor_pos, detail_level)

    def do_history(self, *args: Any) -> Any:
        self.calls.append(("do_history", args, {}))
        return {"status": "ok", "history": []}

    def do_is_complete(self, code: str) -> Any:
        self.calls.append(("do_is_complete", (code,), {}))
        return {"status": "complete"}

    def do_shutdown(self, restart: bool) -> Any:
        self.calls.append(("do_shutdown", (restart,), {}))
        return {"status": "ok", "restart": restart}


def setup() -> tuple[Recorder, FakeTransport, Dispatcher]:
    kernel = Recorder()
    transport, dispatcher = attach(kernel)
    return kernel, transport, dispatcher


def send(msg_type: str, content: dict[str, Any], metadata: dict[str, Any] | None = None,
         channel: str = "shell") -> tuple[Recorder, FakeTransport, Any, dict[str, Any]]:
    kernel, transport, dispatcher = setup()
    msg = request(msg_type, content)
    if metadata:
        msg.metadata.update(metadata)
    dispatcher.handle(channel, msg)
    return kernel, transport, msg, transport.reply_to(msg)


# -- every rule: a wrong value is refused, nothing runs ------------------------------------

BIG = 10**400

INVALID: list[tuple[str, dict[str, Any], str, list[str]]] = [
    # execute_request
    ("execute_request", {"code": 7}, "TypeError", ["'code'", "a string", "the integer 7"]),
    ("execute_request", {"code": None}, "TypeError", ["'code'", "a string", "null"]),
    ("execute_request", {"code": "x", "silent": "false"}, "TypeError",
     ["'silent'", "a boolean", "the string 'false'"]),
    ("execute_request", {"code": "x", "silent": 0}, "TypeError", ["'silent'", "the integer 0"]),
    ("execute_request", {"code": "x", "silent": None}, "TypeError", ["'silent'", "null"]),
    ("execute_request", {"code": "x", "store_history": "yes"}, "TypeError",
     ["'store_history'", "a boolean"]),
    ("execute_request", {"code": "x", "allow_stdin": 1}, "TypeError",
     ["'allow_stdin'", "a boolean"]),
    ("execute_request", {"code": "x", "stop_on_error": "no"}, "TypeError",
     ["'stop_on_error'", "a boolean"]),
    ("execute_request", {"code": "x", "user_expressions": ["a"]}, "TypeError",
     ["'user_expressions'", "an object of strings", "an array"]),
    ("execute_request", {"code": "x", "user_expressions": {"a": 1}}, "TypeError",
     ["user_expressions['a']", "a string", "the integer 1"]),
    # complete_request
    ("complete_request", {"code": "abc", "cursor_pos": -5}, "ValueError",
     ["'cursor_pos'", "between 0 and 3", "not -5"]),
    ("complete_request", {"code": "abc", "cursor_pos": 4}, "ValueError",
     ["'cursor_pos'", "between 0 and 3", "not 4"]),
    ("complete_request", {"code": "abc", "cursor_pos": BIG}, "ValueError",
     ["'cursor_pos'", "between 0 and 3", "an integer of 401 digits"]),
    ("complete_request", {"code": "abc", "cursor_pos": "3"}, "TypeError",
     ["'cursor_pos'", "an integer", "the string '3'"]),
    ("complete_request", {"code": "abc", "cursor_pos": 1.5}, "TypeError",
     ["'cursor_pos'", "an integer", "the number 1.5"]),
    ("complete_request", {"code": "abc", "cursor_pos": True}, "TypeError",
     ["'cursor_pos'", "the boolean true"]),
    ("complete_request", {"code": ["x"], "cursor_pos": 1}, "TypeError", ["'code'", "an array"]),
    # inspect_request
    ("inspect_request", {"code": "abc", "cursor_pos": -1}, "ValueError", ["'cursor_pos'"]),
    ("inspect_request", {"code": "abc", "cursor_pos": BIG}, "ValueError", ["'cursor_pos'"]),
    ("inspect_request", {"code": "abc", "cursor_pos": 1, "detail_level": 2}, "ValueError",
     ["'detail_level'", "0 or 1", "the integer 2"]),
    ("inspect_request", {"code": "abc", "cursor_pos": 1, "detail_level": "1"}, "TypeError",
     ["'detail_level'", "0 or 1", "the string '1'"]),
    ("inspect_request", {"code": "abc", "cursor_pos": 1, "detail_level": True}, "TypeError",
     ["'detail_level'", "the boolean true"]),
    ("inspect_request", {"code": "abc", "cursor_pos": 1, "detail_level": 1.0}, "TypeError",
     ["'detail_level'", "the number 1.0"]),
    ("inspect_request", {"code": "abc", "omit_sections": "doc"}, "TypeError",
     ["'omit_sections'", "an array of strings"]),
    ("inspect_request", {"code": 3}, "TypeError", ["'code'"]),
    # is_complete_request
    ("is_complete_request", {"code": {"a": 1}}, "TypeError", ["'code'", "an object"]),
    # history_request
    ("history_request", {"hist_access_type": 1}, "TypeError", ["'hist_access_type'"]),
    ("history_request", {"output": "true"}, "TypeError", ["'output'", "a boolean"]),
    ("history_request", {"raw": 1}, "TypeError", ["'raw'", "a boolean"]),
    ("history_request", {"unique": "no"}, "TypeError", ["'unique'", "a boolean"]),
    ("history_request", {"session": "1"}, "TypeError", ["'session'", "an integer"]),
    ("history_request", {"start": 1.5}, "TypeError", ["'start'", "an integer"]),
    ("history_request", {"stop": True}, "TypeError", ["'stop'", "an integer"]),
    ("history_request", {"n": "10"}, "TypeError", ["'n'", "an integer"]),
    ("history_request", {"pattern": 5}, "TypeError", ["'pattern'", "a string"]),
    # comm_info_request
    ("comm_info_request", {"target_name": 5}, "TypeError", ["'target_name'", "a string"]),
    # shutdown_request
    ("shutdown_request", {"restart": "false"}, "TypeError", ["'restart'", "a boolean"]),
    ("shutdown_request", {"restart": 0}, "TypeError", ["'restart'", "a boolean"]),
]


@pytest.mark.parametrize(
    ("msg_type", "content", "ename", "fragments"),
    INVALID,
    ids=[f"{t.removesuffix('_request')}-{i}" for i, (t, *_) in enumerate(INVALID)],
)
def test_wrong_content_is_refused_and_nothing_runs(
    msg_type: str, content: dict[str, Any], ename: str, fragments: list[str]
) -> None:
    kernel, transport, msg, reply = send(msg_type, content)
    assert reply["status"] == "error"
    assert reply["ename"] == ename
    assert reply["evalue"].startswith(f"{msg_type} content ")
    for fragment in fragments:
        assert fragment in reply["evalue"], reply["evalue"]
    assert reply["traceback"] == [reply["evalue"]]
    assert len(reply["evalue"]) < 200  # a 10**400 or a huge string is not quoted back whole
    assert kernel.calls == []
    assert kernel.execution_count == 0
    assert transport.statuses(msg) == ["busy", "idle"]
    assert transport.iopub(msg, "execute_input") == []
    assert transport.stopped is None  # a refused shutdown_request does not shut down


def test_a_refused_execute_keeps_the_count_and_shows_its_error() -> None:
    kernel, transport, dispatcher = setup()
    first = request("execute_request", {"code": "one"})
    dispatcher.handle("shell", first)
    assert transport.reply_to(first)["execution_count"] == 1
    bad = request("execute_request", {"code": "two", "silent": "false"})
    dispatcher.handle("shell", bad)
    reply = transport.reply_to(bad)
    assert (reply["status"], reply["ename"], reply["execution_count"]) == ("error", "TypeError", 1)
    # Shown in the cell as any failed cell's error is (notebooks read errors from IOPub).
    [error] = transport.iopub(bad, "error")
    assert error.content["ename"] == "TypeError" and "'silent'" in error.content["evalue"]
    after = request("execute_request", {"code": "three"})
    dispatcher.handle("shell", after)
    assert transport.reply_to(after)["execution_count"] == 2
    assert [c[1][0] for c in kernel.calls] == ["one", "three"]


def test_a_refused_silent_execute_publishes_nothing_but_status() -> None:
    _, transport, msg, reply = send("execute_request", {"code": 5, "silent": True})
    assert reply["ename"] == "TypeError"
    assert [s.msg_type for s in transport.iopub(msg)] == ["status", "status"]


def test_a_refused_execute_does_not_abort_what_is_queued() -> None:
    # Nothing ran, so nothing failed: requests behind it are not answered "aborted".
    kernel, transport, dispatcher = setup()
    behind = request("execute_request", {"code": "behind"})
    transport.queue.append(behind)
    bad = request("execute_request", {"code": "x", "stop_on_error": "yes"})
    dispatcher.handle("shell", bad)
    dispatcher.handle("shell", behind)
    assert transport.reply_to(behind)["status"] == "ok"
    assert [c[1][0] for c in kernel.calls] == ["behind"]


def test_cell_id_must_be_a_string() -> None:
    kernel, _, _, reply = send("execute_request", {"code": "x"}, metadata={"cellId": 42})
    assert reply["ename"] == "TypeError" and "cellId" in reply["evalue"]
    assert kernel.calls == []


# -- what real clients send keeps working, with the spec's defaults -------------------------

# What each hook receives for a request, including omitted fields (the spec's defaults).
VALID: list[tuple[str, dict[str, Any], dict[str, Any], tuple[Any, ...], dict[str, Any]]] = [
    # jupyter_client's execute(), all fields given
    ("execute_request", {"code": "x", "silent": False, "store_history": True,
                         "user_expressions": {"a": "1+1"}, "allow_stdin": True,
                         "stop_on_error": True}, {},
     ("x", False, True, {"a": "1+1"}, True), {"cell_id": None}),
    # JupyterLab's requestExecute, with the cell id in the metadata
    ("execute_request", {"silent": False, "store_history": True, "user_expressions": {},
                         "allow_stdin": True, "stop_on_error": False, "code": "y"},
     {"cellId": "c-1", "deletedCells": [], "recordTiming": False},
     ("y", False, True, {}, True), {"cell_id": "c-1"}),
    # the minimum: code alone
    ("execute_request", {"code": "z"}, {}, ("z", False, True, {}, True), {"cell_id": None}),
    # silent: no history unless said otherwise, and never with silent
    ("execute_request", {"code": "s", "silent": True}, {}, ("s", True, False, {}, True),
     {"cell_id": None}),
    ("execute_request", {"code": "s", "silent": True, "store_history": True}, {},
     ("s", True, False, {}, True), {"cell_id": None}),
    ("execute_request", {"code": "h", "store_history": False}, {},
     ("h", False, False, {}, True), {"cell_id": None}),
    ("execute_request", {"code": "u", "user_expressions": None}, {},
     ("u", False, True, {}, True), {"cell_id": None}),
    # complete: a missing (or null) cursor_pos is the end of the code; the ends are valid
    ("complete_request", {"code": "abc"}, {}, ("abc", 3), {}),
    ("complete_request", {"code": "abc", "cursor_pos": None}, {}, ("abc", 3), {}),
    ("complete_request", {"code": "abc", "cursor_pos": 0}, {}, ("abc", 0), {}),
    ("complete_request", {"code": "abc", "cursor_pos": 3}, {}, ("abc", 3), {}),
    ("complete_request", {"code": "", "cursor_pos": 0}, {}, ("", 0), {}),
    # cursor_pos counts characters (code points), as the spec says since 5.2
    ("complete_request", {"code": "\U0001f600ab", "cursor_pos": 3}, {},
     ("\U0001f600ab", 3), {}),
    # inspect, as JupyterLab's inspector and tooltip send it
    ("inspect_request", {"code": "abc", "cursor_pos": 2, "detail_level": 1}, {},
     ("abc", 2, 1), {"omit_sections": ()}),
    ("inspect_request", {"code": "abc", "cursor_pos": 2, "detail_level": 0}, {},
     ("abc", 2, 0), {"omit_sections": ()}),
    ("inspect_request", {"code": "abc"}, {}, ("abc", 3, 0), {"omit_sections": ()}),
    ("inspect_request", {"code": "abc", "omit_sections": ["doc"]}, {}, ("abc", 3, 0),
     {"omit_sections": ["doc"]}),
    ("is_complete_request", {"code": "for x in y:"}, {}, ("for x in y:",), {}),
    # history: JupyterLab's console ("tail", n) and jupyter_client's default ("range")
    ("history_request", {"output": False, "raw": True, "hist_access_type": "tail", "n": 500},
     {}, ("tail", False, True, 0, 0, None, 500, None, False), {}),
    ("history_request", {"raw": True, "output": False, "hist_access_type": "range",
                         "session": 0, "start": 0}, {},
     ("range", False, True, 0, 0, None, None, None, False), {}),
    ("history_request", {"hist_access_type": "search", "pattern": "a*", "unique": True,
                         "n": 3, "session": -1, "stop": 9}, {},
     ("search", False, True, -1, 0, 9, 3, "a*", True), {}),
    ("history_request", {}, {}, ("tail", False, True, 0, 0, None, None, None, False), {}),
    ("shutdown_request", {"restart": True}, {}, (True,), {}),
    ("shutdown_request", {}, {}, (False,), {}),
]


@pytest.mark.parametrize(
    ("msg_type", "content", "metadata", "args", "kwargs"),
    VALID,
    ids=[f"{t.removesuffix('_request')}-{i}" for i, (t, *_) in enumerate(VALID)],
)
def test_what_clients_send_reaches_the_hook(
    msg_type: str, content: dict[str, Any], metadata: dict[str, Any],
    args: tuple[Any, ...], kwargs: dict[str, Any],
) -> None:
    kernel, _, _, reply = send(msg_type, content, metadata,
                               channel="control" if msg_type == "shutdown_request" else "shell")
    assert reply["status"] in ("ok", "complete"), reply
    hook = "do_" + msg_type.removesuffix("_request")
    assert kernel.calls == [(hook, args, kwargs)]
    if msg_type == "execute_request":
        stored = args[2]
        assert kernel.execution_count == (1 if stored else 0)


@pytest.mark.parametrize("content", [{}, {"target_name": "jupyter.widget"},
                                     {"target_name": None}])
def test_comm_info_with_or_without_a_target(content: dict[str, Any]) -> None:
    _, _, _, reply = send("comm_info_request", content)
    assert reply == {"status": "ok", "comms": {}}


@pytest.mark.parametrize("msg_type", ["kernel_info_request", "interrupt_request"])
def test_requests_without_fields_ignore_their_content(msg_type: str) -> None:
    # The spec gives kernel_info and interrupt no fields: whatever is there is not read.
    _, _, _, reply = send(msg_type, {"anything": [1, {"x": None}]},
                          channel="control" if msg_type == "interrupt_request" else "shell")
    assert reply["status"] == "ok"


def test_describe_names_json_types() -> None:
    assert describe(None) == "null"
    assert describe(False) == "the boolean false"
    assert describe(-5) == "the integer -5"
    assert describe(10**400) == "an integer of 401 digits"
    assert describe("x" * 100) == "the string '" + "x" * 40 + "...'"
    assert describe({}) == "an object" and describe([]) == "an array"


# -- signature schemes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "fragments"),
    [
        ("hmac-shake_128", ["'hmac-shake_128'", "extendable-output", "no fixed digest size"]),
        ("hmac-shake_256", ["'hmac-shake_256'", "extendable-output"]),
        ("hmac-nosuchhash", ["there is no hash named 'nosuchhash'"]),
        ("hmac-", ["there is no hash named ''"]),
        ("sha256", ["must be 'hmac-<hash>'"]),
    ],
)
def test_unusable_signature_schemes_say_why(scheme: str, fragments: list[str]) -> None:
    for key in (b"secret", b""):  # refused even unsigned: no client could sign with it
        with pytest.raises(ValueError) as info:
            Signer(key, scheme)
        text = str(info.value)
        for fragment in fragments:
            assert fragment in text, text
        assert "no reason supplied" not in text
        assert "supported: hmac-sha256 (Jupyter's default)" in text
        assert "hmac-sha512" in text and "shake" not in text.split("supported:")[1]


@pytest.mark.parametrize("scheme", ["hmac-sha256", "hmac-sha1", "hmac-sha512", "hmac-md5",
                                    "hmac-sha3_256", "hmac-blake2b"])
def test_usable_schemes_sign_as_jupyter_client_does(scheme: str) -> None:
    from jupyter_client.session import Session as ClientSession

    theirs = ClientSession(key=b"k", signature_scheme=scheme)
    ours = Session(b"k", scheme)
    msg = theirs.msg("kernel_info_request", {})
    frames = theirs.serialize(msg)
    assert ours.deserialize(frames).msg_type == "kernel_info_request"


# -- a real kernel, a real client -------------------------------------------------------------


@contextmanager
def real_kernel(tmp_path: Path, key: bytes = b"validation-key") -> Iterator[
        tuple[BlockingKernelClient, subprocess.Popen[bytes], Path]]:
    fname, _ = write_connection_file(str(tmp_path / "conn.json"), ip="127.0.0.1", key=key)
    stderr = tmp_path / "kernel-stderr.txt"
    with open(stderr, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kernelkit", "run", "kk_testkernels:PythonKernel", "-f", fname],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
        )
    kc = BlockingKernelClient()
    kc.load_connection_file(fname)
    kc.start_channels(hb=False)
    try:
        kc.wait_for_ready(timeout=30)
        yield kc, proc, stderr
    finally:
        kc.stop_channels()
        proc.kill()
        proc.wait(10)


def raw(kc: BlockingKernelClient, msg_type: str, content: dict[str, Any],
        channel: str = "shell") -> dict[str, Any]:
    """Send content as it is (jupyter_client's helpers would fix some of it) and get the reply."""
    msg = kc.session.msg(msg_type, content)
    getattr(kc, f"{channel}_channel").send(msg)
    return answer(kc, msg["header"]["msg_id"], channel)


def answer(kc: BlockingKernelClient, msg_id: str, channel: str = "shell") -> dict[str, Any]:
    while True:
        reply: dict[str, Any] = getattr(kc, f"get_{channel}_msg")(timeout=20)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]  # type: ignore[no-any-return]


def test_jupyter_client_requests_work_and_wrong_ones_are_refused(tmp_path: Path) -> None:
    with real_kernel(tmp_path) as (kc, proc, _):
        # jupyter_client's own helpers, with their defaults, all work.
        ok = kc.execute("x = 1", reply=True, timeout=20)["content"]
        assert ok["status"] == "ok" and ok["execution_count"] == 1
        assert kc.complete("x", reply=True, timeout=20)["content"]["status"] == "ok"
        assert kc.inspect("x", reply=True, timeout=20)["content"]["status"] == "ok"
        assert kc.inspect("x", 1, 1, reply=True, timeout=20)["content"]["status"] == "ok"
        assert answer(kc, kc.is_complete("x"))["status"] == "unknown"
        assert kc.history(reply=True, timeout=20)["content"]["status"] == "ok"
        assert kc.history(hist_access_type="tail", n=10, reply=True,
                          timeout=20)["content"]["status"] == "ok"
        assert kc.comm_info(reply=True, timeout=20)["content"]["status"] == "ok"
        assert kc.comm_info("jupyter.widget", reply=True, timeout=20)["content"]["status"] == "ok"
        silent = kc.execute("x = 2", silent=True, reply=True, timeout=20)["content"]
        assert silent["status"] == "ok" and silent["execution_count"] == 1

        # Wrong types, sent as they are: refused, and the code does not run.
        refused = raw(kc, "execute_request", {"code": "x = 99", "silent": "false"})
        assert refused["status"] == "error" and refused["ename"] == "TypeError"
        assert "'silent'" in refused["evalue"] and refused["execution_count"] == 1
        for content in ({"code": "x", "cursor_pos": -5}, {"code": "x", "cursor_pos": 10**400}):
            reply = raw(kc, "complete_request", content)
            assert (reply["status"], reply["ename"]) == ("error", "ValueError")
            assert "'cursor_pos' must be between 0 and 1" in reply["evalue"]
        reply = raw(kc, "inspect_request", {"code": "x", "cursor_pos": 0, "detail_level": 7})
        assert reply["ename"] == "ValueError" and "'detail_level'" in reply["evalue"]
        reply = raw(kc, "shutdown_request", {"restart": "no"}, channel="control")
        assert reply["ename"] == "TypeError" and proc.poll() is None

        # x is still 2 (the refused cell did not run) and the count moved by one.
        check = kc.execute("assert x == 2, x", reply=True, timeout=20)["content"]
        assert check["status"] == "ok", check
        assert check["execution_count"] == 2


def test_empty_key_warns_and_still_starts(tmp_path: Path) -> None:
    with real_kernel(tmp_path, key=b"") as (kc, _, stderr):
        assert kc.execute("y = 1", reply=True, timeout=20)["content"]["status"] == "ok"
        text = stderr.read_text()
    assert "kernelkit: warning:" in text and "empty key" in text
    assert "not signed" in text and "any local process" in text


def test_signed_kernel_does_not_warn(tmp_path: Path) -> None:
    with real_kernel(tmp_path) as (kc, _, stderr):
        assert kc.execute("y = 1", reply=True, timeout=20)["content"]["status"] == "ok"
    assert "empty key" not in stderr.read_text()


def test_unusable_signature_scheme_stops_the_start_with_the_reason(tmp_path: Path) -> None:
    fname, _ = write_connection_file(str(tmp_path / "conn.json"), ip="127.0.0.1", key=b"k",
                                     signature_scheme="hmac-shake_128")
    done = subprocess.run([sys.executable, "-m", "kernelkit", "run", "echo", "-f", fname],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("kernelkit: error:")
    assert "'hmac-shake_128'" in done.stderr and "extendable-output" in done.stderr
    assert "supported: hmac-sha256" in done.stderr
    assert "no reason supplied" not in done.stderr and "Traceback" not in done.stderr
