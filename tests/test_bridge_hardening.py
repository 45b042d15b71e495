"""Bridge hardening (issue 11, items 9, 10, 11, 13): output in the right cell, no backend
outliving the host, bounded lines, and the doc and the host agreeing on input and initialize.

Kernels are started by jupyter_client from kernelspecs of their own (support/hardening_bridge.py),
with real backends on the Python SDK, the JavaScript SDK on Node.js and Deno, and the raw
protocol (support/fault_backend.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from hardening_bridge import (
    DENO_JS,
    FAULT,
    NODE_JS,
    PY,
    PY_SUBSHELLS,
    Bridge,
    alive,
    kill,
    streams,
    wait_gone,
)
from jupyter_client.connect import write_connection_file
from raw import peak_rss

from conftest import UnservedBridge as _Unserved
from conftest import kernelkit
from kernelkit.bridge.kernel import info_problems
from kernelkit.bridge.process import MAX_LINE, STDERR_LINE_MAX, BackendProcess, Line

BACKENDS = {"python-sdk": PY, "node": NODE_JS, "deno": DENO_JS, "raw": FAULT}


@pytest.fixture
def bridge() -> Iterator[Any]:
    started: list[Bridge] = []

    def start(backend: list[str], **kw: Any) -> Bridge:
        b = Bridge(backend, **kw)
        started.append(b)
        return b

    yield start
    for b in started:
        b.close()


# -- item 9: output in the right cell ---------------------------------------------------


@pytest.mark.parametrize("name", list(BACKENDS))
def test_stderr_written_before_the_reply_is_all_in_its_cell(bridge: Any, name: str) -> None:
    b = bridge(BACKENDS[name])
    code = "stderr-lines 4096" if name == "raw" else "stderr 4096"
    reply, msgs = b.execute(code)
    assert reply["status"] == "ok"
    assert streams(msgs, "stderr") == "".join(f"err {i}\n" for i in range(4096))
    _, after = b.execute("next")
    assert streams(after, "stderr") == ""  # nothing of it under the next cell
    assert "err 4095" not in b.log()  # and none of it only logged


LATE = {  # what each backend writes after its reply
    "python-sdk": ("late-notification", "late-stderr"),
    "node": ("late-notification", "late-stderr"),
    "deno": ("late-notification", "late-stderr"),
    "raw": ("late text line", "late notification", "late stderr"),
}


@pytest.mark.parametrize("name", list(BACKENDS))
def test_output_after_the_reply_is_logged_never_shown_under_the_next_cell(
    bridge: Any, name: str
) -> None:
    b = bridge(BACKENDS[name])
    reply, msgs = b.execute("after-reply" if name == "raw" else "late")
    assert reply["status"] == "ok"
    shown = streams(msgs, "stdout") + streams(msgs, "stderr")
    assert shown.strip() in ("in", "in-cell")
    assert b.wait_logged(*LATE[name]), b.log()
    _, after = b.execute("next")
    texts = streams(after, "stdout") + streams(after, "stderr")
    assert texts == "next"


def test_in_process_a_reply_waits_for_the_stderr_before_it() -> None:
    # The same rule without a client: every line is published before the reply returns.
    kernel = _Unserved([*FAULT])
    try:
        for n in (1, 100, 4096, 20_000):  # 20,000 lines do not fit in the pipe at once
            kernel.published.clear()
            assert kernel._request("execute", _params(f"stderr-lines {n}"))["status"] == "ok"
            text = "".join(c["text"] for t, c in kernel.published if c.get("name") == "stderr")
            assert text == "".join(f"err {i}\n" for i in range(n))
    finally:
        kernel.do_shutdown(False)


def test_with_subshells_stderr_before_a_reply_is_in_a_cell_and_late_output_is_not() -> None:
    kernel = _Unserved([*PY_SUBSHELLS])
    try:
        assert kernel._shared is not None  # protocol 1.1, several requests in flight
        assert kernel._request("execute", _params("stderr 4096"))["status"] == "ok"
        text = "".join(c["text"] for t, c in kernel.published if c.get("name") == "stderr")
        assert text == "".join(f"err {i}\n" for i in range(4096))
        kernel.published.clear()
        assert kernel._request("execute", _params("late"))["status"] == "ok"
        time.sleep(0.6)  # the backend writes its late output 0.3 s after the reply
        assert kernel._request("execute", _params("next"))["status"] == "ok"
        texts = [c["text"] for t, c in kernel.published if t == "stream"]
        assert texts == ["in-cell\n", "next"]
    finally:
        kernel.do_shutdown(False)


# -- item 10: no backend outlives the host ------------------------------------------------


HOST_DEATHS = ["sigkill", "group-kill", "sigterm", "sighup", "sigterm-idle", "clean-shutdown"]


@pytest.mark.parametrize("how", HOST_DEATHS)
def test_no_backend_or_child_of_it_outlives_the_host(bridge: Any, how: str) -> None:
    b = bridge(PY)
    _, msgs = b.execute("helper")
    helper = int(streams(msgs, "stdout"))
    if how not in ("sigterm-idle", "clean-shutdown"):
        b.wait_started(b.start("busy"))  # a backend at 100 % CPU
    family = [p.pid for p in b.family()]
    assert helper in family and len(family) == 3  # backend, its keeper, its helper
    host = b.host.pid
    if how == "sigkill":
        os.kill(host, signal.SIGKILL)
    elif how == "group-kill":
        b.km.shutdown_kernel(now=True)  # jupyter_client's forced shutdown: killpg SIGKILL
    elif how in ("sigterm", "sigterm-idle"):
        os.kill(host, signal.SIGTERM)
    elif how == "sighup":
        os.kill(host, signal.SIGHUP)
    else:
        b.km.shutdown_kernel(now=False)
    left, _ = wait_gone([host, *family])
    kill(left)
    assert left == [], f"still running after {how}: {left}"


def test_the_parent_death_signal_ends_the_backend_even_without_its_keeper(bridge: Any) -> None:
    b = bridge(PY)
    backend = b.backend()
    keeper = next(p for p in b.host.children() if p.name() == "sh")
    keeper.kill()
    b.wait_started(b.start("busy"))
    os.kill(b.host.pid, signal.SIGKILL)
    left, _ = wait_gone([backend.pid])
    kill(left)
    assert left == []


def test_a_child_holding_the_backends_stdout_does_not_hang_the_request(bridge: Any) -> None:
    b = bridge(PY)
    reply, msgs = b.execute("hold-and-die", timeout=20)  # did not hang: answered in time
    assert reply["status"] == "error" and reply["ename"] == "BackendDied"
    assert "exited with code 5" in reply["evalue"]
    assert "dying now" in reply["traceback"]
    child = int(streams(msgs, "stdout"))
    left, _ = wait_gone([child])  # killed with the backend's process group
    kill(left)
    assert left == []
    assert b.execute("again")[0]["status"] == "ok"


def test_a_backend_restarted_on_a_subshell_thread_outlives_that_subshell(bridge: Any) -> None:
    # PR_SET_PDEATHSIG fires when the *thread* that started the backend ends: a backend
    # restarted by a subshell's request must not die when that subshell is deleted.
    b = bridge(PY_SUBSHELLS)
    sub = b.control("create_subshell_request")["subshell_id"]
    old = b.backend().pid
    os.kill(old, signal.SIGKILL)
    assert wait_gone([old])[0] == []
    reply, msgs = b.execute("pid", subshell_id=sub)  # restarts it from the subshell's thread
    assert reply["status"] == "ok"
    pid = int(streams(msgs, "stdout"))
    assert b.control("delete_subshell_request", {"subshell_id": sub})["status"] == "ok"
    time.sleep(1.0)  # the subshell's thread ends
    assert alive([pid]) == [pid]
    reply, msgs = b.execute("pid")
    assert reply["status"] == "ok" and int(streams(msgs, "stdout")) == pid


def test_stop_kills_helpers_of_a_backend_that_left_by_itself() -> None:
    backend = BackendProcess([sys.executable, "-c",
                              "import subprocess, sys, time\n"
                              "p = subprocess.Popen([sys.executable, '-c', "
                              "'import time; time.sleep(300)'])\n"
                              "print(p.pid, flush=True)\n"])
    line = backend.next_event(20)
    helper = int(line.data)  # type: ignore[union-attr]
    backend.stop(5)  # it exits by itself at once; its helper must go with it
    left, _ = wait_gone([helper])
    kill(left)
    assert left == []


# -- item 11: bounded lines ---------------------------------------------------------------


def test_a_stdout_line_over_the_maximum_fails_the_request_and_restarts_the_backend(
    bridge: Any,
) -> None:
    cap = 1 << 20
    b = bridge(PY, env={"KERNELKIT_BRIDGE_MAX_LINE": str(cap)})
    reply, msgs = b.execute(f"bigline {cap - 1}")  # with its newline: exactly the maximum
    assert reply["status"] == "ok"
    assert streams(msgs, "stdout") == "x" * (cap - 1) + "\n"
    first = b.backend().pid
    reply, msgs = b.execute(f"bigline {cap}")
    assert reply["status"] == "error" and reply["ename"] == "BackendError"
    assert f"more than {cap:,} bytes" in reply["evalue"] and "restarted" in reply["evalue"]
    assert [m["content"]["ename"] for m in msgs if m["msg_type"] == "error"] == ["BackendError"]
    assert b.execute("again")[0]["status"] == "ok"
    assert b.backend().pid != first


def test_the_default_maximum_bounds_what_the_host_holds_for_a_line(bridge: Any) -> None:
    # 200 MB in one line against the real default (64 MiB): the host stops at the maximum.
    b = bridge(PY)
    (reply, _), base, peak = peak_rss(b.host, lambda: b.execute("bigline 200000000", 60))
    assert reply["status"] == "error" and f"more than {MAX_LINE:,} bytes" in reply["evalue"]
    assert peak - base < MAX_LINE + (48 << 20), f"host grew {(peak - base) >> 20} MiB"
    assert b.execute("again")[0]["status"] == "ok"


def test_stderr_the_host_keeps_is_bounded(bridge: Any) -> None:
    b = bridge(PY)
    # A 30 MB stderr line before dying: the report keeps its last lines, each cut short.
    reply, _ = b.execute("bigerr-die 30000000", 60)
    assert reply["ename"] == "BackendDied"
    kept = [line for line in reply["traceback"] if line.startswith("eee")]
    assert len(kept) == 1 and len(kept[0]) < STDERR_LINE_MAX + 60
    assert "more characters" in kept[0]


def test_stderr_between_requests_is_logged_in_bounded_memory() -> None:
    script = ("import sys, time\n"
              "sys.stdin.readline()\n"
              "for _ in range(100): sys.stderr.buffer.write(b'e' * (1 << 20))\n"
              "sys.stderr.buffer.write(b'\\nshort line\\n'); sys.stderr.flush()\n"
              "time.sleep(30)\n")
    backend = BackendProcess([sys.executable, "-c", script])
    try:
        backend.end()  # idle: the watcher reads and logs
        me = psutil.Process()

        def run() -> None:
            assert backend.send(b"go\n")
            deadline = time.monotonic() + 30
            while list(backend.stderr_tail)[-1:] != ["short line"]:
                assert time.monotonic() < deadline, "stderr was not read in 30 s"
                time.sleep(0.01)

        _, base, peak = peak_rss(me, run)
        assert peak - base < 16 << 20, f"grew {(peak - base) >> 20} MiB for 100 MiB of stderr"
        long_line = list(backend.stderr_tail)[-2]
        assert long_line.startswith("eee") and len(long_line) < STDERR_LINE_MAX + 60
    finally:
        backend.stop(0.5)


# -- item 13: input and initialize as the doc says -----------------------------------------


def test_an_interrupt_during_input_answers_keyboardinterrupt(bridge: Any) -> None:
    b = bridge(FAULT)
    msg_id = b.start("echo-input", allow_stdin=True)
    request = b.kc.get_stdin_msg(timeout=20)
    assert request["content"]["prompt"] == "? "
    b.km.interrupt_kernel()
    b.reply(msg_id)
    answer = json.loads(streams(b.until_idle(msg_id), "stdout"))
    assert answer["code"] == -32603 and answer["data"]["ename"] == "KeyboardInterrupt"


def test_an_interrupt_reaches_a_big_request_that_the_backend_does_not_read(bridge: Any) -> None:
    """The bridge hands an execute to its backend before execute_input goes out, where
    interrupts are ignored; a request bigger than the pipe would block that write for good
    while the backend does not read. A writer thread takes such a line, and stop reaches the
    request waiting for its answer: the backend, which does not end it, is replaced. An
    interrupt that lands before the request waits is ignored, so the test presses stop until
    the reply comes, as a user would."""
    b = bridge(FAULT)
    reply, _ = b.execute("deaf")
    assert reply["status"] == "ok"
    deaf = b.backend().pid
    msg_id = b.start("x" * (8 << 20))  # 8 MiB: more than a pipe holds
    content: dict[str, Any] | None = None
    for _ in range(40):
        b.km.interrupt_kernel()
        with contextlib.suppress(queue.Empty):
            content = b.reply(msg_id, timeout=0.5)
            break
    assert content is not None, "the request was never answered"
    assert content["status"] == "error" and content["ename"] == "KeyboardInterrupt", content
    assert alive([deaf]) == [] or wait_gone([deaf])[0] == []
    reply, msgs = b.execute("after")
    assert reply["status"] == "ok" and streams(msgs, "stdout") == "after"


def test_input_that_the_client_does_not_allow_answers_stdinnotimplementederror(
    bridge: Any,
) -> None:
    b = bridge(FAULT)
    _, msgs = b.execute("echo-input", allow_stdin=False)
    assert json.loads(streams(msgs, "stdout"))["data"]["ename"] == "StdinNotImplementedError"


def test_python_sdk_input_raises_what_a_python_author_expects(bridge: Any) -> None:
    b = bridge(PY)
    reply, _ = b.execute("input name?", allow_stdin=False)
    assert reply["status"] == "error" and reply["ename"] == "StdinNotImplementedError"
    msg_id = b.start("input name?", allow_stdin=True)
    b.kc.get_stdin_msg(timeout=20)
    b.km.interrupt_kernel()
    reply = b.reply(msg_id)
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    assert b.execute("still here")[0]["status"] == "ok"


def test_python_sdk_survives_a_sigint_that_lands_between_requests(bridge: Any) -> None:
    # An interrupt during input is answered and forwarded: the SIGINT may reach the
    # backend just after it replied. It must not end the backend.
    b = bridge(PY)
    pid = b.backend().pid
    os.kill(pid, signal.SIGINT)
    time.sleep(0.3)
    reply, msgs = b.execute("pid")
    assert reply["status"] == "ok" and int(streams(msgs, "stdout")) == pid


BAD_INFO = [
    ({"implementation": 42}, "implementation must be a string, not the integer 42"),
    ({"language_info": "rpn"}, "language_info must be an object, not the string 'rpn'"),
    ({"language_info": {"name": 7}}, "language_info.name must be a string, not the integer 7"),
    ({"language_info": {"mimetype": "text/plain"}}, "language_info.name is missing"),
    ({"language_info": {"name": ""}}, "language_info.name must not be empty"),
    ({"banner": ["x"]}, "banner must be a string, not an array"),
    ({"help_links": [{"text": "t"}]}, "help_links[0] must be an object with text and url"),
    ({"interrupt_mode": "sometimes"}, "interrupt_mode must be 'signal' or 'message'"),
    ({"subshells": "yes"}, "subshells must be a boolean"),
    ({"language_info": {"name": "x", "codemirror_mode": 3}},
     "language_info.codemirror_mode must be a string or an object"),
]


@pytest.mark.parametrize(("override", "message"), BAD_INFO,
                         ids=[next(iter(o)) for o, _ in BAD_INFO])
def test_initialize_with_wrong_types_fails_the_start_loudly(
    override: dict[str, Any], message: str
) -> None:
    cf, _ = write_connection_file()
    try:
        done = kernelkit("bridge", "-f", cf, "--", *FAULT, "info", json.dumps(override))
    finally:
        Path(cf).unlink(missing_ok=True)
    assert done.returncode == 1
    assert "answered 'initialize' with an invalid result" in done.stderr
    assert message in done.stderr


def test_install_refuses_a_backend_whose_initialize_is_invalid(tmp_path: Path) -> None:
    done = kernelkit("install", "--name", "bad-info", "--prefix", str(tmp_path), "--",
                     *FAULT, "info", json.dumps({"language_info": "rpn"}))
    assert done.returncode == 1
    assert "no kernelspec was written" in done.stderr and "language_info must be" in done.stderr
    assert not (tmp_path / "share/jupyter/kernels/bad-info").exists()


def test_a_valid_initialize_result_has_no_problems() -> None:
    good = {"implementation": "Echo", "implementation_version": "1.0",
            "language_info": {"name": "Any text", "mimetype": "text/plain",
                              "codemirror_mode": {"name": "x"}},
            "banner": "b", "help_links": [{"text": "t", "url": "u"}],
            "interrupt_mode": "message", "subshells": False, "future_field": 1}
    assert info_problems(good) == []
    assert info_problems([]) == ["the result is an array, not an object"]


# -- helpers ---------------------------------------------------------------------------


def _params(code: str) -> dict[str, Any]:
    return {"code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": False, "execution_count": 1, "cell_id": None}


def test_the_keeper_ends_with_its_backend() -> None:
    backend = BackendProcess([sys.executable, "-c", "import sys; sys.stdin.read()"])
    keeper = backend._keeper
    assert keeper is not None and keeper.poll() is None
    backend.stop(2)
    assert keeper.poll() is not None


def test_a_big_request_arrives_whole_when_signals_cut_its_writes_short() -> None:
    """A write to a pipe that a signal interrupts after some bytes returns the count written
    so far; the host must write the rest (it did not: the line arrived cut and was joined
    to the next). Here SIGALRM fires every millisecond while a 20 MB line goes to a
    backend that reads slowly, and the backend reports what it got, line by line."""
    reader = (
        "import hashlib, sys, time\n"
        "time.sleep(0.3)\n"
        "for line in sys.stdin.buffer:\n"
        "    time.sleep(0.0005)\n"
        "    print(len(line), hashlib.sha256(line).hexdigest(), flush=True)\n"
    )
    backend = BackendProcess([sys.executable, "-c", reader])
    big = b"".join(b"%09d" % i for i in range(2_000_000)) + b"\n"  # 18 MB, no two alike
    small = b"next\n"
    interrupted = 0

    def on_alarm(signum: int, frame: Any) -> None:
        nonlocal interrupted
        interrupted += 1

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
    try:
        assert backend.send(big)
        assert backend.send(small)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    try:
        import hashlib

        got = []
        while len(got) < 2:
            event = backend.next_event(30)
            assert isinstance(event, Line), event
            got.append(bytes(event.data).decode().split())
        assert interrupted > 0  # the writes were interrupted, some surely mid-way
        assert got == [[str(len(line)), hashlib.sha256(line).hexdigest()]
                       for line in (big, small)]
    finally:
        backend.stop(1)


def test_a_long_line_and_what_follows_it_in_one_read_are_both_intact() -> None:
    """The reader hands a long line over as its buffer and keeps only what follows (a reply
    right behind a big output): both must come out exactly, in order."""
    writer = ("import sys; out = sys.stdout.buffer\n"
              "out.write(b'ab' * 1_500_000 + b'\\n' + b'tail 1\\n' + b'tail')\n"
              "out.flush(); sys.stdin.read(); out.write(b' 2\\n'); out.flush()\n")
    backend = BackendProcess([sys.executable, "-c", writer])
    try:
        first = backend.next_event(30)
        assert isinstance(first, Line) and bytes(first.data) == b"ab" * 1_500_000 + b"\n"
        second = backend.next_event(30)
        assert isinstance(second, Line) and bytes(second.data) == b"tail 1\n"
        assert backend.proc.stdin is not None
        backend.proc.stdin.close()
        third = backend.next_event(30)
        assert isinstance(third, Line) and bytes(third.data) == b"tail 2\n"
    finally:
        backend.stop(1)
