"""Stream output merged into few messages (streams.Coalescer), for Python kernels and bridges.

The unit tests run requests through a Dispatcher and kernelkit.testing.FakeTransport
with a clock the test moves, so what counts as "quiet" is decided by the test, not by
the machine's speed; interleavings between threads are forced with events. The
process tests check the same on a real Python kernel and a real bridge backend.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jupyter_client import BlockingKernelClient
from raw import KernelProcess

from conftest import ROOT
from kernelkit import Kernel
from kernelkit.dispatch import Dispatcher
from kernelkit.streams import INTERVAL, MAX_PENDING, Coalescer
from kernelkit.testing import FakeTransport, Sent, attach, request
from kernelkit.wire import Message

FLUSHER = "kernelkit-streams"  # the name of the Coalescer's thread


class Cells(Kernel):
    """do_execute runs the callable the test registered under the cell's code."""

    implementation = "cells"
    language_info = {"name": "cells", "mimetype": "text/plain", "file_extension": ".txt"}
    concurrent_hooks = True

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[str, Callable[[], Any]] = {}

    def do_execute(self, code: str, silent: bool, store_history: bool = True,
                   user_expressions: Any = None, allow_stdin: bool = False) -> Any:
        self.cells[code]()
        return {"status": "ok"}


class Clock:
    """A monotonic clock that moves only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def setup(clock: Clock | None = None) -> tuple[Cells, FakeTransport, Dispatcher]:
    kernel = Cells()
    transport, dispatcher = attach(kernel)
    if clock is not None:
        dispatcher.streams.clock = clock
    return kernel, transport, dispatcher


def run(dispatcher: Dispatcher, code: str) -> Message:
    msg = request("execute_request", {"code": code})
    dispatcher.handle("shell", msg)
    return msg


def streams(transport: FakeTransport, msg: Message) -> list[tuple[str, str]]:
    return [(s.content["name"], s.content["text"]) for s in transport.iopub(msg, "stream")]


def order(transport: FakeTransport, msg: Message) -> list[str]:
    """msg_types sent for ``msg`` in order, replies as ``reply``, statuses by state."""
    out = []
    for s in transport.for_request(msg):
        if s.channel != "iopub":
            out.append("reply")
        elif s.msg_type == "status":
            out.append(s.content["execution_state"])
        else:
            out.append(s.msg_type)
    return out


# -- merging -------------------------------------------------------------------------------


def test_lines_written_in_a_burst_become_one_message_byte_identical() -> None:
    clock = Clock()  # never moves: every line after the first is within the interval
    kernel, transport, dispatcher = setup(clock)
    lines = [f"line {i} ünïcode\n" for i in range(2000)]

    def cell() -> None:
        for line in lines:
            print(line, end="", file=dispatcher.stdout)
        for i in range(500):
            kernel.send_response(kernel.iopub_socket, "stream", {"name": "stdout", "text": f"{i},"})

    kernel.cells["burst"] = cell
    msg = run(dispatcher, "burst")
    texts = streams(transport, msg)
    # The first line at once (nothing was written before), the rest merged at the end.
    assert texts == [("stdout", lines[0]),
                     ("stdout", "".join(lines[1:]) + "".join(f"{i}," for i in range(500)))]
    assert order(transport, msg) == ["busy", "execute_input", "stream", "stream", "reply", "idle"]
    assert dispatcher.streams._pending == {}  # nothing kept once the request is over


def test_sparse_output_goes_out_at_once() -> None:
    clock = Clock()
    kernel, transport, dispatcher = setup(clock)
    seen: list[list[tuple[str, str]]] = []

    def cell() -> None:
        cell_msg = dispatcher.parent
        assert cell_msg is not None
        print("a", file=dispatcher.stdout)  # nothing before it: sent during the print
        seen.append(streams(transport, cell_msg))
        clock.now += INTERVAL  # a quiet interval (as `time.sleep` would make)
        print("b", file=dispatcher.stdout)
        seen.append(streams(transport, cell_msg))
        print("c", file=dispatcher.stdout)  # right after "b": waits
        seen.append(streams(transport, cell_msg))

    kernel.cells["sparse"] = cell
    msg = run(dispatcher, "sparse")
    assert seen == [[("stdout", "a\n")],
                    [("stdout", "a\n"), ("stdout", "b\n")],
                    [("stdout", "a\n"), ("stdout", "b\n")]]
    assert streams(transport, msg)[-1] == ("stdout", "c\n")  # sent by the request's end
    assert order(transport, msg)[-3:] == ["stream", "reply", "idle"]


def test_the_echo_path_involves_no_flusher_thread() -> None:
    """One short message per request (the Echo kernel) is sent as it is published."""
    kernel, transport, dispatcher = setup()

    def cell() -> None:
        kernel.send_response(kernel.iopub_socket, "stream", {"name": "stdout", "text": "hi"})

    kernel.cells["echo"] = cell
    for _ in range(3):
        msg = run(dispatcher, "echo")
        assert streams(transport, msg) == [("stdout", "hi")]
        assert transport.iopub(msg, "stream")[0].thread == threading.current_thread().name
    assert dispatcher.streams._thread is None


def test_stdout_and_stderr_keep_the_order_they_were_written_in() -> None:
    clock = Clock()
    kernel, transport, dispatcher = setup(clock)
    written = [("stdout", "o1\n"), ("stdout", "o2\n"), ("stderr", "e1\n"), ("stdout", "o3\n"),
               ("stderr", "e2\n"), ("stderr", "e3\n"), ("stdout", "o4")]

    def cell() -> None:
        for name, text in written:
            getattr(dispatcher, name).write(text)

    kernel.cells["mixed"] = cell
    msg = run(dispatcher, "mixed")
    assert streams(transport, msg) == [
        ("stdout", "o1\n"), ("stdout", "o2\n"), ("stderr", "e1\n"), ("stdout", "o3\n"),
        ("stderr", "e2\ne3\n"), ("stdout", "o4"),
    ]


def test_any_other_output_of_the_request_comes_after_the_text_before_it() -> None:
    clock = Clock()
    kernel, transport, dispatcher = setup(clock)

    def send(msg_type: str, content: dict[str, Any]) -> None:
        kernel.send_response(kernel.iopub_socket, msg_type, content)

    def cell() -> None:
        print("first", file=dispatcher.stdout)
        print("held 1", file=dispatcher.stdout)
        send("display_data", {"data": {"text/plain": "x"}, "metadata": {}})
        print("held 2", file=dispatcher.stderr)
        send("clear_output", {"wait": False})
        print("held 3", file=dispatcher.stdout)
        # A stream message with more than name and text is passed on as it is, in order.
        send("stream", {"name": "stdout", "text": "odd\n", "extra": 1})
        print("held 4", file=dispatcher.stdout)
        raise ValueError("the end")

    kernel.cells["mixed"] = cell
    msg = run(dispatcher, "mixed")
    assert order(transport, msg) == [
        "busy", "execute_input", "stream", "stream", "display_data", "stream", "clear_output",
        "stream", "stream", "stream", "error", "reply", "idle",
    ]
    texts = [s.content["text"] for s in transport.iopub(msg, "stream")]
    assert texts == ["first\n", "held 1\n", "held 2\n", "held 3\n", "odd\n", "held 4\n"]


def test_input_requests_come_after_the_text_before_them() -> None:
    clock = Clock()
    kernel, transport, dispatcher = setup(clock)
    shown: list[list[tuple[str, str]]] = []

    def cell() -> None:
        print("first", file=dispatcher.stdout)
        print("a prompt follows:", file=dispatcher.stdout)
        cell_msg = dispatcher.parent
        assert cell_msg is not None
        transport.request_input = (  # type: ignore[method-assign]
            lambda parent, prompt, password: shown.append(streams(transport, cell_msg)) or "42"
        )
        kernel.raw_input("? ")

    kernel.cells["ask"] = cell
    run(dispatcher, "ask")
    assert shown == [[("stdout", "first\n"), ("stdout", "a prompt follows:\n")]]


def test_pending_text_is_bounded_and_no_message_exceeds_the_bound() -> None:
    clock = Clock()
    kernel, transport, dispatcher = setup(clock)
    piece = "x" * 1023 + "\n"
    sizes_while_writing: list[int] = []

    def cell() -> None:
        cell_msg = dispatcher.parent
        assert cell_msg is not None
        for _ in range(3 * MAX_PENDING // len(piece)):
            dispatcher.stdout.write(piece)
            held = sum(map(len, dispatcher.streams._pending[cell_msg].parts))
            sizes_while_writing.append(held)
        dispatcher.stdout.write("y" * (2 * MAX_PENDING + 5))  # one big write: in pieces

    kernel.cells["big"] = cell
    msg = run(dispatcher, "big")
    assert max(sizes_while_writing) < MAX_PENDING
    lengths = [len(text) for _, text in streams(transport, msg)]
    assert max(lengths) <= MAX_PENDING
    assert len(lengths) >= 6  # the writes passed the bound several times
    total = "".join(text for _, text in streams(transport, msg))
    assert total == piece * (3 * MAX_PENDING // len(piece)) + "y" * (2 * MAX_PENDING + 5)


# -- the flusher thread --------------------------------------------------------------------


def test_a_timer_flush_sends_the_waiting_text_with_its_request_as_parent() -> None:
    clock = Clock()
    kernel, transport, dispatcher = setup(clock)
    dispatcher.streams.interval = 0.01
    flushed = threading.Event()

    def on_send(sent: Sent) -> None:
        if sent.msg_type == "stream" and sent.content["text"] == "waits\n":
            flushed.set()

    def cell() -> None:
        print("at once", file=dispatcher.stdout)
        print("waits", file=dispatcher.stdout)
        clock.now += 1  # only now is the interval over (however slow the machine)
        assert flushed.wait(10), "the flusher did not send the waiting line"

    kernel.cells["timer"] = cell
    with transport.sending_hook(on_send):
        msg = run(dispatcher, "timer")
    sent = transport.iopub(msg, "stream")
    assert [(s.content["text"], s.thread) for s in sent] == [
        ("at once\n", threading.current_thread().name), ("waits\n", FLUSHER)]
    assert order(transport, msg)[-3:] == ["stream", "reply", "idle"]


def test_a_partial_line_is_shown_after_an_interval_and_a_flush_shows_it_at_once() -> None:
    kernel, transport, dispatcher = setup()
    dispatcher.streams.interval = 0.01
    flushed = threading.Event()

    def on_send(sent: Sent) -> None:
        if sent.msg_type == "stream" and sent.content["text"] == "50%":
            flushed.set()

    def cell() -> None:
        cell_msg = dispatcher.parent
        assert cell_msg is not None
        dispatcher.stdout.write("50%")  # no newline: waits one interval, then goes
        assert flushed.wait(10), "a partial line was held"
        dispatcher.streams.clock = lambda: time.monotonic() + 1  # quiet since
        dispatcher.stdout.write(" 100%")
        dispatcher.stdout.flush()  # after a quiet interval: at once
        assert streams(transport, cell_msg)[-1] == ("stdout", " 100%")

    kernel.cells["progress"] = cell
    with transport.sending_hook(on_send):
        run(dispatcher, "progress")


class WatchedLock:
    """An RLock that reports when a thread has to wait for it (forcing an interleaving)."""

    def __init__(self, contended: threading.Event) -> None:
        self._lock = threading.RLock()
        self.contended = contended

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(False):
            return True
        if not blocking:
            return False
        self.contended.set()
        return self._lock.acquire(True, timeout)

    __enter__ = acquire

    def release(self) -> None:
        self._lock.release()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def __getattr__(self, name: str) -> Any:  # Condition's _is_owned, _release_save, ...
        return getattr(self._lock, name)


class TimerTransport(FakeTransport):
    """A transport on which the flusher's send stops before it is recorded, until released."""

    def __init__(self) -> None:
        super().__init__()
        self.timer_sending = threading.Event()
        self.release_timer = threading.Event()

    def send(self, channel: str, msg_type: str, content: Any, parent: Any = None,
             metadata: Any = None, buffers: Any = ()) -> Any:
        if threading.current_thread().name == FLUSHER:
            self.release_timer.clear()
            self.timer_sending.set()
            assert self.release_timer.wait(10), "nobody released the flusher's send"
        elif msg_type == "status" and content.get("execution_state") == "idle":
            self.release_timer.set()  # only reached here if idle could overtake the flush
        return super().send(channel, msg_type, content, parent, metadata, buffers)


def test_a_timer_flush_racing_the_end_of_its_request_comes_before_reply_and_idle() -> None:
    """The flusher has taken the request's last text and is sending it as the request ends.

    Forced interleaving: the flusher stops inside its send; the cell then returns, and
    the request's end must wait for the flusher (it asks for the lock, which releases
    the flusher) instead of sending its reply and idle first (which would release it
    too, and fail the order below).
    """
    kernel = Cells()
    transport = TimerTransport()
    dispatcher = Dispatcher(kernel, transport)
    kernel._dispatcher = dispatcher
    clock = Clock()
    dispatcher.streams = Coalescer(dispatcher._send_stream, interval=0.01, clock=clock,
                                   lock=WatchedLock(transport.release_timer))

    def cell() -> None:
        print("at once", file=dispatcher.stdout)
        print("last line", file=dispatcher.stdout)  # waits for the flusher
        clock.now += 1
        assert transport.timer_sending.wait(10), "the flusher did not send"

    kernel.cells["race"] = cell
    msg = run(dispatcher, "race")
    sent = [(s.msg_type, s.content.get("text"), s.thread) for s in transport.for_request(msg)]
    assert sent[-3:] == [("stream", "last line\n", FLUSHER), ("execute_reply", None, sent[0][2]),
                         ("status", None, sent[0][2])]
    assert order(transport, msg)[-2:] == ["reply", "idle"]


def test_two_threads_output_stays_with_its_own_request_in_order() -> None:
    """Two cells on two threads (subshells of a concurrent kernel) write turn by turn."""
    kernel, transport, dispatcher = setup()
    dispatcher.streams.interval = 0.005  # so that timer flushes happen between turns
    turns = [threading.Event() for _ in range(41)]
    turns[0].set()

    def writer(first: int, name: str) -> Callable[[], None]:
        def cell() -> None:
            for turn in range(first, 40, 2):
                assert turns[turn].wait(10)
                for i in range(50):
                    print(f"{name} {turn} {i}", file=dispatcher.stdout)
                if turn % 4 < 2:
                    print(f"{name} {turn} err", file=dispatcher.stderr)
                turns[turn + 1].set()
        return cell

    kernel.cells = {"A": writer(0, "A"), "B": writer(1, "B")}
    msgs = {name: request("execute_request", {"code": name}) for name in "AB"}
    threads = [threading.Thread(target=dispatcher.handle, args=("shell", msgs[name]))
               for name in "AB"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for name, first in (("A", 0), ("B", 1)):
        expected: dict[str, str] = {"stdout": "", "stderr": ""}
        for turn in range(first, 40, 2):
            expected["stdout"] += "".join(f"{name} {turn} {i}\n" for i in range(50))
            if turn % 4 < 2:
                expected["stderr"] += f"{name} {turn} err\n"
        got = streams(transport, msgs[name])
        for stream in ("stdout", "stderr"):
            assert "".join(t for n, t in got if n == stream) == expected[stream]
        assert len(got) < 20 * 10  # merged: 20 turns of 50 lines, 1,010 messages unmerged
        assert order(transport, msgs[name])[-2:] == ["reply", "idle"]
    assert dispatcher.streams._pending == {}


def test_output_for_a_request_that_has_ended_is_sent_and_not_kept() -> None:
    """A bridge backend's late output: published with its parent after the request ended."""
    kernel, transport, dispatcher = setup()
    kernel.cells["x"] = lambda: None
    msgs = [run(dispatcher, "x") for _ in range(50)]
    for msg in msgs:
        dispatcher.publish("stream", {"name": "stderr", "text": "late\n"}, parent=msg)
    assert all(streams(transport, m) == [("stderr", "late\n")] for m in msgs)
    assert len(dispatcher.streams._pending) <= 50
    dispatcher.streams.clock = lambda: time.monotonic() + 10  # later on, new output prunes
    dispatcher.publish("stream", {"name": "stderr", "text": "late\n"},
                       parent=request("execute_request", {"code": "x"}))
    assert len(dispatcher.streams._pending) == 1


# -- real kernels ----------------------------------------------------------------------


def _client(kernel: KernelProcess) -> BlockingKernelClient:
    kc = BlockingKernelClient(connection_file=str(kernel.cf))
    kc.load_connection_file()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return kc


def _run_cell(kc: BlockingKernelClient, code: str, timeout: float = 60) -> tuple[
        dict[str, Any], list[dict[str, Any]]]:
    msg_id = kc.execute(code)
    reply = kc.get_shell_msg(timeout=timeout)
    assert reply["parent_header"]["msg_id"] == msg_id
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        out.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return reply, out


@pytest.mark.timeout(120)
def test_a_python_kernel_printing_100000_lines_sends_few_messages(tmp_path: Path) -> None:
    n = 100_000
    with KernelProcess(["run", "kk_testkernels:PythonKernel", "-f", "{cf}"], tmp_path) as k:
        kc = _client(k)
        try:
            code = (f"import sys\nfor i in range({n}):\n    print('line', i)\n"
                    "    if i % 10000 == 0: print('err', i, file=sys.stderr)\n")
            reply, msgs = _run_cell(kc, code)
            assert reply["content"]["status"] == "ok"
            streams_ = [m for m in msgs if m["msg_type"] == "stream"]
            out = "".join(m["content"]["text"] for m in streams_
                          if m["content"]["name"] == "stdout")
            err = "".join(m["content"]["text"] for m in streams_
                          if m["content"]["name"] == "stderr")
            assert out == "".join(f"line {i}\n" for i in range(n))
            assert err == "".join(f"err {i}\n" for i in range(0, n, 10000))
            assert len(streams_) < 500, len(streams_)  # was 200,000 + 10
            # the interleaving survives: "err i" was printed right after "line i"
            seen = ""
            for m in streams_:
                if m["content"]["name"] == "stderr":
                    i = int(m["content"]["text"].split()[1])
                    assert seen.endswith(f"line {i}\n")
                else:
                    seen += m["content"]["text"]
            # sparse output is not held back: one line, then a sleep
            reply, msgs = _run_cell(kc, "import time\nprint('now')\ntime.sleep(0.5)")
            first = next(m for m in msgs if m["msg_type"] == "stream")
            assert first["content"]["text"] == "now\n"
        finally:
            kc.stop_channels()


BACKEND = """
import os, sys
sys.path.insert(0, {sdk!r})
from kernelkit_backend import serve

class Lines:
    info = {{"implementation": "lines", "implementation_version": "1.0",
             "language_info": {{"name": "lines", "mimetype": "text/plain",
                                "file_extension": ".txt"}}}}

    def execute(self, request, ctx):
        how, n = request["code"].split()
        for i in range(int(n)):
            if how == "sdk":  # stream notifications
                print("err", i, file=sys.stderr)
            else:  # the backend's own stderr
                os.write(2, b"err %d\\n" % i)
        return {{}}

serve(Lines())
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["sdk", "fd"])
def test_a_bridge_backend_writing_many_stderr_lines(tmp_path: Path, how: str) -> None:
    """As stream notifications (the SDK's sys.stderr) or on the backend's own stderr.

    The second relies on the host draining stderr written before the reply (item 9).
    """
    script = tmp_path / "lines_backend.py"
    script.write_text(BACKEND.format(sdk=str(ROOT / "src" / "kernelkit" / "sdk" / "python")))
    n = 20_000
    args = ["bridge", "-f", "{cf}", "--", sys.executable, str(script)]
    with KernelProcess(args, tmp_path / "k") as k:
        kc = _client(k)
        try:
            for _ in range(2):  # and the next request's output is its own
                reply, msgs = _run_cell(kc, f"{how} {n}")
                assert reply["content"]["status"] == "ok"
                streams_ = [m for m in msgs if m["msg_type"] == "stream"]
                assert {m["content"]["name"] for m in streams_} == {"stderr"}
                text = "".join(m["content"]["text"] for m in streams_)
                assert text == "".join(f"err {i}\n" for i in range(n))
                assert len(streams_) < n // 20, len(streams_)
        finally:
            kc.stop_channels()
