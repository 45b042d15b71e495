"""The stdio JSON-RPC bridge: backends in Deno, Node.js and Python, and backends that misbehave.

(Why ~610 lines: one kernelspec fixture set serves every backend language here; the
hardening cases are test_bridge_hardening.py, subshells and comms have files of their own.)
"""

from __future__ import annotations

import gc
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.connect import write_connection_file

from conftest import DENO, ROOT, SUPPORT, kernelkit
from conftest import UnservedBridge as _Unserved
from kernelkit.bridge.jsonrpc import Codec, Malformed, Notification, Request, Response, Text
from kernelkit.bridge.process import BackendProcess, Exited, Line, Stderr

ECHO_INFO = {
    "implementation": "Echo",
    "implementation_version": "1.0",
    "banner": "Echo kernel - as useful as a parrot",
    "language_info": {"name": "Any text", "mimetype": "text/plain", "file_extension": ".txt",
                      "version": "0.1"},
}


# -- the codec, sans-IO ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"jsonrpc":"2.0","id":1,"result":{"a":1}}\n', Response(1, {"a": 1})),
        (b'{"jsonrpc":"2.0","method":"stream","params":{"x":1}}', Notification("stream", {"x": 1})),
        (b'{"jsonrpc":"2.0","id":"b1","method":"input","params":{}}', Request("b1", "input", {})),
        (b"hello world\n", Text("hello world")),
        (b'{"not": "rpc"}', Text('{"not": "rpc"}')),
        (b"{oops", Text("{oops")),
    ],
)
def test_codec_parses_lines(line: bytes, expected: object) -> None:
    assert Codec.parse(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        b'{"jsonrpc":"2.0","method":"stream","params":{',
        b'{"jsonrpc":"2.0","method":3}',
        b'{"jsonrpc":"2.0","method":"m","params":[1]}',
        b'{"jsonrpc":"2.0","id":true,"method":"m"}',
        b'{"jsonrpc":"2.0","id":1}',
        b'{"jsonrpc":"2.0","id":1,"error":"bad"}',
    ],
)
def test_codec_reports_malformed_messages(line: bytes) -> None:
    assert isinstance(Codec.parse(line), Malformed)


def test_codec_requests_are_numbered_lines() -> None:
    codec = Codec()
    rid1, line1 = codec.request("execute", {"code": "é"})
    rid2, _ = codec.request("execute", {})
    assert rid2 == rid1 + 1
    assert line1.endswith(b"\n") and line1.count(b"\n") == 1
    assert json.loads(line1) == {"jsonrpc": "2.0", "id": rid1, "method": "execute",
                                 "params": {"code": "é"}}


# -- echo backends in three languages ----------------------------------------------------------


@pytest.mark.parametrize("spec", ["kk-deno-echo", "kk-node-echo", "kk-python-echo"])
def test_echo_backends_match_the_python_echo_kernel(start_kernel: Any, spec: str) -> None:
    k = start_kernel(spec)
    msg_id = k.request("kernel_info_request")
    info = k.reply(msg_id)["content"]
    for key, value in ECHO_INFO.items():
        assert info[key] == value
    reply, msgs = k.execute("squawk")
    assert reply["content"]["status"] == "ok"
    assert reply["content"]["execution_count"] == 1
    assert [m["msg_type"] for m in msgs] == ["status", "execute_input", "stream", "status"]
    assert msgs[2]["content"] == {"name": "stdout", "text": "squawk"}
    silent, msgs = k.execute("hush", silent=True)
    assert silent["content"]["status"] == "ok"
    assert "stream" not in [m["msg_type"] for m in msgs]
    assert k.execute("again")[0]["content"]["execution_count"] == 2


@pytest.mark.parametrize("spec", ["kk-deno-echo", "kk-node-echo", "kk-python-echo"])
def test_echo_backends_take_large_code_intact(start_kernel: Any, spec: str) -> None:
    # About 5 MB of code with newlines: the request line reaches the backend in many
    # chunks, and the lines split across them must join up exactly.
    k = start_kernel(spec)
    code = "".join(f"line {i} é ✓\n" for i in range(300_000))
    assert k.stdout(code, timeout=120) == code
    assert k.stdout("small after big") == "small after big"


def test_deno_echo_restart_and_shutdown(start_kernel: Any) -> None:
    k = start_kernel("kk-deno-echo")
    k.km.restart_kernel(now=False)
    k.kc.wait_for_ready(timeout=30)
    assert k.stdout("after restart") == "after restart"
    k.km.shutdown_kernel(now=False)
    assert not k.km.is_alive()


@pytest.mark.parametrize("spec", ["kk-deno-echo", "kk-deno-echo-message"])
def test_deno_echo_is_interrupted_in_both_kernelspec_modes(start_kernel: Any, spec: str) -> None:
    """echo.ts reads its stdin synchronously (serve({ syncStdin: true })), so its interrupts
    come as messages on stdin (interrupt_mode "message" in its initialize), whichever way
    Jupyter interrupts the kernel: while it is idle, and while a big request is in flight."""
    import psutil

    k = start_kernel(spec)
    assert k.stdout("before") == "before"
    host = psutil.Process(k.km.provisioner.process.pid)

    def backends() -> list[int]:  # (the host's other child is the keeper, an sh)
        return [p.pid for p in host.children() if "deno" in p.name()]

    (backend,) = backends()
    k.km.interrupt_kernel()  # idle: nothing to end, nothing left over for the next request
    assert k.stdout("after an idle interrupt") == "after an idle interrupt"
    code = "x" * 20_000_000  # big enough to be in flight (host or backend) for a while
    msg_id = k.kc.execute(code)
    k.km.interrupt_kernel()
    reply = k.reply(msg_id, timeout=60)["content"]
    if reply["status"] == "error":  # the interrupt reached the request while it ran
        assert reply["ename"] == "KeyboardInterrupt", reply
        assert "restarted" not in reply["evalue"], reply  # answered, not killed
    k.iopub_until_idle(msg_id, timeout=60)
    for i in range(3):  # no interrupt left over to hit the next requests
        assert k.stdout(f"after {i}") == f"after {i}"
    assert backends() == [backend]  # the same backend: never killed nor restarted


def test_a_sync_stdin_backend_request_is_interrupted_through_the_host(start_kernel: Any) -> None:
    """A request of a syncStdin backend that waits (here for the interrupt itself) is ended by
    the host's interrupt message: the backend answers it (no kill after the grace)."""
    k = start_kernel("kk-deno-sync")
    assert k.stdout("hello") == "hello"
    msg_id = k.kc.execute("wait started")
    k.wait_started(msg_id)
    k.km.interrupt_kernel()
    reply = k.reply(msg_id, timeout=20)["content"]
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", reply
    assert "restarted" not in reply["evalue"], reply
    assert k.stdout("after") == "after"


@pytest.mark.parametrize(("runtime", "mode", "message"), [
    ("deno", "signal", 'needs info.interrupt_mode "message", not "signal"'),
    ("deno", None, 'needs info.interrupt_mode "message", not "signal"'),
    ("node", "message", "works on Deno only"),
])
def test_sync_stdin_is_refused_where_interrupts_would_break(
        tmp_path: Path, runtime: str, mode: str | None, message: str) -> None:
    from conftest import NODE

    sdk = (ROOT / "src/kernelkit/sdk/js/kernelkit.js").as_uri()
    info = {"implementation": "t", "language_info": {"name": "t"}}
    if mode is not None:
        info["interrupt_mode"] = mode
    script = tmp_path / "backend.mjs"
    script.write_text(f"import {{ serve }} from {json.dumps(sdk)};\n"
                      f"serve({{ syncStdin: true, info: {json.dumps(info)}, execute() {{}} }});\n")
    cmd = [DENO, "run", str(script)] if runtime == "deno" else [NODE, str(script)]
    done = subprocess.run(cmd, input="", capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def test_sync_stdin_runs_nothing_between_requests() -> None:
    """What syncStdin trades: a timer a request set waits, while the backend blocks in a read
    of stdin and while requests are answered without waiting, until a request waits for I/O
    (here input); without syncStdin it fires at once."""
    import queue

    from test_sdk_conformance import SDKS, Backend, execute_params

    for sdk, blocked in (("deno-sync", True), ("deno", False)):
        b = Backend(SDKS[sdk], subshells=False)
        try:
            b.initialize()
            rid = b.request("execute", execute_params("later"))
            reply, _ = b.until_response(rid)
            assert reply["result"]["status"] == "ok"
            if not blocked:
                late = b.read()
                assert late["params"] == {"name": "stdout", "text": "late", "request": rid}
                continue
            with pytest.raises(queue.Empty):
                b.lines.get(timeout=0.5)
            reply, notes = b.call("execute", execute_params("next"))
            assert [n["params"]["text"] for n in notes] == ["next"], notes
            rid3 = b.request("execute", execute_params("input Q"))
            seen = [b.read(), b.read()]  # the input request, and the timer's output
            (ask,) = [m for m in seen if m["method"] == "input"]
            (late,) = [m for m in seen if m["method"] == "stream"]
            assert late["params"] == {"name": "stdout", "text": "late", "request": rid}
            b.send({"jsonrpc": "2.0", "id": ask["id"], "result": {"value": "A"}})
            reply, notes = b.until_response(rid3)
            assert [n["params"]["text"] for n in notes] == ["got:A"], notes
        finally:
            b.proc.kill()
            b.proc.wait()


# -- a real language: JavaScript on Deno ---------------------------------------------------


def test_javascript_kernel(start_kernel: Any) -> None:
    k = start_kernel("kk-deno-js")
    reply, msgs = k.execute("var answer = 40; answer + 2")
    results = [m["content"] for m in msgs if m["msg_type"] == "execute_result"]
    assert results == [{"data": {"text/plain": "42"}, "metadata": {}, "execution_count": 1}]
    assert k.stdout("console.log('hi', answer)") == "hi 40\n"
    reply, msgs = k.execute("function boom() { throw new TypeError('bad') }\nboom()")
    content = reply["content"]
    assert content["status"] == "error" and content["ename"] == "TypeError"
    assert content["evalue"] == "bad"
    assert any("boom" in line for line in content["traceback"])
    assert [m["content"]["ename"] for m in msgs if m["msg_type"] == "error"] == ["TypeError"]
    msg_id = k.request("complete_request", {"code": "x = answ", "cursor_pos": 8})
    complete = k.reply(msg_id)["content"]
    assert complete["matches"] == ["answer"] and complete["cursor_start"] == 4
    msg_id = k.request("is_complete_request", {"code": "function f() {"})
    assert k.reply(msg_id)["content"]["status"] == "incomplete"
    reply, _ = k.execute("var total = answer * 2",
                         user_expressions={"t": "total + 1", "bad": "nope.nope"})
    exprs = reply["content"]["user_expressions"]
    assert exprs["t"] == {"status": "ok", "data": {"text/plain": "81"}, "metadata": {}}
    assert exprs["bad"]["status"] == "error" and exprs["bad"]["ename"] == "ReferenceError"


def test_javascript_input_through_stdin(start_kernel: Any) -> None:
    k = start_kernel("kk-deno-js")
    msg_id = k.kc.execute("input('Name? ')", allow_stdin=True)
    request = k.kc.stdin_channel.get_msg(timeout=20)
    assert request["content"]["prompt"] == "Name? "
    k.kc.input("Polly")
    assert k.reply(msg_id)["content"]["status"] == "ok"
    results = [m["content"]["data"]["text/plain"] for m in k.iopub_until_idle(msg_id)
               if m["msg_type"] == "execute_result"]
    assert results == ['"Polly"']
    reply, _ = k.execute("input('x')", allow_stdin=False)
    assert reply["content"]["status"] == "error"
    assert "StdinNotImplementedError" in reply["content"]["evalue"] + reply["content"]["ename"]


def test_javascript_infinite_loop_is_interrupted(start_kernel: Any) -> None:
    k = start_kernel("kk-deno-js")
    k.execute("var kept = 1")
    msg_id = k.kc.execute("console.log('started'); while (true) {}")
    k.wait_started(msg_id)
    k.km.interrupt_kernel()
    reply = k.reply(msg_id, timeout=20)["content"]
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    assert "restarted" in reply["evalue"]
    reply, msgs = k.execute("typeof kept")  # a fresh backend: the old state is gone
    assert [m["content"]["data"]["text/plain"] for m in msgs
            if m["msg_type"] == "execute_result"] == ['"undefined"']


def test_javascript_async_work_is_interrupted_by_signal(start_kernel: Any) -> None:
    k = start_kernel("kk-deno-js")
    msg_id = k.kc.execute("console.log('started'); new Promise(r => setTimeout(r, 60000))")
    k.wait_started(msg_id)
    k.km.interrupt_kernel()
    reply = k.reply(msg_id, timeout=20)["content"]
    assert reply["ename"] == "KeyboardInterrupt"
    assert "restarted" not in reply["evalue"]  # the backend ended the request itself
    reply, _msgs = k.execute("1 + 1")
    assert reply["content"]["status"] == "ok"


def test_an_interrupted_execute_is_answered_once(capfd: Any, start_kernel: Any) -> None:
    """The JS SDK answers an interrupted execute at once; when the execute's own code ends
    later it must not send a second answer (it did: the host logged it)."""
    k = start_kernel("kk-deno-js")  # started here, so that capfd has its stderr
    msg_id = k.kc.execute("console.log('started'); new Promise(r => setTimeout(r, 1000))")
    k.wait_started(msg_id)
    k.km.interrupt_kernel()
    assert k.reply(msg_id, timeout=20)["content"]["ename"] == "KeyboardInterrupt"
    time.sleep(1.5)  # the cell's promise resolves meanwhile
    assert k.execute("1 + 1")[0]["content"]["status"] == "ok"
    err = capfd.readouterr().err
    assert not re.search(r'between requests.*"id":\d+,"result"', err), "a second answer"
    assert "unknown request id" not in err


# -- faults -------------------------------------------------------------------------------


def _bridge(
    *command: str, timeout: float = 30, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    cf, _ = write_connection_file()
    try:
        return kernelkit("bridge", "-f", cf, *extra, "--", *command, timeout=timeout)
    finally:
        Path(cf).unlink(missing_ok=True)


def test_missing_backend_command_fails_loudly() -> None:
    done = _bridge("/nonexistent/backend")
    assert done.returncode == 1
    assert "cannot run backend '/nonexistent/backend'" in done.stderr


def test_backend_that_exits_at_once_fails_loudly() -> None:
    done = _bridge(sys.executable, str(SUPPORT / "fault_backend.py"), "exit-now")
    assert done.returncode == 1
    assert "exited with code 3 before answering 'initialize'" in done.stderr
    assert "cannot find my configuration" in done.stderr


def test_backend_that_never_answers_initialize_fails_in_bounded_time() -> None:
    t0 = time.monotonic()
    done = _bridge(sys.executable, str(SUPPORT / "fault_backend.py"), "silent",
                   extra=("--init-timeout", "1"))
    assert done.returncode == 1
    assert "did not answer 'initialize' within 1 s" in done.stderr
    assert time.monotonic() - t0 < 20


def test_backend_that_refuses_initialize_fails_loudly() -> None:
    done = _bridge(sys.executable, str(SUPPORT / "fault_backend.py"), "refuse")
    assert done.returncode == 1
    assert "refused 'initialize': not today" in done.stderr


def test_a_host_that_cannot_start_leaves_no_backend_behind(tmp_path: Path) -> None:
    # `kernelkit bridge -f FILE -- CMD` starts the backend before it reads FILE (the two
    # start up side by side); a host that then fails must not leave that backend running.
    marker = f"kk-early-{os.getpid()}-{time.monotonic_ns()}"
    bad = tmp_path / "connection.json"
    bad.write_text("{not json")
    done = kernelkit("bridge", "-f", str(bad), "--", sys.executable,
                     str(SUPPORT / "fault_backend.py"), "ok", marker)
    assert done.returncode == 1
    assert "connection file" in done.stderr
    deadline = time.monotonic() + 5
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _processes_with(marker)


def _processes_with(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(pid))
    return found


def test_bridge_without_command_is_a_usage_error() -> None:
    done = kernelkit("bridge")
    assert done.returncode == 2 and "needs a backend command" in done.stderr


@pytest.mark.parametrize(("code", "how"), [("die", "exited with code 7"),
                                           ("kill", "was killed by SIGKILL")])
def test_backend_death_is_an_error_reply_and_the_next_request_restarts_it(
    start_kernel: Any, code: str, how: str
) -> None:
    k = start_kernel("kk-faulty")
    reply, msgs = k.execute(code)
    content = reply["content"]
    assert content["status"] == "error" and content["ename"] == "BackendDied"
    assert how in content["evalue"]
    if code == "die":
        assert "fatal: the backend fell over" in content["traceback"]
    assert [m["msg_type"] for m in msgs if m["msg_type"] == "error"] == ["error"]
    assert k.stdout("hello again") == "hello again"


# -- reading a backend's output on the request thread ------------------------------------


def _backend(script: str) -> BackendProcess:
    return BackendProcess([sys.executable, "-c", script])


def test_backend_lines_split_across_reads_and_a_last_line_without_newline() -> None:
    big = "x" * 200_000  # several reads of READ_SIZE
    backend = _backend(
        "import sys, time\n"
        "w = sys.stdout.write\n"
        "w('one\\ntw'); sys.stdout.flush(); time.sleep(0.05)\n"
        f"w('o\\n' + 'x' * {len(big)} + '\\nlast'); sys.stdout.flush()\n"
    )
    try:
        events = []
        while not events or not isinstance(events[-1], Exited):
            event = backend.next_event(10)
            assert event is not None, f"no event within 10 s after {events}"
            events.append(event)
        assert events == [Line(b"one\n"), Line(b"two\n"), Line(f"{big}\n".encode()),
                          Line(b"last"), Exited()]
    finally:
        backend.stop(1)


def test_backend_stderr_wakes_a_waiting_reader_and_timeouts_return_none() -> None:
    backend = _backend(
        "import sys, time\n"
        "sys.stdin.readline(); sys.stderr.write('warn\\n'); sys.stderr.flush()\n"
        "time.sleep(30)\n"
    )
    try:
        # A new backend is busy: its creator reads stderr along with stdout (until end()).
        started = time.monotonic()
        assert backend.next_event(0.2) is None
        assert time.monotonic() - started >= 0.19
        assert backend.send(b"go\n")
        assert backend.next_event(10) == Stderr("warn\n")
    finally:
        backend.stop(1)


def _pipes() -> int:
    """This process's open pipe ends (a backend has three, and a wake-up pipe)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:")
        except OSError:  # closed meanwhile, or the listing's own descriptor
            continue
    return count


def test_backend_deaths_leak_no_file_descriptors() -> None:
    kernel = _Unserved([sys.executable, str(SUPPORT / "fault_backend.py")])
    params = {"code": "fine", "silent": True, "store_history": False, "user_expressions": {},
              "allow_stdin": False}
    assert kernel._request("execute", params)["status"] == "ok"
    gc.collect()  # earlier tests' leftovers must not close fds while this one counts
    before = _pipes()
    try:
        for _ in range(5):
            # Dies during a request: the error reply, then a fresh backend.
            assert kernel._request("execute", {**params, "code": "die"})["ename"] == "BackendDied"
            assert kernel._request("execute", params)["status"] == "ok"
            # Dies between requests: restarted before the next one, which just works.
            assert kernel.backend is not None
            os.kill(kernel.backend.pid, signal.SIGKILL)
            kernel.backend.proc.wait()
            assert kernel._request("execute", params)["status"] == "ok"
        gc.collect()
        assert _pipes() == before
    finally:
        kernel.do_shutdown(False)


@pytest.mark.parametrize("spec", ["kk-faulty", "kk-faulty-message"])
def test_hanging_backend_is_ended_by_an_interrupt(start_kernel: Any, spec: str) -> None:
    k = start_kernel(spec)
    msg_id = k.kc.execute("hang")
    k.wait_started(msg_id)
    k.km.interrupt_kernel()
    reply = k.reply(msg_id, timeout=20)["content"]
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    assert k.stdout("fresh") == "fresh"


def test_malformed_backend_output_never_kills_the_kernel(start_kernel: Any) -> None:
    k = start_kernel("kk-faulty")
    reply, msgs = k.execute("garbage")
    assert reply["content"]["status"] == "ok"
    texts = [m["content"]["text"] for m in msgs if m["msg_type"] == "stream"]
    assert "survived" in texts
    reply, _ = k.execute("wrong-result")
    assert reply["content"]["status"] == "error"
    assert "not an object" in reply["content"]["evalue"]
    assert k.stdout("still here") == "still here"


def test_stray_output_and_stderr_become_streams(start_kernel: Any) -> None:
    k = start_kernel("kk-faulty")
    _reply, msgs = k.execute("stray")
    # Stderr goes on in chunks as it comes (bridge/process.py): print()'s text and its
    # newline are two writes and may arrive as two stream messages, which a notebook joins.
    text = {"stdout": "", "stderr": ""}
    for m in msgs:
        if m["msg_type"] == "stream":
            text[m["content"]["name"]] += m["content"]["text"]
    assert "a stray print\n" in text["stdout"]
    assert "a warning on stderr\n" in text["stderr"]


def test_ten_megabytes_of_output_pass_intact(start_kernel: Any) -> None:
    k = start_kernel("kk-faulty")
    n = 10 * 1024 * 1024
    text = k.stdout(f"big {n}", timeout=120)
    block = "0123456789abcdef" * 64 + "\n"
    assert len(text) == n
    assert text == (block * (n // len(block) + 1))[:n]


def test_backend_input_request_and_refusal(start_kernel: Any) -> None:
    k = start_kernel("kk-faulty")
    msg_id = k.kc.execute("echo-input", allow_stdin=True)
    assert k.kc.stdin_channel.get_msg(timeout=10)["content"]["prompt"] == "? "
    k.kc.input("an answer")
    k.reply(msg_id)
    texts = [m["content"]["text"] for m in k.iopub_until_idle(msg_id) if m["msg_type"] == "stream"]
    assert json.loads(texts[0]) == {"value": "an answer"}
    _reply, msgs = k.execute("echo-input", allow_stdin=False)
    error = json.loads(next(m["content"]["text"] for m in msgs if m["msg_type"] == "stream"))
    assert "StdinNotImplementedError" in error["message"]


# -- installing bridge kernels ---------------------------------------------------------------


def test_install_bridge_kernelspec(tmp_path: Path) -> None:
    done = kernelkit("install", "--name", "my-deno-echo", "--prefix", str(tmp_path), "--",
                     DENO, "run", "examples/deno/echo.ts", cwd=ROOT)
    assert done.returncode == 0, done.stderr
    spec = json.loads((tmp_path / "share/jupyter/kernels/my-deno-echo/kernel.json").read_text())
    assert spec["argv"][:4] == [sys.executable, "-m", "kernelkit", "bridge"]
    assert spec["argv"][-1] == str(ROOT / "examples/deno/echo.ts")  # made absolute
    assert spec["display_name"] == "Echo" and spec["language"] == "Any text"


def test_install_bridge_needs_a_name_and_a_working_backend(tmp_path: Path) -> None:
    done = kernelkit("install", "--prefix", str(tmp_path), "--", DENO, "run", "x.ts")
    assert done.returncode == 2 and "--name" in done.stderr
    done = kernelkit("install", "--name", "nope", "--prefix", str(tmp_path), "--",
                     sys.executable, str(SUPPORT / "fault_backend.py"), "exit-now")
    assert done.returncode == 1 and "no kernelspec was written" in done.stderr
    assert not (tmp_path / "share/jupyter/kernels/nope").exists()
    done = kernelkit("install", "--name", "nope", "--prefix", str(tmp_path), "--", "no-such-cmd")
    assert done.returncode == 2 and "not found" in done.stderr


def test_the_execute_is_with_the_backend_before_busy_goes_out() -> None:
    """The host hands an execute to the backend first and publishes busy and execute_input
    while the backend works (dispatch.py, _start_execute): when busy is sent, the backend's
    answer comes without anything more written to it. Order on IOPub is unchanged."""
    import select

    from kernelkit.bridge.kernel import BridgeKernel
    from kernelkit.testing import attach, request

    kernel = BridgeKernel([DENO, "run", str(ROOT / "examples/deno/echo.ts")])
    transport, dispatcher = attach(kernel)
    answered_early: list[bool] = []

    def at_execute_input(sent: Any) -> None:
        if sent.msg_type == "status" and sent.content["execution_state"] == "busy":
            assert kernel.backend is not None
            answered_early.append(bool(select.select([kernel.backend._out_fd], [], [], 20)[0]))

    try:
        with transport.sending_hook(at_execute_input):
            for code in ("squawk", "again"):
                msg = request("execute_request", {"code": code})
                dispatcher.handle("shell", msg)
                assert transport.reply_to(msg)["status"] == "ok"
                assert [s.msg_type for s in transport.iopub(msg)] == [
                    "status", "execute_input", "stream", "status"]
                assert transport.iopub(msg, "stream")[0].content["text"] == code
        assert answered_early == [True, True]
        # A backend that died between requests is started again in do_execute (where an
        # interrupt can cut a slow start short), not before execute_input.
        assert kernel.backend is not None
        os.kill(kernel.backend.pid, signal.SIGKILL)
        kernel.backend.proc.wait()
        msg = request("execute_request", {"code": "revived"})
        dispatcher.handle("shell", msg)
        assert transport.reply_to(msg)["status"] == "ok"
        assert [s.msg_type for s in transport.iopub(msg)] == [
            "status", "execute_input", "stream", "status"]
        assert transport.iopub(msg, "stream")[0].content["text"] == "revived"
    finally:
        kernel.do_shutdown(False)


def test_sync_stdin_lets_the_code_after_serve_run_before_the_first_request(
        tmp_path: Path) -> None:
    """serve() returns before the first blocking read: the module's code after the call runs
    at once (here it prints a line), not only when the host's first request comes."""
    from test_sdk_conformance import TIMEOUT, Backend

    sdk = (ROOT / "src/kernelkit/sdk/js/kernelkit.js").as_uri()
    info = {"implementation": "t", "language_info": {"name": "t"}, "interrupt_mode": "message"}
    script = tmp_path / "backend.mjs"
    script.write_text(f"import {{ comms, serve }} from {json.dumps(sdk)};\n"
                      f"serve({{ syncStdin: true, info: {json.dumps(info)}, execute() {{}} }});\n"
                      "comms.registerTarget('after', () => {});\n"
                      "console.log('ran');\n")
    b = Backend([DENO, "run", str(script)], subshells=False)
    try:
        assert b.lines.get(timeout=TIMEOUT) == b"ran\n"  # before any request was written
        assert b.initialize()["result"]["comm_targets"] == ["after"]
    finally:
        b.proc.kill()
        b.proc.wait()
