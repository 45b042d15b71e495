"""What the scenarios share: the kernels they run and the request rounds they check."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

from raw import (
    SUPPORT,
    Client,
    stdout_text,
)

from kernelkit.droplog import TOTALS
from kernelkit.wire import Message

from .report import Result

# Kernels the scenarios run: arguments after ``python -m kernelkit``; {cf} is the connection file.
ECHO = ["run", "echo", "-f", "{cf}"]
COMMANDS = ["run", "kk_testkernels:CommandKernel", "-f", "{cf}"]
FAULTY_BRIDGE = ["bridge", "-f", "{cf}", "--", sys.executable, str(SUPPORT / "fault_backend.py")]


TOTALS_PREFIX = TOTALS.partition("{")[0]


def dropped_in_all(log: str) -> Counter[str]:
    """Drops per channel as the kernel counted them, from the totals it logs as it closes.

    (kernelkit.droplog counts every drop where it happens; the count crosses the process
    boundary once, in that one line, instead of being rebuilt from the rate-limited lines.)
    """
    counts: Counter[str] = Counter()
    for ln in log.splitlines():
        text = ln.partition("] ")[2]
        if text.startswith(TOTALS_PREFIX):
            counts = Counter()  # the last one counts (one per kernel process)
            for part in text[len(TOTALS_PREFIX):].split(", "):
                channel, _, n = part.rpartition(" ")
                counts[channel] = int(n.replace(",", ""))
    return counts


def started(client: Client, msg_id: str) -> bool:
    """Whether the code of msg_id has printed "started" (so it surely runs)."""
    return client.iopub is not None and "started" in stdout_text(client.iopub.messages(msg_id))


def has_output(client: Client, msg_id: str) -> bool:
    """Whether IOPub has shown anything for msg_id (its busy status, at least)."""
    return client.iopub is not None and bool(client.iopub.messages(msg_id))


def run_and_check(client: Client, code: str, expect_out: str | None, result: Result,
                  timeout: float = 60, **content: Any) -> Message | None:
    """Execute code; check the reply is ok and (if given) the stdout it printed."""
    try:
        msg_id = client.execute(code, **content)
        reply = client.reply(msg_id, timeout=timeout)
        msgs = client.iopub.wait_idle(msg_id, timeout) if client.iopub else []
    except TimeoutError as exc:
        result.check(False, f"execute {code[:40]!r}: {exc}")
        return None
    result.check(reply.content.get("status") == "ok",
                 f"execute {code[:40]!r} replied {reply.content.get('status')}")
    if expect_out is not None and client.iopub is not None:
        out = stdout_text(msgs)
        result.check(out == expect_out, f"execute {code[:40]!r} printed {out[:80]!r}")
    return reply


def answered_correctly(client: Client, result: Result, timeout: float = 60) -> int:
    """A battery of valid requests on shell and control, each checked; returns how many."""
    n = 0
    checks: list[tuple[str, str, dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
        ("shell", "kernel_info_request", {}, lambda c: c.get("protocol_version") == "5.5"),
        ("control", "kernel_info_request", {}, lambda c: c.get("status") == "ok"),
        ("shell", "complete_request", {"code": "prin", "cursor_pos": 4},
         lambda c: c.get("matches") == ["print"]),
        ("shell", "inspect_request", {"code": "x", "cursor_pos": 1, "detail_level": 0},
         lambda c: c.get("status") == "ok" and c.get("found") is False),
        ("shell", "is_complete_request", {"code": "x"}, lambda c: c.get("status") == "unknown"),
        ("shell", "history_request", {"hist_access_type": "tail", "n": 3, "output": False,
                                      "raw": True}, lambda c: c.get("history") == []),
        ("shell", "comm_info_request", {}, lambda c: c.get("comms") == {}),
        ("control", "comm_info_request", {}, lambda c: c.get("comms") == {}),
    ]
    for channel, msg_type, content, ok in checks:
        try:
            msg_id = client.send(channel, msg_type, content)
            reply = client.reply(msg_id, channel, timeout)
        except TimeoutError as exc:
            result.check(False, f"{msg_type} on {channel}: {exc}")
            continue
        expected_type = msg_type.replace("_request", "_reply")
        result.check(reply.msg_type == expected_type and ok(reply.content),
                     f"{msg_type} on {channel} answered {reply.msg_type} {reply.content}")
        n += 1
    if "stdin" in client.sockets:
        n += input_round(client, "final answer", result, timeout)
    return n


def input_round(client: Client, value: str, result: Result, timeout: float = 60,
                during: Callable[[Message], None] | None = None) -> int:
    """execute ``input ?`` → input_request → (``during``) → input_reply; checks the echo."""
    try:
        msg_id = client.execute("input ?", allow_stdin=True)
        request = client.recv("stdin", timeout)
        if request is None or request.msg_type != "input_request":
            result.check(False, f"no input_request on stdin, got {request}")
            return 0
        if during is not None:
            during(request)
        client.send("stdin", "input_reply", {"value": value}, parent=request.header)
        reply = client.reply(msg_id, timeout=timeout)
        msgs = client.iopub.wait_idle(msg_id, timeout) if client.iopub else []
    except TimeoutError as exc:
        result.check(False, f"input round: {exc}")
        return 0
    result.check(reply.content.get("status") == "ok", f"input round replied {reply.content}")
    if client.iopub is not None:
        got = stdout_text(msgs)
        result.check(got == f"got:{value}", f"input round printed {got!r}, not got:{value}")
    return 1
