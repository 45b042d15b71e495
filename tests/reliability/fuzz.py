"""The live fuzzer: hostile messages by the ten thousand on shell, control and stdin."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
from raw import (
    Client,
    KernelProcess,
    heartbeat_ok,
    zmq_context,
)

from kernelkit.wire import DELIMITER, Message, Session

from .common import (
    COMMANDS,
    answered_correctly,
    dropped_in_all,
    input_round,
    run_and_check,
)
from .report import Result

# -- 1. the live fuzzer ------------------------------------------------------------------------


@dataclass
class Hostile:
    category: str
    frames: list[bytes]
    # drop: refused by the wire layer (counted as dropped); reply: an error reply;
    # ok: an ok reply (odd but harmless header fields); ignore: no reply, nothing runs.
    outcome: str
    msg_id: str | None = None


def _nest(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


class Fuzzer:
    """Makes hostile messages. Every execute_request in them would print PWNED if it ran."""

    STRUCTURAL = ("frame_count", "no_delimiter", "not_json", "not_object", "bad_header",
                  "invalid_utf8", "deep_nesting", "huge")
    SIGNED_ONLY = ("bad_signature", "unsigned", "replay")
    AUTHENTIC = ("unknown_type", "mistyped_content")

    def __init__(self, rng: random.Random, key: bytes, huge_max: int) -> None:
        self.rng = rng
        self.key = key
        self.session = Session(key)
        self.other = Session(b"not-" + key)
        self.huge_max = huge_max
        self.n = 0
        self.captured: list[list[bytes]] = []  # genuine messages already sent, for replays

    # helpers

    def _id(self) -> str:
        self.n += 1
        return f"hostile-{self.n}"

    def sign(self, parts: list[bytes]) -> bytes:
        if not self.key:
            return b""
        return hmac.new(self.key, b"".join(parts), hashlib.sha256).hexdigest().encode()

    def signed(self, parts: list[bytes], buffers: tuple[bytes, ...] = ()) -> list[bytes]:
        return [DELIMITER, self.sign(parts), *parts, *buffers]

    def header(self, msg_type: str = "execute_request", **extra: Any) -> dict[str, Any]:
        h: dict[str, Any] = self.session.header(msg_type)
        h["msg_id"] = self._id()
        h.update(extra)
        return h

    def payload(self) -> dict[str, Any]:
        return {"code": f"print PWNED-{self.n}", "silent": False, "store_history": True,
                "user_expressions": {}, "allow_stdin": False}

    def parts(self, header: dict[str, Any] | None = None,
              content: dict[str, Any] | None = None) -> list[bytes]:
        h = header if header is not None else self.header()
        return [json.dumps(h).encode(), b"{}", b"{}",
                json.dumps(content if content is not None else self.payload()).encode()]

    def valid(self) -> tuple[str, list[bytes]]:
        header = self.header()
        return header["msg_id"], self.signed(self.parts(header))

    # categories

    def make(self, category: str, channel: str) -> Hostile:
        maker: Callable[[str], Hostile] = getattr(self, f"_{category}")
        return maker(channel)

    def _frame_count(self, channel: str) -> Hostile:
        msg_id, frames = self.valid()
        r = self.rng.random()
        if r < 0.5:  # the delimiter and 0-4 of the frames after it
            cut = frames[: 1 + self.rng.randrange(5)]
        elif r < 0.8:  # one of the four JSON frames missing
            i = 2 + self.rng.randrange(4)
            cut = frames[:i] + frames[i + 1 :]
        else:  # routing frames but nothing after the delimiter
            cut = [os.urandom(5), DELIMITER]
        return Hostile("frame_count", cut, "drop", msg_id)

    def _no_delimiter(self, channel: str) -> Hostile:
        msg_id, frames = self.valid()
        r = self.rng.random()
        if r < 0.4:
            frames = frames[1:]
        elif r < 0.7:
            frames = [self.rng.choice([b"<IDS|MSG >", b"<ids|msg>", b"IDS|MSG", b"<IDS|MSG>\x00",
                                       b""]), *frames[1:]]
        else:
            count = self.rng.randrange(1, 9)
            frames = [os.urandom(self.rng.randrange(0, 64)) for _ in range(count)]
        return Hostile("no_delimiter", frames, "drop", msg_id)

    def _not_json(self, channel: str) -> Hostile:
        garbage = self.rng.choice([
            b"", b"{", b"}", b"{'msg_id': 'x'}", b"undefined", b'{"a":1}trailing', b'{"a":}',
            b"{\"a\": 1,}", b"NaN", b"\x00\x01\x02", b"<html>", b'{"a" 1}', b"[1, 2",
            os.urandom(self.rng.randrange(1, 200)).replace(b"{", b"(").replace(b"[", b"("),
        ])
        parts = self.parts()
        msg_id = json.loads(parts[0])["msg_id"]
        parts[self.rng.randrange(4)] = garbage
        return Hostile("not_json", self.signed(parts), "drop", msg_id)

    def _not_object(self, channel: str) -> Hostile:
        value = self.rng.choice([b"[]", b"[1, 2, 3]", b'"a string"', b"42", b"-1.5", b"true",
                                 b"null", b'[{"msg_id": "x", "msg_type": "execute_request"}]'])
        parts = self.parts()
        msg_id = json.loads(parts[0])["msg_id"]
        parts[self.rng.randrange(4)] = value
        return Hostile("not_object", self.signed(parts), "drop", msg_id)

    def _bad_header(self, channel: str) -> Hostile:
        h = self.header()
        msg_id = h["msg_id"]
        r = self.rng.randrange(12)
        bad: bytes | None = None
        outcome = "drop"
        if r == 0:
            del h["msg_id"]
        elif r == 1:
            del h["msg_type"]
        elif r == 2:
            h["msg_id"] = self.rng.choice([7, None, ["x"], {"id": "x"}, 1.5, True])
        elif r == 3:
            h["msg_type"] = self.rng.choice([7, None, ["execute_request"], {}, "", False])
        elif r == 4:
            h = {}
        elif r in (5, 6):  # numbers JSON cannot send back (the reply echoes the header)
            bad = json.dumps(h).encode()[:-1] + self.rng.choice(
                [b', "date": NaN}', b', "x": Infinity}', b', "x": -Infinity}', b', "x": 1e999}'])
        elif r == 7:
            h["x"] = json.loads(_nest(self.rng.randrange(33, 900)))
        elif r == 8:  # just too deep for the reply to encode it again, if it were accepted
            deep = _nest(self.rng.randrange(950, 995))
            bad = json.dumps(h).encode()[:-1] + b', "x": ' + deep + b"}"
        else:  # odd types in fields the kernel does not need: answered, as jupyter_client would
            h["msg_type"] = "kernel_info_request"
            field_name = self.rng.choice(["session", "username", "date", "version"])
            h[field_name] = self.rng.choice([5, None, [1], {"a": "b"}, "", "\u2603" * 100])
            outcome = "ok"
        parts = self.parts(h)
        if bad is not None:
            parts[0] = bad
        if channel == "stdin" and outcome == "ok":
            outcome = "ignore"  # a kernel_info_request on stdin is only logged
        return Hostile("bad_header", self.signed(parts), outcome, msg_id)

    def _invalid_utf8(self, channel: str) -> Hostile:
        seq = self.rng.choice([b"\xff", b"\xfe\xff", b"\xc0\x80", b"\xc3\x28", b"\x80",
                               b"\xe2\x82", b"\xf8\x88\x80\x80\x80", b"\xa0\xa1"])
        h = self.header()
        parts = self.parts(h)
        i = self.rng.randrange(4)
        if i == 0:
            parts[0] = json.dumps(h).encode()[:-1] + b', "u": "' + seq + b'"}'
        elif i == 3:
            parts[3] = b'{"code": "print PWNED ' + seq + b'", "silent": false}'
        else:
            parts[i] = b'{"s": "' + seq + b'"}'
        return Hostile("invalid_utf8", self.signed(parts), "drop", h["msg_id"])

    def _deep_nesting(self, channel: str) -> Hostile:
        h = self.header()
        parts = self.parts(h)
        depth = self.rng.choice([2_000, 20_000, 200_000])
        i = self.rng.randrange(4)
        if i == 0:
            parts[0] = json.dumps(h).encode()[:-1] + b', "x": ' + _nest(depth) + b"}"
        else:
            parts[i] = b'{"x": ' + _nest(depth) + b"}"
        return Hostile("deep_nesting", self.signed(parts), "drop", h["msg_id"])

    def _huge(self, channel: str) -> Hostile:
        size = self.rng.randrange(1 << 20, self.huge_max + 1)
        h = self.header()
        r = self.rng.randrange(4)
        if r == 0:  # a huge garbage frame where a signature should be checked
            frames = [DELIMITER, b"0" * 64, os.urandom(size), b"{}", b"{}", b"{}"]
        elif r == 1:  # signed, huge non-JSON content
            parts = self.parts(h)
            parts[3] = b"{" + b"x" * size
            frames = self.signed(parts)
        elif r == 2:  # signed, huge JSON that is not an object
            parts = self.parts(h)
            parts[3] = b'["' + b"y" * size + b'"]'
            frames = self.signed(parts)
        else:  # no delimiter at all, just a lot of bytes
            frames = [b"z" * size]
        return Hostile("huge", frames, "drop", h["msg_id"])

    def _bad_signature(self, channel: str) -> Hostile:
        msg_id, frames = self.valid()
        good = frames[1]
        r = self.rng.randrange(7)
        if r == 0:
            sig = os.urandom(32).hex().encode()
        elif r == 1:  # one hex digit changed
            i = self.rng.randrange(len(good))
            sig = good[:i] + (b"0" if good[i : i + 1] != b"0" else b"1") + good[i + 1 :]
        elif r == 2:
            sig = self.other.signer.sign(frames[2:6])
        elif r == 3:
            sig = hmac.new(self.key, b"".join(frames[2:6]), hashlib.sha512).hexdigest().encode()
        elif r == 4:
            sig = good.upper()
        elif r == 5:  # the signature of another genuine message
            sig = self.valid()[1][1]
        else:
            sig = good + b" "
        return Hostile("bad_signature", [DELIMITER, sig, *frames[2:]], "drop", msg_id)

    def _unsigned(self, channel: str) -> Hostile:
        msg_id, frames = self.valid()
        return Hostile("unsigned", [DELIMITER, b"", *frames[2:]], "drop", msg_id)

    def _replay(self, channel: str) -> Hostile:
        frames = self.rng.choice(self.captured)
        i = frames.index(DELIMITER)
        msg_id = json.loads(frames[i + 2])["msg_id"]
        return Hostile("replay", list(frames), "drop", f"replay:{msg_id}")

    def _unknown_type(self, channel: str) -> Hostile:
        r = self.rng.random()
        if r < 0.5:
            name = "".join(self.rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(
                self.rng.randrange(1, 24))) + "_request"
        elif r < 0.6:
            name = self.rng.choice(["\u00fcber_request", "\u2603" * 50, "x" * 5000 + "_request"])
        else:
            name = self.rng.choice(["execute_reply", "status", "stream", "execute_result",
                                    "iopub_welcome", "input_request", "shutdown_reply",
                                    "comm_close", "display_data", "error", "debug_event",
                                    "kernel_info_reply", "input_reply_", "frobnicate"])
        h = self.header(name)
        frames = self.signed(self.parts(h))
        if channel == "stdin":
            outcome = "ignore"
        else:
            outcome = "reply" if name.endswith("_request") else "ignore"
        return Hostile("unknown_type", frames, outcome, h["msg_id"])

    def _mistyped_content(self, channel: str) -> Hostile:
        msg_type = self.rng.choice(["execute_request", "execute_request", "complete_request",
                                    "inspect_request", "is_complete_request"])
        code = self.rng.choice([7, None, ["print PWNED"], {"code": "print PWNED"}, 1.5, True])
        content = {**self.payload(), "code": code, "cursor_pos": self.rng.choice([3, "3", None])}
        h = self.header(msg_type)
        outcome = "ignore" if channel == "stdin" else "reply"
        return Hostile("mistyped_content", self.signed(self.parts(h, content)), outcome,
                       h["msg_id"])

    def misdirected_input_reply(self) -> Hostile:
        """Signed input_reply answering a request that was never made (stdin only)."""
        h = self.header("input_reply")
        parent = self.header("input_request")
        parts = [json.dumps(h).encode(), json.dumps(parent).encode(), b"{}",
                 json.dumps({"value": "PWNED"}).encode()]
        return Hostile("misdirected_input", self.signed(parts), "silent", h["msg_id"])


def fuzz(total: int = 10_000, seed: int = 5, huge_max: int = 16 << 20,
         signed: bool = True, transport: str = "tcp") -> Result:
    """Send ``total`` hostile messages over shell, control and stdin of a live kernel.

    Checks: no hostile message runs anything (execution_count and every IOPub message are
    accounted for, and no output says PWNED), every message the wire layer must refuse is
    counted as dropped exactly once (by the kernel, which logs its totals as it shuts down),
    the others get exactly the reply the spec asks for, the kernel stays up, and genuine
    requests interleaved with and sent after the hostile ones are all answered correctly.
    """
    title = "Live fuzzer" if signed else "Live fuzzer, unsigned kernel (key '')"
    if transport != "tcp":
        title += f" over {transport}"
    result = Result("fuzz" if signed else "fuzz_unsigned", title)
    t0 = time.monotonic()
    rng = random.Random(seed)
    categories = list(Fuzzer.STRUCTURAL) + (list(Fuzzer.SIGNED_ONLY) if signed else [])
    categories += list(Fuzzer.AUTHENTIC)
    weights = {c: 1.0 for c in categories}
    weights["huge"] = 0.04
    weights["deep_nesting"] = 0.3
    channel_weights = {"shell": 0.45, "control": 0.35, "stdin": 0.20}
    with tempfile.TemporaryDirectory(prefix="kk-fuzz-") as tmp, zmq_context() as ctx:
        key = os.urandom(16).hex() if signed else ""
        kernel = KernelProcess(COMMANDS, Path(tmp), key=key, transport=transport)
        client = Client(ctx, kernel)
        try:
            _fuzz_run(result, kernel, client, rng, total, categories, weights, channel_weights,
                      huge_max, signed)
        finally:
            client.close()
            kernel.kill()
    result.seconds = time.monotonic() - t0
    return result


def _fuzz_run(result: Result, kernel: KernelProcess, client: Client, rng: random.Random,
              total: int, categories: list[str], weights: dict[str, float],
              channel_weights: dict[str, float], huge_max: int, signed: bool) -> None:
    client.wait_ready()
    fz = Fuzzer(rng, kernel.key.encode(), huge_max)
    genuine_executes = 0

    # Genuine traffic first, captured for replays.
    def capture(channel: str, msg_type: str, content: dict[str, Any]) -> None:
        msg_id, frames = client.frames(msg_type, content)
        client.sockets[channel].send_multipart(frames)
        fz.captured.append(frames)
        client.reply(msg_id, channel)

    capture("shell", "execute_request", {"code": "print captured", "silent": False})
    genuine_executes += 1
    capture("shell", "kernel_info_request", {})
    capture("control", "kernel_info_request", {})
    capture("shell", "complete_request", {"code": "pr", "cursor_pos": 2})

    msg_id = client.execute("input ?", allow_stdin=True)
    request = client.recv("stdin", 60)
    assert request is not None
    _, input_frames = client.frames("input_reply", {"value": "captured"}, parent=request.header)
    client.sockets["stdin"].send_multipart(input_frames)
    fz.captured.append(input_frames)
    client.reply(msg_id)
    genuine_executes += 1
    captured_ids = [json.loads(f[f.index(DELIMITER) + 2])["msg_id"] for f in fz.captured]

    plan = [
        (rng.choices(list(channel_weights), list(channel_weights.values()))[0],
         rng.choices(categories, [weights[c] for c in categories])[0])
        for _ in range(total)
    ]
    sent: list[tuple[str, Hostile]] = []
    stdin_batch: list[Hostile] = []
    genuine = 0
    chunk = 200

    def flush_stdin() -> None:
        nonlocal genuine, genuine_executes
        if not stdin_batch:
            return
        batch = list(stdin_batch)
        stdin_batch.clear()
        if signed:  # answers to input requests nobody made: must not be taken as the answer
            batch += [fz.misdirected_input_reply() for _ in range(max(1, len(batch) // 20))]
            rng.shuffle(batch)

        def during(request: Message) -> None:
            for h in batch:
                client.sockets["stdin"].send_multipart(h.frames)
                h.frames = []  # sent: only what it was is kept
                sent.append(("stdin", h))

        genuine += input_round(client, f"answer-{genuine}", result, during=during)
        genuine_executes += 1

    for start in range(0, len(plan), chunk):
        for channel, category in plan[start : start + chunk]:
            h = fz.make(category, channel)
            if channel == "stdin":
                stdin_batch.append(h)
                continue
            client.sockets[channel].send_multipart(h.frames)
            h.frames = []
            sent.append((channel, h))
        # Genuine requests behind the hostile ones, on the same sockets: answered correctly?
        genuine_executes += 1
        code = f"genuine-{genuine_executes}"
        reply = run_and_check(client, code, code, result)
        if reply is not None:
            count = reply.content.get("execution_count")
            result.check(count == genuine_executes,
                         f"execution_count {count} after {genuine_executes} genuine executes")
            genuine += 1
        msg_id = client.send("control", "kernel_info_request", {})
        try:
            info = client.reply(msg_id, "control")
            result.check(info.content.get("implementation") == "commands",
                         f"control kernel_info: {info.content}")
            genuine += 1
        except TimeoutError as exc:
            result.check(False, f"control probe: {exc}")
        if len(stdin_batch) >= chunk // 2 or start + chunk >= len(plan):
            flush_stdin()
        if not result.check(kernel.alive(), f"kernel died: {kernel.stderr()[-3000:]}"):
            return

    # After everything: a battery of valid requests, and the execution count.
    genuine += answered_correctly(client, result)
    genuine_executes += 2  # the battery's input round, and count itself
    genuine += 1
    reply = run_and_check(client, "count", str(genuine_executes), result)
    result.check(reply is not None, "count did not answer")
    client.drain("shell")
    client.drain("control")
    result.check(heartbeat_ok(zmq.Context.instance(), kernel), "heartbeat did not answer")
    result.check(kernel.alive(), "kernel is not running at the end")
    _fuzz_verdict(result, kernel, client, sent, genuine, captured_ids)


def _fuzz_verdict(result: Result, kernel: KernelProcess, client: Client,
                  sent: list[tuple[str, Hostile]], genuine: int, captured: list[str]) -> None:
    assert client.iopub is not None
    # The genuine messages that were replayed were answered once and ran once.
    for msg_id in captured:
        again = client.replies.get(msg_id, [])
        result.check(not again, f"replayed {msg_id} was answered again")
        states = [m for m in client.iopub.messages(msg_id) if m.msg_type == "status"]
        result.check(len(states) in (0, 2), f"replayed {msg_id} ran again: {len(states)} statuses")
    by_cat: Counter[str] = Counter()
    by_channel: Counter[str] = Counter()
    expected_drops: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for channel, h in sent:
        by_cat[h.category] += 1
        by_channel[channel] += 1
        outcomes[h.outcome] += 1
        if h.outcome == "drop":
            expected_drops[channel] += 1
        mid = h.msg_id or ""
        replies = client.replies.get(mid, [])
        iopub = client.iopub.messages(mid)
        if h.outcome in ("reply", "ok"):
            status = "ok" if h.outcome == "ok" else "error"
            result.check(len(replies) == 1 and replies[0].content.get("status") == status,
                         f"{h.category} on {channel} ({mid}) expected one {status} reply, got "
                         f"{[r.content for r in replies]}")
        else:
            result.check(not replies, f"{h.category} on {channel} ({mid}) was answered: "
                                      f"{[r.content for r in replies]}")
        if h.outcome in ("drop", "silent") or channel == "stdin":
            result.check(not iopub, f"{h.category} on {channel} ({mid}) caused IOPub "
                                    f"{[m.msg_type for m in iopub]}")
        else:  # accepted: busy and idle around it, and never an execute_input or output
            kinds = [m.msg_type for m in iopub]
            result.check(kinds.count("status") == 2 and "execute_input" not in kinds
                         and "stream" not in kinds,
                         f"{h.category} on {channel} ({mid}) caused IOPub {kinds}")
    # Nothing hostile ever ran: no output anywhere says PWNED.
    with client.iopub.cond:
        every = [m for msgs in client.iopub.by_parent.values() for m in msgs]
    pwned = [m for m in every if "PWNED" in json.dumps(m.content)]
    result.check(not pwned, f"hostile code ran: {[m.content for m in pwned[:3]]}")
    # Every refused message was counted as dropped, once, on its own channel. The kernel
    # counts each drop where it happens and writes the totals as it closes, so the kernel is
    # shut down here (still up until now: that is a figure too) and its exit awaited.
    still_up = kernel.alive()
    try:
        client.reply(client.send("control", "shutdown_request", {"restart": False}), "control")
        exit_code: int | None = kernel.proc.wait(30)
    except (TimeoutError, subprocess.TimeoutExpired) as exc:
        exit_code = None
        result.check(False, f"the kernel did not shut down after the fuzzing: {exc}")
    result.check(exit_code in (0, None), f"the kernel exited with {exit_code} at shutdown")
    log = kernel.stderr()
    logged = dropped_in_all(log)
    for channel in ("shell", "control", "stdin"):
        result.check(logged[channel] == expected_drops[channel],
                     f"{channel}: {expected_drops[channel]} messages should have been dropped, "
                     f"the kernel counted {logged[channel]}")
    for bad in ("Traceback", "internal error", "could not be parsed"):
        result.check(bad not in log, f"kernel stderr has {bad!r}: {log[-2000:]}")
    result.check(client.unparsable == 0 and client.iopub.bad == 0,
                 "the kernel sent messages the client could not authenticate")
    result.figures["hostile messages sent"] = len(sent)
    result.figures["by channel"] = dict(sorted(by_channel.items()))
    result.figures["by kind"] = dict(sorted(by_cat.items(), key=lambda kv: -kv[1]))
    result.figures["refused by the wire layer (counted as dropped)"] = sum(logged.values())
    result.figures["answered with an error reply (authentic, unknown or mistyped)"] = (
        outcomes["reply"])
    result.figures["answered ok (authentic, odd header fields)"] = outcomes["ok"]
    result.figures["accepted and ignored (authentic, not requests)"] = (
        outcomes["ignore"] + outcomes["silent"])
    result.figures["hostile messages that ran anything"] = len(pwned)
    result.figures["genuine requests among and after them, all answered correctly"] = genuine
    result.figures["kernel still up"] = still_up
