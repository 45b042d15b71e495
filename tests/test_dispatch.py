"""The dispatcher's protocol rules, in-process through kernelkit.testing.FakeTransport.

No sockets and no sleeps: each test runs in milliseconds. Interleavings between
threads are forced with events, never with timing. The process tests in
test_protocol.py check the same rules end to end.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from kernelkit import Kernel
from kernelkit.dispatch import Dispatcher, kernel_info_problems
from kernelkit.testing import FakeTransport, attach, request

OK = {"status": "ok"}  # module-level: a kernel that returns it must not see it change


class Probe(Kernel):
    """A kernel whose do_execute runs a callable chosen by the test (code is its key)."""

    implementation = "probe"
    language_version = "3.1"
    language_info = {"name": "probe", "mimetype": "text/plain", "file_extension": ".txt"}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.actions: dict[str, Any] = {}

    def do_execute(self, code: str, silent: bool, store_history: bool = True,
                   user_expressions: Any = None, allow_stdin: bool = False) -> Any:
        action = self.actions.get(code)
        return action() if action is not None else dict(OK)

    def do_complete(self, code: str, cursor_pos: int) -> Any:
        action = self.actions.get("complete")
        return action() if action is not None else super().do_complete(code, cursor_pos)


def setup(kernel: Kernel | None = None) -> tuple[Any, FakeTransport, Dispatcher]:
    kernel = kernel or Probe()
    transport, dispatcher = attach(kernel)
    return kernel, transport, dispatcher


def execute(code: str, **content: Any) -> Any:
    return request("execute_request", {"code": code, **content})


# -- bracketing and exactly one reply ---------------------------------------------------


@pytest.mark.parametrize(
    ("msg_type", "content"),
    [
        ("execute_request", {"code": "x"}),
        ("kernel_info_request", {}),
        ("complete_request", {"code": "ab", "cursor_pos": 2}),
        ("inspect_request", {"code": "ab", "cursor_pos": 2}),
        ("history_request", {}),
        ("is_complete_request", {"code": "x"}),
        ("comm_info_request", {}),
        ("list_subshell_request", {}),
        ("no_such_request", {}),
    ],
)
def test_every_request_is_bracketed_and_answered_once(msg_type: str, content: Any) -> None:
    _, transport, dispatcher = setup()
    msg = request(msg_type, content)
    dispatcher.handle("shell", msg)
    assert transport.statuses(msg) == ["busy", "idle"]
    sent = transport.for_request(msg)
    assert sent[0].msg_type == "status" and sent[-1].msg_type == "status"
    reply = transport.reply_to(msg)
    assert transport.replies(msg)[0].msg_type == msg_type.replace("_request", "_reply")
    if msg_type == "no_such_request":
        assert reply["status"] == "error" and reply["ename"] == "NotImplementedError"
    else:
        assert reply["status"] in ("ok", "unknown"), reply  # is_complete: "unknown"


def test_unknown_non_request_is_bracketed_without_a_reply() -> None:
    _, transport, dispatcher = setup()
    msg = request("custom_thing", {})
    dispatcher.handle("shell", msg)
    assert transport.statuses(msg) == ["busy", "idle"]
    assert transport.replies(msg) == []


def test_hook_errors_and_bad_returns_become_error_replies() -> None:
    kernel, transport, dispatcher = setup()

    def boom() -> Any:
        raise ValueError("no")

    kernel.actions = {"raise": boom, "none": lambda: None, "complete": boom}
    for code, ename in (("raise", "ValueError"), ("none", "TypeError")):
        msg = execute(code)
        dispatcher.handle("shell", msg)
        reply = transport.reply_to(msg)
        assert (reply["status"], reply["ename"]) == ("error", ename)
        assert [e.content["ename"] for e in transport.iopub(msg, "error")] == [ename]
        assert transport.statuses(msg) == ["busy", "idle"]
    msg = request("complete_request", {"code": "x", "cursor_pos": 1})
    dispatcher.handle("shell", msg)
    assert transport.reply_to(msg)["ename"] == "ValueError"


class EarlyStart(Probe):
    """A kernel that takes its execute before execute_input goes out, as the bridge does."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.events: list[str] = []
        self.fail: BaseException | None = None
        self.inputs_out: Any = lambda: 0  # how many execute_input are out (set by the test)

    def _start_execute(self, code: str, *args: Any) -> None:
        self.events.append(f"start {code} with {self.inputs_out()} execute_input out")
        if self.fail is not None:
            raise self.fail

    def do_execute(self, code: str, silent: bool, store_history: bool = True,
                   user_expressions: Any = None, allow_stdin: bool = False) -> Any:
        self.events.append(f"run {code}")
        return dict(OK)


@pytest.mark.parametrize("fail", [None, ValueError("cannot send"), KeyboardInterrupt()])
def test_an_early_start_comes_before_execute_input_and_its_failure_is_the_one_reply(
        fail: BaseException | None) -> None:
    kernel, transport, dispatcher = setup(EarlyStart())
    kernel.fail = fail
    msg = execute("x")
    kernel.inputs_out = lambda: len(transport.iopub(msg, "execute_input"))
    dispatcher.handle("shell", msg)
    reply = transport.reply_to(msg)  # (exactly one, or it raises)
    assert [e.content["code"] for e in transport.iopub(msg, "execute_input")] == ["x"]
    assert transport.statuses(msg) == ["busy", "idle"]
    if fail is None:
        assert kernel.events == ["start x with 0 execute_input out", "run x"]
        assert reply["status"] == "ok"
    else:
        # the hook is not run after a failed start
        assert kernel.events == ["start x with 0 execute_input out"]
        assert (reply["status"], reply["ename"]) == ("error", type(fail).__name__)


def test_execution_count_follows_the_spec() -> None:
    _, transport, dispatcher = setup()
    counts = []
    for content in ({}, {"silent": True}, {"store_history": False}, {}):
        msg = execute("x", **content)
        dispatcher.handle("shell", msg)
        counts.append(transport.reply_to(msg)["execution_count"])
    assert counts == [1, 1, 1, 2]


def test_stop_on_error_aborts_what_was_queued_and_only_that() -> None:
    kernel, transport, dispatcher = setup()

    def boom() -> Any:
        raise RuntimeError("failed")

    kernel.actions = {"fail": boom}
    failing, behind1, behind2 = execute("fail"), execute("a"), execute("b")
    transport.queue = [behind1, behind2]
    dispatcher.handle("shell", failing)
    assert transport.reply_to(failing)["status"] == "error"
    for behind in (behind1, behind2):
        assert transport.reply_to(behind) == {"status": "aborted"}
        assert transport.statuses(behind) == ["busy", "idle"]
    after = execute("c", date="2999-01-01T00:00:00Z")  # sent after the error
    dispatcher.handle("shell", after)
    assert transport.reply_to(after)["status"] == "ok"


def test_stop_on_error_false_keeps_the_queue() -> None:
    kernel, transport, dispatcher = setup()

    def boom() -> Any:
        raise RuntimeError("failed")

    kernel.actions = {"fail": boom}
    transport.queue = [execute("a")]
    dispatcher.handle("shell", execute("fail", stop_on_error=False))
    assert len(transport.queue) == 1  # untouched: nothing aborted


# -- the seven defects of issue "Engine v2", each with the test that catches it -------


def test_output_belongs_to_the_request_whose_thread_wrote_it() -> None:
    """Defect 1: a partial line must not be flushed by a control request meanwhile."""
    kernel, transport, dispatcher = setup()
    half_written, control_done = threading.Event(), threading.Event()

    def cell() -> Any:
        dispatcher.stdout.write("progress 50%")
        half_written.set()
        control_done.wait(5)
        dispatcher.stdout.write(" done\n")
        return dict(OK)

    kernel.actions = {"cell": cell}
    cell_msg = execute("cell")
    worker = threading.Thread(target=dispatcher.handle, args=("shell", cell_msg))
    worker.start()
    assert half_written.wait(5)
    info_msg = request("kernel_info_request")
    dispatcher.handle("control", info_msg)
    control_done.set()
    worker.join(5)
    assert transport.iopub(info_msg, "stream") == []
    texts = [s.content["text"] for s in transport.iopub(cell_msg, "stream")]
    assert "".join(texts) == "progress 50% done\n"


def test_a_hook_on_another_thread_does_not_arm_the_main_gate() -> None:
    """Defect 2: the interrupt gate is per thread (here through the real server)."""
    from kernelkit.connection import ConnectionInfo
    from kernelkit.interrupts import IDLE
    from kernelkit.server import Server
    from kernelkit.wire import Session

    server = Server(ConnectionInfo(key="k"), Session(b"k"))
    try:
        inside = [threading.Event(), threading.Event()]
        leave = threading.Event()

        def hook(i: int) -> None:
            with server.interruptible():
                inside[i].set()
                leave.wait(5)

        threads = [threading.Thread(target=hook, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for e in inside:
            assert e.wait(5)
        assert server.main_gate.state is IDLE  # two overlapping hooks elsewhere
        leave.set()
        for t in threads:
            t.join(5)
        assert server.main_gate.state is IDLE
        server.main_gate.on_sigint(None)  # a SIGINT now raises nothing
    finally:
        server._running = False
        server._close(term=False)
        server.control.close()
        server._wake_control_rx.close()
        server.hb.close()


def test_a_returned_constant_is_copied_not_changed() -> None:
    """Defect 3: a kernel returning one module-level dict gets counts 1, 2, 3."""
    kernel, transport, dispatcher = setup()
    kernel.actions = {"x": lambda: OK}
    counts = []
    for _ in range(3):
        msg = execute("x")
        dispatcher.handle("shell", msg)
        counts.append(transport.reply_to(msg)["execution_count"])
    assert counts == [1, 2, 3]
    assert OK == {"status": "ok"}


class RaisingInfo(Probe):
    @property
    def language_info(self) -> Any:  # type: ignore[override]
        raise RuntimeError("octave is not running")


def test_a_raising_kernel_info_is_still_answered() -> None:
    """Defect 4: octave_kernel's language_info is a property that can raise."""
    _, transport, dispatcher = setup(RaisingInfo())
    for channel in ("shell", "control"):
        msg = request("kernel_info_request")
        dispatcher.handle(channel, msg)
        reply = transport.reply_to(msg)
        assert (reply["status"], reply["ename"]) == ("error", "RuntimeError")
        assert "octave is not running" in reply["evalue"]
        assert transport.statuses(msg) == ["busy", "idle"]


def test_hooks_on_control_never_run_beside_a_running_hook() -> None:
    """Defect 5: a hook request on control while shell runs one: a clear error, no wedge."""
    kernel, transport, dispatcher = setup()
    running, finish = threading.Event(), threading.Event()

    def long_cell() -> Any:
        running.set()
        finish.wait(5)
        return dict(OK)

    kernel.actions = {"long": long_cell}
    cell = execute("long")
    worker = threading.Thread(target=dispatcher.handle, args=("shell", cell))
    worker.start()
    assert running.wait(5)
    for msg in (request("complete_request", {"code": "x", "cursor_pos": 1}), execute("x")):
        dispatcher.handle("control", msg)
        reply = transport.reply_to(msg)
        assert (reply["status"], reply["ename"]) == ("error", "KernelBusy")
    info = request("kernel_info_request")  # kernelkit's own: answered at once
    dispatcher.handle("control", info)
    assert transport.reply_to(info)["status"] == "ok"
    finish.set()
    worker.join(5)
    assert transport.reply_to(cell)["status"] == "ok"
    idle = request("complete_request", {"code": "x", "cursor_pos": 1})
    dispatcher.handle("control", idle)  # nothing running now: runs on control
    assert transport.reply_to(idle)["status"] == "ok"


def test_concurrent_kernels_run_control_hooks_at_once() -> None:
    class Concurrent(Probe):
        concurrent_hooks = True

    kernel, transport, dispatcher = setup(Concurrent())
    running, finish = threading.Event(), threading.Event()
    kernel.actions = {"long": lambda: (running.set(), finish.wait(5), dict(OK))[2]}
    worker = threading.Thread(target=dispatcher.handle, args=("shell", execute("long")))
    worker.start()
    assert running.wait(5)
    msg = request("complete_request", {"code": "x", "cursor_pos": 1})
    dispatcher.handle("control", msg)
    assert transport.reply_to(msg)["status"] == "ok"
    finish.set()
    worker.join(5)


def test_kernel_info_has_what_strict_clients_need() -> None:
    """Defect 6: language_info.version from language_version; the whole reply typed."""
    _, transport, dispatcher = setup()
    msg = request("kernel_info_request")
    dispatcher.handle("shell", msg)
    info = transport.reply_to(msg)
    assert info["language_info"]["version"] == "3.1"
    assert kernel_info_problems(info) == []
    assert "kernel subshells" in info["supported_features"]
    assert Probe.language_info == {  # the class attribute is not changed either
        "name": "probe", "mimetype": "text/plain", "file_extension": ".txt"}


def test_kernel_info_with_wrong_types_is_an_error_reply() -> None:
    class Wrong(Probe):
        implementation = 42  # type: ignore[assignment]
        language_info = {"name": "w", "codemirror_mode": 3}

    _, transport, dispatcher = setup(Wrong())
    msg = request("kernel_info_request")
    dispatcher.handle("shell", msg)
    reply = transport.reply_to(msg)
    assert reply["ename"] == "InvalidKernelInfo"
    assert "implementation must be a string" in reply["evalue"]
    assert "language_info.codemirror_mode" in reply["evalue"]


def test_silent_errors_publish_nothing_but_status() -> None:
    """Defect 7: silent means nothing on IOPub but status, also for errors."""
    kernel, transport, dispatcher = setup()

    def boom() -> Any:
        raise ValueError("quiet")

    kernel.actions = {"raise": boom}
    silent = execute("raise", silent=True)
    dispatcher.handle("shell", silent)
    assert transport.reply_to(silent)["ename"] == "ValueError"
    assert [s.msg_type for s in transport.iopub(silent)] == ["status", "status"]
    loud = execute("raise")
    dispatcher.handle("shell", loud)
    assert len(transport.iopub(loud, "error")) == 1


# -- subshell messages ---------------------------------------------------------------


def test_subshell_lifecycle_messages() -> None:
    _, transport, dispatcher = setup()
    create = request("create_subshell_request")
    dispatcher.handle("control", create)
    subshell_id = transport.reply_to(create)["subshell_id"]
    listing = request("list_subshell_request")
    dispatcher.handle("control", listing)
    assert transport.reply_to(listing) == {"status": "ok", "subshell_id": [subshell_id]}
    delete = request("delete_subshell_request", {"subshell_id": subshell_id})
    dispatcher.handle("control", delete)
    assert transport.reply_to(delete) == {"status": "ok"}
    again = request("delete_subshell_request", {"subshell_id": subshell_id})
    dispatcher.handle("control", again)
    assert transport.reply_to(again)["ename"] == "SubshellNotFound"
    bad = request("delete_subshell_request", {})
    dispatcher.handle("control", bad)
    assert transport.reply_to(bad)["ename"] == "BadRequest"


def test_a_kernel_without_subshells_says_so() -> None:
    class Single(Probe):
        supports_subshells = False

    _, transport, dispatcher = setup(Single())
    create = request("create_subshell_request")
    dispatcher.handle("control", create)
    assert transport.reply_to(create)["ename"] == "SubshellsNotSupported"
    info = request("kernel_info_request")
    dispatcher.handle("shell", info)
    assert "kernel subshells" not in transport.reply_to(info)["supported_features"]


def test_rejected_requests_get_one_error_reply() -> None:
    _, transport, dispatcher = setup()
    msg = execute("x", subshell_id="nope")
    dispatcher.reject("shell", msg, "SubshellNotFound", "no subshell with id 'nope'")
    assert transport.reply_to(msg)["ename"] == "SubshellNotFound"
    assert transport.statuses(msg) == ["busy", "idle"]


def test_hooks_of_a_non_concurrent_kernel_take_turns() -> None:
    """A subshell's request for a hook waits while the main shell's hook runs."""
    kernel, transport, dispatcher = setup()
    order: list[str] = []
    main_running, finish_main = threading.Event(), threading.Event()

    def main_cell() -> Any:
        main_running.set()
        finish_main.wait(5)
        order.append("main")
        return dict(OK)

    kernel.actions = {"main": main_cell, "sub": lambda: (order.append("sub"), dict(OK))[1]}
    t1 = threading.Thread(target=dispatcher.handle, args=("shell", execute("main")))
    t1.start()
    assert main_running.wait(5)
    sub_msg = execute("sub", subshell_id="s1")
    busy_seen = threading.Event()
    transport.on_send = lambda s: busy_seen.set() if s.parent is sub_msg else None
    t2 = threading.Thread(target=dispatcher.handle, args=("shell", sub_msg))
    t2.start()
    # The subshell's request is bracketed (busy) at once, but its hook waits.
    assert busy_seen.wait(5)
    assert order == []
    finish_main.set()
    t1.join(5)
    t2.join(5)
    assert order == ["main", "sub"]
