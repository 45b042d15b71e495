"""The conformance checks, by group, and the harness that runs them against one kernel.

The harness launches the kernelspec with jupyter_client's ``KernelManager`` (as
Jupyter does: same argv, environment, process group and interrupt mode) and
talks to it with ``client.Client``. Each check is a function that returns a
short reason when it passes and raises ``Fail`` or ``Skip`` otherwise; any
message that broke the spec while a check ran fails that check too. Between
checks the harness makes sure the kernel still answers, and restarts it when it
does not, so that one defect does not hide the rest.

Why one file of ~1,400 lines: the checks register in definition order, which is the
order they run in (lifecycle's restart and shutdown last), and the harness they share
lives here too. Splitting it into a module per group, with the harness on its own, is
the checker's part of issue "The checker and the test suite in the engine's shape".
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import signal
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import zmq

from . import schema
from .client import DELIMITER, Client, Msg, Request, Violation
from .samples import Samples

if TYPE_CHECKING:
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import KernelManager
    from jupyter_client.session import Session

GROUPS = (
    "kernel_info",
    "execute",
    "introspection",
    "stdin",
    "interrupt",
    "control",
    "subshells",
    "comms",
    "heartbeat",
    "security",
    "lifecycle",
)
# The newest protocol version this checker knows the rules of.
LATEST_PROTOCOL = (5, 5)
# After a kernel went idle, how long its reply may still take to arrive (s).
REPLY_AFTER_IDLE_GRACE = 2.0
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# The value the stdin check types in.
INPUT_TOKEN = "kernelkit-check-7c1e"


class Fail(Exception):
    """The check failed; the message says why."""


class Skip(Exception):
    """The check does not apply; the message says why."""


class KernelGone(Exception):
    """The kernel cannot be started or restarted: the remaining checks cannot run."""


@dataclass
class Result:
    name: str
    group: str
    result: str  # "pass", "fail" or "skip"
    reason: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "group": self.group,
            "result": self.result,
            "reason": self.reason,
            "time": round(self.seconds, 3),
        }


@dataclass
class CheckDef:
    name: str
    title: str
    func: Callable[[Harness], str | None]

    @property
    def group(self) -> str:
        return self.name.split(".", 1)[0]


REGISTRY: list[CheckDef] = []


def check(name: str, title: str) -> Callable[[Callable[[Harness], str | None]],
                                            Callable[[Harness], str | None]]:
    """Register a check; checks run in the order they are defined."""

    def register(func: Callable[[Harness], str | None]) -> Callable[[Harness], str | None]:
        assert name.split(".", 1)[0] in GROUPS, name
        REGISTRY.append(CheckDef(name, title, func))
        return func

    return register


class Progress(Protocol):
    def begin(self, kernel: str, total: int) -> None: ...

    def start(self, name: str) -> None: ...

    def done(self, result: Result) -> None: ...

    def note(self, text: str) -> None: ...

    def end(self) -> None: ...


@dataclass
class Report:
    kernel: str
    display_name: str = ""
    language: str = ""
    interrupt_mode: str = ""
    samples: str = "none"
    kernel_info: dict[str, Any] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    messages: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # restarts between checks, and why

    def counts(self) -> dict[str, int]:
        out = {"pass": 0, "fail": 0, "skip": 0}
        for r in self.results:
            out[r.result] += 1
        return out

    @property
    def failed(self) -> bool:
        return any(r.result == "fail" for r in self.results)


def _short(value: Any, limit: int = 60) -> str:
    return schema.short(value, limit)


def _error_text(content: dict[str, Any]) -> str:
    return f"{content.get('ename')}: {_short(content.get('evalue'), 80)}"


def execute_content(code: str, *, silent: bool = False, store_history: bool = True,
                    user_expressions: dict[str, str] | None = None, allow_stdin: bool = False,
                    stop_on_error: bool = True) -> dict[str, Any]:
    return {
        "code": code,
        "silent": silent,
        "store_history": store_history,
        "user_expressions": user_expressions or {},
        "allow_stdin": allow_stdin,
        "stop_on_error": stop_on_error,
    }


class Harness:
    """One kernel under test: its manager, a client, its samples and a reply timeout."""

    def __init__(self, kernel_name: str, samples: Samples, timeout: float,
                 startup_timeout: float) -> None:
        from jupyter_client.manager import KernelManager

        self.kernel_name = kernel_name
        self.samples = samples
        self.timeout = timeout
        self.startup_timeout = startup_timeout
        self.km: KernelManager = KernelManager(kernel_name=kernel_name)
        spec = self.km.kernel_spec  # raises NoSuchKernel for an unknown name
        assert spec is not None
        self.spec: KernelSpec = spec
        self.ctx: zmq.Context[Any] = zmq.Context()
        self._client: Client | None = None
        self.session: Session | None = None
        self.info: dict[str, Any] = {}
        self.violations: list[Violation] = []
        self.notes: list[str] = []
        self.wedged = False  # the kernel is known to be stuck: restart without asking
        self.current = "start"
        self.messages_before = 0  # messages received by clients already closed
        self._workdir = tempfile.TemporaryDirectory(prefix="kernelkit-check-")
        self.log_path = Path(self._workdir.name) / "kernel.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in close()
        self._log_from = 0  # where the running kernel's output starts in the log
        self.connections = 0  # kernel processes connected to so far (starts and restarts)
        self.comm_setup_in = 0  # the connection the [comm] sample's setup code ran in

    @property
    def client(self) -> Client:
        if self._client is None:
            raise KernelGone("the kernel is not running")
        return self._client

    @property
    def interrupt_mode(self) -> str:
        return str(self.spec.interrupt_mode)

    def violations_of(self, check: str) -> list[str]:
        return [v.problem for v in self.violations if v.check == check]

    @property
    def messages(self) -> int:
        return self.messages_before + (self._client.received if self._client else 0)

    # -- the kernel process ----------------------------------------------------------------

    def start(self) -> float:
        """Launch the kernel and wait until it answers; returns the seconds it took."""
        t0 = time.monotonic()
        self._mark_log()
        self.km.start_kernel(stdout=self._log, stderr=self._log, cwd=self._workdir.name)
        self.connect()
        self.wait_ready(t0)
        return time.monotonic() - t0

    def connect(self) -> None:
        from jupyter_client.session import Session

        if self._client is not None:
            self.messages_before += self._client.received
            self._client.close()
        info = self.km.get_connection_info(session=False)
        key = info["key"]
        self.session = Session(
            key=key if isinstance(key, bytes) else str(key).encode(),
            signature_scheme=str(info.get("signature_scheme", "hmac-sha256")),
            username="kernelkit-check",
        )
        self._client = Client(dict(info), self.session, self.ctx, self.violations)
        self._client.current = self.current
        self.connections += 1

    def wait_ready(self, t0: float) -> None:
        """Nudge with kernel_info_request until the kernel answers and IOPub is live."""
        self.client.quiet_repeats = True
        try:
            self._wait_ready(t0)
        finally:
            self.client.quiet_repeats = False
        left = max(1.0, t0 + self.startup_timeout - time.monotonic())
        missing = self.client.wait_connected(left)
        if missing:
            raise KernelGone(f"no connection on {', '.join(missing)} within "
                             f"{self.startup_timeout:.0f}s")

    def _wait_ready(self, t0: float) -> None:
        client = self.client
        deadline = t0 + self.startup_timeout
        answered_at: float | None = None
        nudges: list[Request] = []
        while True:
            if not self.alive():
                raise KernelGone(f"the kernel process exited{self.exit_info()}")
            now = time.monotonic()
            if now >= deadline:
                if answered_at is not None:
                    return  # it answers but publishes nothing: the checks will say so
                raise KernelGone(
                    f"no kernel_info_reply within {self.startup_timeout:.0f}s{self.log_tail()}"
                )
            nudges.append(client.send("shell", "kernel_info_request", strict=False))

            def ready() -> bool:
                replied = [r for r in nudges if r.reply is not None]
                return bool(replied) and (bool(client.welcomes) or any(r.iopub for r in nudges))

            client.wait(ready, min(0.3, deadline - now))
            replied = [r for r in nudges if r.reply is not None]
            if replied:
                reply = replied[0].reply
                assert reply is not None
                self.info = dict(reply.content)
                answered_at = answered_at or time.monotonic()
                if ready() or time.monotonic() - answered_at > 3.0:
                    return

    def alive(self) -> bool:
        return bool(self.km.is_alive())

    def pid(self) -> int | None:
        process = getattr(self.km.provisioner, "process", None)
        return getattr(process, "pid", None)

    def exit_info(self) -> str:
        process = getattr(self.km.provisioner, "process", None)
        code = process.poll() if process is not None else None
        where = f" with code {code}" if code is not None else ""
        return where + self.log_tail()

    def log_tail(self, limit: int = 300) -> str:
        """The last lines the kernel wrote to stdout/stderr, for reasons."""
        self._log.flush()
        try:
            data = self.log_path.read_bytes()[self._log_from :]
        except OSError:
            return ""
        lines = ANSI_ESCAPE.sub("", data.decode("utf-8", "replace")).splitlines()
        tail: list[str] = []
        for line in reversed([line.strip() for line in lines if line.strip()]):
            if sum(len(t) + 3 for t in tail) + len(line) > limit:
                break
            tail.insert(0, line)
        return f" (kernel output: {' | '.join(tail)})" if tail else ""

    def _mark_log(self) -> None:
        self._log.flush()
        self._log_from = self._log.tell()

    def restart(self) -> None:
        """Kill and start the kernel again (same connection), and reconnect."""
        self.wedged = False
        try:
            self._mark_log()
            self.km.restart_kernel(now=True)
            self.connect()
            self.wait_ready(time.monotonic())
        except KernelGone:
            raise
        except Exception as exc:
            raise KernelGone(f"the kernel could not be restarted: {exc}") from None

    def ensure_responsive(self) -> str | None:
        """Between checks: restart a kernel that died or stopped answering. Returns a note."""
        if self._client is None:
            return None
        if not self.alive():
            why = f"the kernel died{self.exit_info()}"
        elif self.wedged:
            why = "the kernel was left busy"
        else:
            req = self.client.send("shell", "kernel_info_request", strict=False)
            self.client.quiet_repeats = True
            try:
                if self.client.wait(lambda: req.reply is not None, self.timeout):
                    return None
            finally:
                self.client.quiet_repeats = False
            why = f"the kernel did not answer kernel_info within {self.timeout:.0f}s"
        self.restart()
        return f"{why}; restarted it"

    def close(self) -> None:
        if self._client is not None:
            self.messages_before += self._client.received
            self._client.close()
            self._client = None
        with contextlib.suppress(Exception):
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=True)
        with contextlib.suppress(Exception):
            self.km.cleanup_resources()
        self.ctx.destroy(linger=0)
        self._log.close()
        self._workdir.cleanup()

    # -- samples ---------------------------------------------------------------------------

    def need(self, name: str) -> dict[str, str]:
        sample = self.samples.get(name)
        if sample is None:
            raise Skip(f"no sample: {name}")
        return sample

    # -- requests --------------------------------------------------------------------------

    def execute(self, code: str, *, header: dict[str, Any] | None = None,
                **options: Any) -> Request:
        return self.client.send("shell", "execute_request", execute_content(code, **options),
                                header=header)

    def execute_two(self, first: dict[str, Any], second: dict[str, Any]) -> list[Request]:
        """Two execute_requests sent back to back (the second is queued behind the first)."""
        return self.client.send_many("shell", [("execute_request", first, None),
                                               ("execute_request", second, None)])

    def request(self, channel: str, msg_type: str, content: dict[str, Any] | None = None
                ) -> Request:
        return self.client.send(channel, msg_type, content or {})

    def finish(self, req: Request, timeout: float | None = None, need_idle: bool = True,
               optional: bool = False) -> Msg | None:
        """Wait for the reply to ``req`` and its idle status.

        Raises Fail saying what is missing; with ``optional``, a request that gets no
        reply at all returns None instead (the kernel does not implement it).
        """
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        client = self.client
        next_alive_check = time.monotonic() + 0.5
        while True:
            now = time.monotonic()
            if req.reply is not None and (req.idle_at is not None or not need_idle):
                return req.reply
            idle_for = now - req.idle_at if req.idle_at is not None else 0.0
            # busy comes before the reply: a reply with no busy after a grace means none.
            unbracketed = (req.reply is not None and req.busy_at is None
                           and now - req.reply.at > REPLY_AFTER_IDLE_GRACE)
            if (now >= deadline or unbracketed
                    or (req.reply is None and idle_for > REPLY_AFTER_IDLE_GRACE)):
                break
            if now >= next_alive_check:
                if not self.alive():
                    # What it sent before exiting may still be on its way in.
                    client.pump(0.2)
                    if req.reply is not None and (req.idle_at is not None or not need_idle):
                        return req.reply
                    self.check_alive()
                next_alive_check = now + 0.5
            client.pump(min(0.1, deadline - now))
        what = f"{req.msg_type} on {req.channel}"
        if req.reply is None:
            if optional:
                return None
            if req.idle_at is not None:
                raise Fail(f"no {req.reply_type}: the kernel went idle without replying to {what}")
            busy = " (it went busy)" if req.busy_at is not None else ""
            raise Fail(f"no {req.reply_type} within {timeout:.0f}s for {what}{busy}")
        if req.busy_at is None and req.idle_at is None:
            raise Fail(f"no status busy or idle on IOPub for {what} (the reply came)")
        raise Fail(f"no status idle within {timeout:.0f}s for {what}")

    def check_alive(self) -> None:
        if not self.alive():
            raise Fail(f"the kernel died{self.exit_info()}")

    def wait(self, condition: Callable[[], bool], timeout: float | None = None) -> bool:
        """Handle messages until ``condition()`` or the timeout; Fail if the kernel dies."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not condition():
            now = time.monotonic()
            if now >= deadline:
                return False
            self.check_alive()
            self.client.wait(condition, min(0.5, deadline - now))
        return True

    def run(self, code: str, expect: str | None = "ok", **kw: Any) -> tuple[Request, Msg]:
        """Execute and wait for the reply and idle; Fail unless the status is ``expect``."""
        req = self.execute(code, **kw)
        reply = self.finish(req)
        assert reply is not None
        status = reply.content.get("status")
        if expect is not None and status != expect:
            detail = f" ({_error_text(reply.content)})" if status == "error" else ""
            raise Fail(f"executing {_short(code, 30)} gave status {status!r}{detail}")
        return req, reply

    def count_of(self, reply: Msg) -> int:
        count = reply.content.get("execution_count")
        if not isinstance(count, int) or isinstance(count, bool):
            raise Fail(f"execute_reply execution_count is {_short(count)}")
        return count

    # -- busy kernels ----------------------------------------------------------------------

    def start_loop(self) -> Request:
        """Run the long-running sample until it says it started."""
        sample = self.need("long_running")
        req = self.execute(sample["code"])
        marker = sample.get("started")
        if marker:
            self.wait(lambda: marker in req.text() or req.reply is not None)
        else:
            self.wait(lambda: req.busy_at is not None or req.reply is not None)
            self.client.settle(1.0)
        if req.reply is not None:
            status = req.reply.content.get("status")
            detail = f": {_error_text(req.reply.content)}" if status == "error" else ""
            raise Fail(f"the long-running sample ended by itself (status {status}{detail})")
        if marker and marker not in req.text():
            self.wedged = True
            raise Fail(f"the long-running sample did not print {marker!r} "
                       f"within {self.timeout:.0f}s")
        return req

    def interrupt(self) -> Request | None:
        """Interrupt the kernel the way its kernelspec says (signal or message)."""
        if self.interrupt_mode == "message":
            return self.request("control", "interrupt_request")
        self.km.signal_kernel(signal.SIGINT)
        return None

    def stop_loop(self, req: Request) -> bool:
        """Interrupt the long-running sample; False (and wedged) if it keeps running."""
        self.interrupt()
        try:
            stopped = self.wait(lambda: req.reply is not None)
            if stopped:
                self.wait(lambda: req.idle_at is not None)
        except Fail:  # the kernel died of it
            stopped = False
        self.wedged = not stopped
        return stopped

    def probe_socket(self) -> str:
        """A second DEALER on shell, with an identity of its own, for hand-made frames."""
        name = "probe"
        if not self.client.has(name):
            identity = b"kernelkit-check-probe-" + os.urandom(4).hex().encode()
            self.client.add(name, self.client.socket(zmq.DEALER, "shell", identity=identity))
        return name


# ========================================================================================
# kernel_info


def _kernel_info(h: Harness, channel: str) -> str:
    reply = h.finish(h.request(channel, "kernel_info_request"))
    assert reply is not None
    c = reply.content
    if c.get("status") != "ok":
        raise Fail(f"kernel_info_reply status {c.get('status')!r}")
    lang = c.get("language_info", {}).get("name") if isinstance(c.get("language_info"),
                                                                 dict) else None
    return (f"{c.get('implementation')} {c.get('implementation_version')}, "
            f"protocol {c.get('protocol_version')}, language {lang}")


@check("kernel_info.shell", "kernel_info_request on shell: valid reply, busy/idle")
def kernel_info_shell(h: Harness) -> str:
    return _kernel_info(h, "shell")


@check("kernel_info.control", "kernel_info_request on control: valid reply, busy/idle")
def kernel_info_control(h: Harness) -> str:
    return _kernel_info(h, "control")


@check("kernel_info.protocol_version", "protocol_version is 5.x and matches the kernelspec")
def kernel_info_protocol(h: Harness) -> str:
    claimed = h.info.get("protocol_version")
    version = schema.parse_version(claimed)
    if version is None:
        raise Fail(f"protocol_version {_short(claimed)} is not a version")
    if version[0] != 5:
        raise Fail(f"protocol {claimed} is not 5.x, the protocol this checker speaks")
    latest = ".".join(map(str, LATEST_PROTOCOL))
    newer = f" (newer than {latest}, the latest this checker knows)" \
        if version > LATEST_PROTOCOL else ""
    declared = _kernelspec_json(h).get("kernel_protocol_version")
    if declared:
        if schema.parse_version(declared) != version:
            raise Fail(f"the kernelspec declares protocol {declared}, "
                       f"kernel_info_reply says {claimed}")
        return f"protocol {claimed}{newer}; the kernelspec declares the same"
    return f"protocol {claimed}{newer}; the kernelspec declares none"


def _kernelspec_json(h: Harness) -> dict[str, Any]:
    try:
        with open(os.path.join(h.spec.resource_dir, "kernel.json"), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@check("kernel_info.supported_features", "each claimed optional feature works")
def kernel_info_features(h: Harness) -> str:
    features = h.info.get("supported_features") or []
    if not isinstance(features, list):
        raise Fail(f"supported_features is {_short(features)}, not a list")
    claimed = [str(f) for f in features]
    if h.info.get("debugger") is True and "debugger" not in claimed:
        claimed.append("debugger")  # the deprecated flag claims the same
    if not claimed:
        return "no optional features claimed"
    notes = []
    for feature in claimed:
        if feature == "debugger":
            notes.append(_debugger(h))
        elif feature == "kernel subshells":
            notes.append(_subshells(h))
        else:
            notes.append(f"{feature!r}: not a feature this checker knows")
    return "; ".join(notes)


def _debugger(h: Harness) -> str:
    req = h.request("control", "debug_request",
                    {"type": "request", "seq": 1, "command": "debugInfo", "arguments": {}})
    reply = h.finish(req)
    assert reply is not None
    c = reply.content
    if c.get("success") is not True or c.get("command") != "debugInfo":
        raise Fail(f"'debugger' is claimed, but debug_request debugInfo got {_short(c, 120)}")
    return "debugger: debugInfo answered"


def _subshells(h: Harness) -> str:
    _subshells_claimed(h)
    return "kernel subshells: see the subshells checks"


def _subshells_claimed(h: Harness) -> None:
    if "kernel subshells" not in (h.info.get("supported_features") or []):
        raise Skip("the kernel does not claim 'kernel subshells'")


def _create_subshell(h: Harness) -> str:
    reply = h.finish(h.request("control", "create_subshell_request"))
    assert reply is not None
    sid = reply.content.get("subshell_id")
    if reply.content.get("status") != "ok" or not isinstance(sid, str):
        raise Fail(f"'kernel subshells' is claimed, but create_subshell_request got "
                   f"{_short(reply.content, 120)}")
    return sid


def _delete_subshell(h: Harness, sid: str) -> None:
    deleted = h.finish(h.request("control", "delete_subshell_request", {"subshell_id": sid}))
    assert deleted is not None
    if deleted.content.get("status") != "ok":
        raise Fail(f"delete_subshell_request got {_short(deleted.content, 120)}")


def _on_subshell(h: Harness, sid: str, msg_type: str, content: dict[str, Any]) -> Request:
    assert h.session is not None
    header = h.session.msg_header(msg_type)
    header["subshell_id"] = sid
    return h.client.send("shell", msg_type, content, header=header)


@check("subshells.lifecycle", "create, list and delete subshells (JEP 91)")
def subshells_lifecycle(h: Harness) -> str:
    _subshells_claimed(h)
    sid = _create_subshell(h)
    listed = h.finish(h.request("control", "list_subshell_request"))
    assert listed is not None
    if sid not in (listed.content.get("subshell_id") or []):
        raise Fail(f"list_subshell_reply does not list the new subshell {sid}")
    _delete_subshell(h, sid)
    listed = h.finish(h.request("control", "list_subshell_request"))
    assert listed is not None
    if sid in (listed.content.get("subshell_id") or []):
        raise Fail(f"the deleted subshell {sid} is still listed")
    return "created, listed, deleted"


@check("subshells.execute", "code runs on a subshell; reply and output carry its id")
def subshells_execute(h: Harness) -> str:
    _subshells_claimed(h)
    hello = h.need("hello")
    sid = _create_subshell(h)
    try:
        req = _on_subshell(h, sid, "execute_request", execute_content(hello["code"]))
        reply = h.finish(req)
        assert reply is not None
        if reply.content.get("status") != "ok":
            raise Fail(f"execute on a subshell gave {_short(reply.content, 120)}")
        if reply.parent_header.get("subshell_id") != sid:
            raise Fail("the execute_reply's parent_header has no subshell_id")
        if hello.get("output") and hello["output"] not in req.text():
            raise Fail(f"the subshell's output was {_short(req.text())}")
    finally:
        _delete_subshell(h, sid)
    return "ran the hello sample on a subshell"


@check("subshells.while_busy", "a subshell answers while the main shell is busy")
def subshells_while_busy(h: Harness) -> str:
    _subshells_claimed(h)
    sid = _create_subshell(h)
    loop = h.start_loop()
    try:
        req = _on_subshell(h, sid, "kernel_info_request", {})
        reply = h.finish(req)
        assert reply is not None
        if loop.reply is not None:
            raise Fail("the long-running sample ended before the subshell answered")
        took = reply.at - req.sent_at
    finally:
        stopped = h.stop_loop(loop)
        _delete_subshell(h, sid)
    note = "" if stopped else "; the sample could not be interrupted afterwards"
    return f"kernel_info on a subshell answered in {1000 * took:.0f} ms while busy{note}"


@check("subshells.unknown", "a request for an unknown subshell gets an error reply")
def subshells_unknown(h: Harness) -> str:
    _subshells_claimed(h)
    reply = h.finish(_on_subshell(h, "no-such-subshell", "kernel_info_request", {}))
    assert reply is not None
    if reply.content.get("status") != "error":
        raise Fail(f"an unknown subshell_id got {_short(reply.content, 120)}")
    return f"error {reply.content.get('ename')}"


# ========================================================================================
# lifecycle: iopub_welcome (restart and shutdown come last)


@check("lifecycle.iopub_welcome", "a new IOPub subscriber gets iopub_welcome (protocol >= 5.5)")
def lifecycle_welcome(h: Harness) -> str:
    # Both kernel_info_reply and the kernelspec's kernel_protocol_version are claims.
    claims = {
        "kernel_info_reply": h.info.get("protocol_version"),
        "the kernelspec": _kernelspec_json(h).get("kernel_protocol_version"),
    }
    claimed = {who: v for who, v in claims.items()
               if (schema.parse_version(v) or (0, 0)) >= (5, 5)}
    if not claimed:
        seen = " (one came anyway)" if h.client.welcomes else ""
        shown = ", ".join(f"{who} {v}" for who, v in claims.items() if v)
        raise Skip(f"protocol < 5.5 claimed ({shown}); iopub_welcome came with 5.5{seen}")
    claim = " and ".join(f"{who} says {v}" for who, v in claimed.items())
    client = h.client
    sock = client.socket(zmq.SUB, "iopub")
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    name = "iopub-welcome"
    client.add(name, sock)
    t0 = time.monotonic()
    try:
        got = h.wait(lambda: any(m.channel == name for m in client.welcomes))
        # A welcome for the subscription '' reaches every subscriber to '', this client's
        # own IOPub socket too: take that copy now, so that it is judged here.
        client.wait(lambda: any(m.channel == "iopub" and m.at >= t0 for m in client.welcomes),
                    1.0)
    finally:
        client.remove(name)
    if not got:
        raise Fail(f"{claim}, but a new IOPub subscriber got no iopub_welcome "
                   f"within {h.timeout:.0f}s")
    welcome = next(m for m in client.welcomes if m.channel == name)
    if welcome.content.get("subscription") != "":
        raise Fail(f"iopub_welcome subscription is {_short(welcome.content.get('subscription'))}"
                   ", the subscription was ''")
    return f"iopub_welcome {1000 * (welcome.at - t0):.0f} ms after subscribing"


# ========================================================================================
# execute


@check("execute.ok", "hello world: ok reply, execute_input, output")
def execute_ok(h: Harness) -> str:
    hello = h.need("hello")
    req, reply = h.run(hello["code"])
    count = h.count_of(reply)
    inputs = req.of_type("execute_input")
    if not inputs:
        raise Fail("no execute_input on IOPub")
    if inputs[0].content.get("code") != hello["code"]:
        raise Fail(f"execute_input code is {_short(inputs[0].content.get('code'))}")
    if inputs[0].content.get("execution_count") != count:
        raise Fail(f"execute_input execution_count {inputs[0].content.get('execution_count')} "
                   f"!= execute_reply's {count}")
    expected = hello.get("output")
    if expected is not None and expected not in req.text():
        raise Fail(f"output {_short(req.text())} does not contain {expected!r}")
    return f"execution_count {count}, output {_short(req.text().strip(), 40)}"


@check("execute.execution_count", "each stored execution adds exactly one")
def execute_count(h: Harness) -> str:
    hello = h.need("hello")
    first = h.count_of(h.run(hello["code"])[1])
    second = h.count_of(h.run(hello["code"])[1])
    if second != first + 1:
        raise Fail(f"two executions in a row counted {first} then {second}")
    return f"{first} then {second}"


@check("execute.silent", "silent: no IOPub output, counter unchanged")
def execute_silent(h: Harness) -> str:
    hello = h.need("hello")
    before = h.count_of(h.run(hello["code"])[1])
    req, reply = h.run(hello["code"], silent=True, store_history=False)
    during = h.count_of(reply)
    after = h.count_of(h.run(hello["code"])[1])
    published = [m.msg_type for m in req.outputs()]
    if published:
        raise Fail(f"a silent execution published {', '.join(published)} on IOPub")
    if during != before:
        raise Fail(f"a silent execution answered execution_count {during}; "
                   f"the counter was {before}")
    if after != before + 1:
        raise Fail(f"the counter went from {before} to {after} over a silent execution "
                   "and a stored one")
    return f"counter {before} -> {during} (silent) -> {after}"


@check("execute.store_history", "store_history false: counter unchanged")
def execute_store_history(h: Harness) -> str:
    hello = h.need("hello")
    before = h.count_of(h.run(hello["code"])[1])
    during = h.count_of(h.run(hello["code"], store_history=False)[1])
    after = h.count_of(h.run(hello["code"])[1])
    if during != before:
        raise Fail(f"with store_history false the reply says {during}; the counter was {before}")
    if after != before + 1:
        raise Fail(f"the counter went from {before} to {after} over one stored execution")
    return f"counter {before} -> {during} (not stored) -> {after}"


@check("execute.error", "an error: error reply and the error on IOPub")
def execute_error(h: Harness) -> str:
    sample = h.need("error")
    req, reply = h.run(sample["code"], expect="error")
    c = reply.content
    errors = req.of_type("error")
    if not errors:
        raise Fail("no error message on IOPub")
    if errors[0].content.get("ename") != c.get("ename"):
        raise Fail(f"IOPub error {errors[0].content.get('ename')!r} != reply's {c.get('ename')!r}")
    expected = sample.get("ename")
    if expected and c.get("ename") != expected:
        raise Fail(f"ename {c.get('ename')!r}, expected {expected!r}")
    tb = c.get("traceback")
    return f"{_error_text(c)}; traceback of {len(tb) if isinstance(tb, list) else '?'} lines"


@check("execute.result", "an expression: execute_result with its value")
def execute_result(h: Harness) -> str:
    sample = h.need("expression")
    req, reply = h.run(sample["code"])
    results = req.of_type("execute_result")
    if not results:
        raise Fail("no execute_result on IOPub")
    data = results[0].content.get("data")
    text = data.get("text/plain") if isinstance(data, dict) else None
    if not isinstance(text, str) or sample["result"] not in text:
        raise Fail(f"execute_result text/plain {_short(text)} does not contain "
                   f"{sample['result']!r}")
    count = h.count_of(reply)
    if results[0].content.get("execution_count") != count:
        raise Fail(f"execute_result execution_count {results[0].content.get('execution_count')}"
                   f" != execute_reply's {count}")
    return f"text/plain {_short(text, 30)}"


@check("execute.user_expressions", "user_expressions are evaluated into the reply")
def execute_user_expressions(h: Harness) -> str:
    hello = h.need("hello")
    sample = h.need("expression")
    _, reply = h.run(hello["code"], user_expressions={"answer": sample["code"]})
    exprs = reply.content.get("user_expressions")
    if not isinstance(exprs, dict) or "answer" not in exprs:
        raise Fail(f"user_expressions in the reply is {_short(exprs)}: 'answer' is missing")
    value = exprs["answer"]
    if not isinstance(value, dict) or value.get("status") != "ok":
        raise Fail(f"user_expressions['answer'] is {_short(value, 100)}, not status ok")
    data = value.get("data")
    problem = schema.is_mime_bundle(data)
    if problem:
        raise Fail(f"user_expressions['answer'] data {problem}")
    assert isinstance(data, dict)
    text = data.get("text/plain")
    if not isinstance(text, str) or sample["result"] not in text:
        raise Fail(f"user_expressions['answer'] text/plain {_short(text)} does not contain "
                   f"{sample['result']!r}")
    return f"answer: {_short(text, 30)}"


@check("execute.stop_on_error", "an error aborts the executes queued behind it")
def execute_stop_on_error(h: Harness) -> str:
    error = h.need("error")
    hello = h.need("hello")
    failing, queued = h.execute_two(execute_content(error["code"]),
                                    execute_content(hello["code"]))
    h.finish(failing)
    h.finish(queued)
    assert failing.reply is not None and queued.reply is not None
    if failing.reply.content.get("status") != "error":
        raise Fail(f"the error sample gave status {failing.reply.content.get('status')!r}")
    status = queued.reply.content.get("status")
    ran = [m.msg_type for m in queued.outputs()]
    if status == "ok" or ran:
        raise Fail(f"the execute queued behind the error ran (status {status!r}"
                   + (f", published {', '.join(ran)})" if ran else ")"))
    # The abort is for what was queued then: the next execute must run.
    h.run(hello["code"])
    return f"queued execute answered {status!r} without running; the next one ran"


@check("execute.no_stop_on_error", "stop_on_error false: the next execute runs")
def execute_no_stop(h: Harness) -> str:
    error = h.need("error")
    hello = h.need("hello")
    failing, queued = h.execute_two(execute_content(error["code"], stop_on_error=False),
                                    execute_content(hello["code"]))
    h.finish(failing)
    h.finish(queued)
    assert failing.reply is not None and queued.reply is not None
    if failing.reply.content.get("status") != "error":
        raise Fail(f"the error sample gave status {failing.reply.content.get('status')!r}")
    status = queued.reply.content.get("status")
    if status != "ok":
        raise Fail(f"the execute queued behind an error with stop_on_error false got {status!r}")
    return "the queued execute ran"


# ========================================================================================
# introspection: complete, inspect, is_complete, history


def _optional(h: Harness, msg_type: str, content: dict[str, Any]) -> Msg:
    """Send an optional request; Skip if the kernel does not implement it."""
    req = h.request("shell", msg_type, content)
    reply = h.finish(req, optional=True)
    if reply is None:
        raise Skip(f"not implemented: no reply to {msg_type}")
    c = reply.content
    if c.get("status") == "error":
        ename = str(c.get("ename", ""))
        if "NotImplemented" in ename or "not implemented" in str(c.get("evalue", "")).lower():
            raise Skip(f"not implemented: {_error_text(c)}")
        raise Fail(f"{reply.msg_type} error {_error_text(c)}")
    return reply


@check("introspection.complete", "complete_request: matches and a valid cursor range")
def introspection_complete(h: Harness) -> str:
    sample = h.samples.get("complete") or h.samples.get("hello")
    if sample is None:
        raise Skip("no sample: complete")
    code = sample["code"]
    reply = _optional(h, "complete_request", {"code": code, "cursor_pos": len(code)})
    c = reply.content
    start, end, matches = c.get("cursor_start"), c.get("cursor_end"), c.get("matches")
    if isinstance(start, int) and isinstance(end, int) and not 0 <= start <= end <= len(code):
        raise Fail(f"cursor_start {start}, cursor_end {end} is not a range within the "
                   f"{len(code)} characters of code")
    expected = sample.get("match")
    if expected is not None and matches == []:
        raise Skip(f"no matches for {code!r} (no completion, or a sample it does not know)")
    if expected is not None:
        if not isinstance(matches, list) or not any(expected in str(m) for m in matches):
            raise Fail(f"completing {code!r} did not offer {expected!r} "
                       f"(matches: {_short(matches)})")
        return f"{code!r} -> {len(matches)} matches including {expected!r}"
    return f"{len(matches) if isinstance(matches, list) else '?'} matches (no sample to compare)"


@check("introspection.inspect", "inspect_request: found and a mime bundle")
def introspection_inspect(h: Harness) -> str:
    sample = h.samples.get("inspect")
    code = (sample or h.need("hello"))["code"]
    reply = _optional(h, "inspect_request",
                      {"code": code, "cursor_pos": len(code), "detail_level": 0})
    c = reply.content
    if c.get("found") is True and not c.get("data"):
        raise Fail("found is true but data is empty")
    if c.get("found") is not True:
        # found: false is a valid answer; a kernel without inspection gives it for anything.
        why = "no inspection, or a sample it does not know" if sample else "no sample: inspect"
        raise Skip(f"found nothing for {code!r} ({why})")
    return f"{code!r}: {', '.join(sorted(c.get('data') or {}))}"


@check("introspection.is_complete", "is_complete_request: complete and incomplete code")
def introspection_is_complete(h: Harness) -> str:
    sample = h.need("is_complete")
    notes = []
    for expected in ("complete", "incomplete"):
        code = sample.get(expected)
        if code is None:
            continue
        reply = _optional(h, "is_complete_request", {"code": code})
        status = reply.content.get("status")
        if status == "unknown":
            raise Skip(f"not implemented: the kernel answers 'unknown' for {code!r}")
        if status != expected:
            raise Fail(f"{code!r} is {expected}, the kernel says {status!r}")
        notes.append(f"{code!r}: {status}")
    if not notes:
        raise Skip("no sample: is_complete")
    return "; ".join(notes)


@check("introspection.history", "history_request: tail of the history")
def introspection_history(h: Harness) -> str:
    hello = h.samples.get("hello")
    if hello is not None:
        h.run(hello["code"])
    reply = _optional(h, "history_request",
                      {"hist_access_type": "tail", "n": 10, "output": False, "raw": True})
    history = reply.content.get("history")
    if not isinstance(history, list):
        raise Fail(f"history is {_short(history)}")
    if not history:
        raise Skip("not implemented: the kernel keeps no history (empty history_reply)")
    if hello is not None:
        inputs = [e[2] if isinstance(e[2], str) else e[2][0] for e in history
                  if isinstance(e, list) and len(e) == 3 and isinstance(e[2], (str, list))]
        if hello["code"] not in inputs:
            raise Fail(f"the code just executed is not in the history tail: {_short(inputs)}")
    return f"{len(history)} entries"



# ========================================================================================
# stdin


@check("stdin.input", "input_request on stdin, and the reply reaches the code")
def stdin_input(h: Harness) -> str:
    sample = h.need("input")
    req = h.execute(sample["code"], allow_stdin=True)
    client = h.client
    if not h.wait(lambda: bool(req.stdin) or req.reply is not None):
        raise Fail(f"no input_request within {h.timeout:.0f}s")
    if not req.stdin:
        assert req.reply is not None
        raise Fail(f"the execution ended without an input_request "
                   f"(status {req.reply.content.get('status')!r})")
    request = req.stdin[0]
    prompt = request.content.get("prompt")
    expected = sample.get("prompt")
    client.answer_input(request, INPUT_TOKEN)
    reply = h.finish(req)
    assert reply is not None
    if expected is not None and isinstance(prompt, str) and expected.strip() not in prompt:
        raise Fail(f"input_request prompt is {prompt!r}, expected {expected!r}")
    if reply.content.get("status") != "ok":
        raise Fail(f"after the input_reply the execution failed: {_error_text(reply.content)}")
    if INPUT_TOKEN not in req.text():
        raise Fail(f"the value typed ({INPUT_TOKEN}) did not reach the code "
                   f"(output: {_short(req.text())})")
    return f"prompt {prompt!r}; the value came back in the output"


@check("stdin.not_allowed", "allow_stdin false: no input_request, and a reply")
def stdin_not_allowed(h: Harness) -> str:
    sample = h.need("input")
    req = h.execute(sample["code"], allow_stdin=False)
    reply = h.finish(req)
    assert reply is not None
    return f"status {reply.content.get('status')!r} without asking"


# ========================================================================================
# interrupt


@check("interrupt.running", "interrupt (kernelspec's mode) stops a long-running execution")
def interrupt_running(h: Harness) -> str:
    req = h.start_loop()
    t0 = time.monotonic()
    ireq = h.interrupt()
    try:
        h.wait(lambda: req.reply is not None)
    except Fail as exc:
        raise Fail(f"{h.interrupt_mode} interrupt: {exc}") from None
    if req.reply is None:
        h.wedged = True
        raise Fail(f"{h.interrupt_mode} interrupt: the execution still runs after "
                   f"{h.timeout:.0f}s")
    took = time.monotonic() - t0
    if ireq is not None:
        ireply = h.finish(ireq)
        assert ireply is not None
        if ireply.content.get("status") != "ok":
            raise Fail(f"interrupt_reply status {ireply.content.get('status')!r}")
    h.finish(req)
    assert req.reply is not None
    c = req.reply.content
    if c.get("status") == "ok":
        raise Fail("the interrupted execution was answered status 'ok'")
    hello = h.samples.get("hello")
    if hello is not None:
        h.run(hello["code"])
    detail = _error_text(c) if c.get("status") == "error" else c.get("status")
    after = "; the kernel runs code afterwards" if hello is not None else ""
    return f"{h.interrupt_mode} interrupt: {detail} after {took:.2f}s{after}"


@check("interrupt.idle", "interrupting an idle kernel does no harm")
def interrupt_idle(h: Harness) -> str:
    ireq = h.interrupt()
    if ireq is not None:
        reply = h.finish(ireq)
        assert reply is not None
        if reply.content.get("status") != "ok":
            raise Fail(f"interrupt_reply status {reply.content.get('status')!r}")
    else:
        h.client.settle(0.5)
    if not h.alive():
        raise Fail(f"the kernel died{h.exit_info()}")
    hello = h.samples.get("hello")
    if hello is not None:
        h.run(hello["code"])
        return f"{h.interrupt_mode} interrupt while idle; the kernel runs code afterwards"
    h.finish(h.request("shell", "kernel_info_request"))
    return f"{h.interrupt_mode} interrupt while idle; the kernel still answers"


# ========================================================================================
# control


@check("control.while_busy", "control answers kernel_info while shell is busy")
def control_while_busy(h: Harness) -> str:
    loop = h.start_loop()
    try:
        req = h.request("control", "kernel_info_request")
        reply = h.finish(req)
        assert reply is not None
        if loop.reply is not None:
            raise Fail("the long-running sample ended before control answered")
        took = reply.at - req.sent_at
    finally:
        stopped = h.stop_loop(loop)
    note = "" if stopped else "; the sample could not be interrupted afterwards"
    return f"control answered in {1000 * took:.0f} ms while shell was busy{note}"


# ========================================================================================
# comms
#
# Comm messages get no reply: a comm check waits for the message's idle status, and for
# what the kernel should send on the comm (a comm_close, an echo), which it finds in the
# client's comm_log whatever its parent, so that a wrong parent is named, not a timeout.


def _comm_id() -> str:
    return "kernelkit-check-" + os.urandom(8).hex()


def _nobody() -> str:
    """A target name no kernel registers."""
    return "kernelkit-check-no-such-target-" + os.urandom(4).hex()


def _parent_of(h: Harness, msg: Msg) -> str:
    """What ``msg``'s parent is, for reasons."""
    pid = msg.parent_id
    if not pid:
        return "empty"
    req = h.client.requests.get(pid)
    if req is None:
        return f"{pid!r}, a message this client did not send"
    where = f" sent by {req.owner}" if req.owner != h.current else ""
    return f"the {req.msg_type}{where}"


def _comm_wait(h: Harness, req: Request, want: Callable[[], bool] | None = None) -> None:
    """Wait for ``req``'s idle, then a little longer for ``want()`` if it has not come: what
    comes late is then named as late (the client flags it after idle), not as missing.
    What is still missing after that is the caller's to judge."""
    h.wait(lambda: req.idle_at is not None)
    if want is not None and not want():
        h.wait(want, REPLY_AFTER_IDLE_GRACE)


def _unbracketed(h: Harness, req: Request) -> str | None:
    if req.idle_at is not None:
        return None
    what = f"{req.msg_type} on shell"
    if req.busy_at is None:
        return f"no status busy or idle on IOPub within {h.timeout:.0f}s for {what}"
    return f"no status idle within {h.timeout:.0f}s for {what}"


def _comm_send(h: Harness, msg_type: str, comm_id: str, data: dict[str, Any],
               buffers: list[bytes] | None = None, **keys: Any) -> Request:
    content = {"comm_id": comm_id, "data": data, **keys}
    return h.client.send("shell", msg_type, content, buffers=buffers)


def _comm_sample(h: Harness) -> dict[str, str]:
    """The [comm] sample, its setup code run first in this kernel process."""
    sample = h.need("comm")
    setup = sample.get("setup")
    if setup and h.comm_setup_in != h.connections:
        try:
            h.run(setup)
        except Fail as exc:
            raise Fail(f"the [comm] sample's setup code failed: {exc}") from None
        h.comm_setup_in = h.connections
    return sample


class OpenComm:
    """A comm this check opened to the [comm] sample's target; closed by ``close()``."""

    def __init__(self, h: Harness, target: str) -> None:
        self.h = h
        self.target = target
        self.comm_id = _comm_id()
        self.opened = _comm_send(h, "comm_open", self.comm_id, {"kernelkit-check": "open"},
                                 target_name=target)
        self.closed: Request | None = None
        _comm_wait(h, self.opened)
        closes = h.client.on_comm(self.comm_id, "comm_close")
        if closes:
            raise Fail(f"the kernel closed the comm to {target!r} at once (comm_close with "
                       f"parent {_parent_of(h, closes[0])}): it has no such target; does "
                       "the [comm] sample's setup register it?")
        problem = _unbracketed(h, self.opened)
        if problem:
            raise Fail(f"comm_open to {target!r}: {problem}")
        for m in h.client.on_comm(self.comm_id):
            if m.parent_id != self.opened.msg_id:
                raise Fail(f"a {m.msg_type} on the new comm has parent {_parent_of(h, m)}, "
                           "not the comm_open it answers")
        self.answers = len(self.opened.of_type("comm_msg"))

    def close(self, wait: bool = True) -> Request:
        """Close from the frontend's side; ``wait`` for the idle, else give it a moment."""
        if self.closed is None:
            self.closed = _comm_send(self.h, "comm_close", self.comm_id, {})
        if wait:
            _comm_wait(self.h, self.closed)
            problem = _unbracketed(self.h, self.closed)
            if problem:
                raise Fail(f"comm_close: {problem}")
        else:
            closed = self.closed
            self.h.client.wait(lambda: closed.idle_at is not None, 1.0)
        return self.closed


@contextlib.contextmanager
def _opened(h: Harness, target: str) -> Iterator[OpenComm]:
    """A comm open for the body of a with statement; closed even when the check fails."""
    comm = OpenComm(h, target)
    try:
        yield comm
    finally:
        if comm.closed is None:
            with contextlib.suppress(Fail):
                comm.close(wait=False)


def _holds(value: Any, sent: Any) -> bool:
    """``value`` is ``sent``, or holds it as the value of a key or item, at any depth."""
    if value == sent:
        return True
    if isinstance(value, dict):
        return any(_holds(v, sent) for v in value.values())
    if isinstance(value, list):
        return any(_holds(v, sent) for v in value)
    return False


def _echo(h: Harness, comm: OpenComm, data: dict[str, Any],
          buffers: list[bytes] | None = None) -> tuple[Request, Msg]:
    """Send ``data`` on the comm and wait for its echo; Fail saying what went wrong."""
    seen = len(h.client.on_comm(comm.comm_id))
    req = _comm_send(h, "comm_msg", comm.comm_id, data, buffers)

    def later() -> list[Msg]:
        return h.client.on_comm(comm.comm_id)[seen:]

    def echoes() -> list[Msg]:
        return [m for m in later() if m.msg_type == "comm_msg" and _holds(m.content.get("data"),
                                                                             data)]

    _comm_wait(h, req, lambda: bool(echoes()))
    found = echoes()
    if not found:
        other = later()
        if any(m.msg_type == "comm_close" for m in other):
            raise Fail("the kernel closed the comm instead of echoing the comm_msg")
        if other:
            shown = _short(other[0].content.get("data"), 80)
            raise Fail(f"the kernel answered the comm_msg with {other[0].msg_type} data {shown}, "
                       f"which does not hold the data sent ({_short(data, 80)})")
        problem = _unbracketed(h, req)
        if problem:
            raise Fail(f"no echo on the comm to {comm.target!r}: {problem}")
        listed = _listed(h, {})
        hint = ("; comm_info does not list the comm: the kernel did not open it"
                if listed is not None and comm.comm_id not in listed else "")
        raise Fail(f"no echo: the kernel went idle after the comm_msg to {comm.target!r} "
                   f"without a comm_msg on the comm{hint}")
    echo = found[0]
    if echo.parent_id != req.msg_id:
        raise Fail(f"the echo's parent is {_parent_of(h, echo)}, not the comm_msg that "
                   "caused it")
    problem = _unbracketed(h, req)
    if problem:
        raise Fail(f"comm_msg: {problem} (the echo came)")
    return req, echo


@check("comms.unknown_target", "comm_open to an unknown target: comm_close, busy/idle")
def comms_unknown_target(h: Harness) -> str:
    comm_id, target = _comm_id(), _nobody()
    req = _comm_send(h, "comm_open", comm_id, {}, target_name=target)

    def closes() -> list[Msg]:
        return h.client.on_comm(comm_id, "comm_close")

    _comm_wait(h, req, lambda: bool(closes()))
    if not closes():
        if any(r.msg_type == "comm_close" for r in req.replies):
            raise Fail("the comm to an unknown target was closed with a comm_close on shell, "
                       "as if it were a reply; it belongs on IOPub, where frontends get it")
        problem = _unbracketed(h, req)
        if problem:
            raise Fail(f"no comm_close for a comm_open to an unknown target: {problem}")
        raise Fail("the kernel went idle after a comm_open to an unknown target without "
                   "closing the comm (the spec: it should send comm_close at once)")
    close = closes()[0]
    if close.parent_id != req.msg_id:
        raise Fail(f"the comm_close's parent is {_parent_of(h, close)}, not the comm_open")
    problem = _unbracketed(h, req)
    if problem:
        raise Fail(f"{problem} (the comm_close came)")
    took = 1000 * (close.at - req.sent_at)
    listed = _listed(h, {})
    if listed is not None and comm_id in listed:
        raise Fail("the comm to an unknown target was closed, but comm_info still lists it")
    return f"comm_close {took:.0f} ms after the comm_open, between its busy and idle"


def _listed(h: Harness, content: dict[str, Any]) -> dict[str, Any] | None:
    """comm_info_reply's comms, or None when the kernel does not implement comm_info."""
    req = h.request("shell", "comm_info_request", content)
    reply = h.finish(req, optional=True)
    if reply is None or reply.content.get("status") != "ok":
        return None
    comms = reply.content.get("comms")
    if not isinstance(comms, dict):
        raise Fail(f"comm_info_reply comms is {_short(comms)}, not an object")
    return comms


def _comm_info(h: Harness, content: dict[str, Any]) -> dict[str, Any]:
    reply = _optional(h, "comm_info_request", content)
    comms = reply.content.get("comms")
    if not isinstance(comms, dict):
        raise Fail(f"comm_info_reply comms is {_short(comms)}, not an object")
    for comm_id, entry in comms.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("target_name"), str):
            raise Fail(f"comm_info_reply comms[{comm_id!r}] is {_short(entry)}, "
                       "not {'target_name': str}")
    return comms


@check("comms.info", "comm_info_request: comm_id -> target_name, filtered by target_name")
def comms_info(h: Harness) -> str:
    comms = _comm_info(h, {})
    nobody = _nobody()
    if _comm_info(h, {"target_name": nobody}):
        raise Fail(f"filtered by target_name {nobody!r}, which no comm has, comm_info lists "
                   "comms: the filter is ignored")
    targets = sorted({entry["target_name"] for entry in comms.values()})
    for target in targets[:3]:  # comms the kernel opened itself (a few are enough)
        got = _comm_info(h, {"target_name": target})
        wrong = [cid for cid, e in got.items() if e.get("target_name") != target]
        if wrong:
            raise Fail(f"filtered by target_name {target!r}, comm_info lists {wrong[0]!r} "
                       f"with target {got[wrong[0]].get('target_name')!r}")
        missing = [cid for cid, e in comms.items() if e["target_name"] == target
                   and cid not in got]
        if missing:
            raise Fail(f"filtered by target_name {target!r}, comm_info leaves out "
                       f"{missing[0]!r}, which it lists with that target unfiltered")
    shown = f" (targets {', '.join(map(repr, targets))})" if targets else ""
    return f"{len(comms)} open comms{shown}; a filter by an unknown target lists none"


@check("comms.round_trip", "[comm] sample: open, comm_msg, its echo, close; busy/idle, parents")
def comms_round_trip(h: Harness) -> str:
    sample = _comm_sample(h)
    target = sample["target"]
    with _opened(h, target) as comm:
        data = {"kernelkit-check": os.urandom(6).hex(), "n": 42, "list": [1, "two", None],
                "nested": {"ok": True}}
        req, echo = _echo(h, comm, data)
        close = comm.close()
        after = [m for m in h.client.on_comm(comm.comm_id)
                 if m.msg_type != "comm_close" and m.at > close.sent_at]
        if after:
            raise Fail(f"a {after[0].msg_type} on the comm came after the frontend closed it")
    answered = f" (answered with {comm.answers} comm_msg)" if comm.answers else ""
    took = 1000 * (echo.at - req.sent_at)
    return f"opened{answered}; echo {took:.0f} ms after the comm_msg; closed"


@check("comms.info_open", "[comm] sample: comm_info lists the comm while open, by target")
def comms_info_open(h: Harness) -> str:
    sample = _comm_sample(h)
    target = sample["target"]
    with _opened(h, target) as comm:
        listed = _comm_info(h, {})
        entry = listed.get(comm.comm_id)
        if entry is None:
            raise Fail(f"comm_info does not list the open comm to {target!r} "
                       f"({len(listed)} comms listed)")
        if entry.get("target_name") != target:
            raise Fail(f"comm_info lists the comm with target_name "
                       f"{_short(entry.get('target_name'))}, it was opened to {target!r}")
        mine = _comm_info(h, {"target_name": target})
        if comm.comm_id not in mine:
            raise Fail(f"filtered by target_name {target!r}, comm_info does not list the "
                       "comm open to it")
        nobody = _nobody()
        other = _comm_info(h, {"target_name": nobody})
        if comm.comm_id in other:
            raise Fail(f"filtered by target_name {nobody!r}, comm_info lists the comm to "
                       f"{target!r}: the filter is ignored")
        comm.close()
    gone = _comm_info(h, {})
    if comm.comm_id in gone:
        raise Fail("comm_info still lists the comm after the frontend closed it")
    return (f"listed while open (also filtered by {target!r}, not by another target), "
            "gone after close")


@check("comms.buffers", "[comm] sample with buffers = true: binary buffers come back")
def comms_buffers(h: Harness) -> str:
    sample = _comm_sample(h)
    if sample.get("buffers") != "true":
        raise Skip("the [comm] sample does not say its target echoes buffers (buffers = true)")
    target = sample["target"]
    sent = [b"\x00\x01\x02\xffkernelkit-check\x00", os.urandom(4096)]
    with _opened(h, target) as comm:
        data = {"kernelkit-check": os.urandom(6).hex(), "buffers": len(sent)}
        _, echo = _echo(h, comm, data, sent)
        comm.close()
    sizes = ", ".join(str(len(b)) for b in sent)
    if len(echo.buffers) != len(sent):
        raise Fail(f"the echo carries {len(echo.buffers)} buffers; {len(sent)} were sent "
                   f"({sizes} bytes)")
    for i, (back, out) in enumerate(zip(echo.buffers, sent, strict=True)):
        if back != out:
            raise Fail(f"the echo's buffer {i} is not the one sent ({len(out)} bytes sent, "
                       f"{len(back)} came back: {_short(back[:24])})")
    return f"{len(sent)} buffers ({sizes} bytes) came back, the same bytes in order"


# ========================================================================================
# heartbeat


@check("heartbeat.idle", "the heartbeat echoes")
def heartbeat_idle(h: Harness) -> str:
    rtt = h.client.heartbeat(h.timeout)
    if rtt is None:
        raise Fail(f"no heartbeat echo within {h.timeout:.0f}s")
    return f"echo in {1000 * rtt:.1f} ms"


@check("heartbeat.while_busy", "the heartbeat echoes while shell is busy")
def heartbeat_while_busy(h: Harness) -> str:
    loop = h.start_loop()
    try:
        rtt = h.client.heartbeat(h.timeout)
        if rtt is None:
            raise Fail(f"no heartbeat echo within {h.timeout:.0f}s while shell was busy")
    finally:
        stopped = h.stop_loop(loop)
    note = "" if stopped else "; the sample could not be interrupted afterwards"
    return f"echo in {1000 * rtt:.1f} ms while busy{note}"


# ========================================================================================
# security


def _probe_code(h: Harness) -> str:
    hello = h.samples.get("hello")
    return hello["code"] if hello is not None else ""


def _execute_message(h: Harness, code: str) -> dict[str, Any]:
    return h.client.new_message("execute_request", execute_content(code))


def _evidence(h: Harness, req: Request, before: int, after: int, replies: int = 0,
              iopub: int = 0) -> list[str]:
    found = []
    if len(req.replies) > replies:
        status = req.replies[-1].content.get("status")
        found.append(f"it was answered (status {status!r})")
    extra = req.iopub[iopub:]
    if extra:
        found.append(f"IOPub carried {', '.join(m.msg_type for m in extra)} for it")
    if h.samples.get("hello") is not None and after != before + 1:
        found.append(f"execution_count went from {before} to {after} over one valid execute")
    return found


def _forged(h: Harness, signature: Callable[[list[bytes]], bytes], what: str) -> str:
    code = _probe_code(h)
    before = h.count_of(h.run(code)[1])
    probe = h.probe_socket()
    msg = _execute_message(h, code)
    assert h.session is not None
    frames = h.session.serialize(msg)
    split = frames.index(DELIMITER)
    frames[split + 1] = signature(frames[split + 2 : split + 6])
    req = h.client.track(msg, probe, strict=False)
    h.client.send_frames(probe, frames)
    try:
        after = h.count_of(h.run(code)[1])
    except Fail as exc:
        raise Fail(f"after a message with {what}, the next valid execute failed: {exc}") from None
    h.client.settle(0.3)
    found = _evidence(h, req, before, after)
    if found:
        raise Fail(f"a message with {what} was executed: " + "; ".join(found))
    return f"ignored (execution_count {before} -> {after} over one valid execute)"


@check("security.bad_signature", "a message with a forged signature does not execute")
def security_bad_signature(h: Harness) -> str:
    def forge(parts: list[bytes]) -> bytes:
        return hmac.new(b"not-the-connection-key", b"".join(parts), hashlib.sha256) \
            .hexdigest().encode()

    return _forged(h, forge, "a forged signature")


@check("security.unsigned", "an unsigned message does not execute")
def security_unsigned(h: Harness) -> str:
    return _forged(h, lambda parts: b"", "no signature")


@check("security.replay", "a replayed message does not execute again")
def security_replay(h: Harness) -> str:
    code = _probe_code(h)
    probe = h.probe_socket()
    msg = _execute_message(h, code)
    assert h.session is not None
    frames = h.session.serialize(msg)
    req = h.client.track(msg, probe, strict=False)
    h.client.send_frames(probe, frames)
    reply = h.finish(req)
    assert reply is not None
    before = h.count_of(reply)
    replies, iopub = len(req.replies), len(req.iopub)
    h.client.send_frames(probe, frames)  # the very same frames, signature and all
    try:
        after = h.count_of(h.run(code)[1])
    except Fail as exc:
        raise Fail(f"after a replayed message, the next valid execute failed: {exc}") from None
    h.client.settle(0.3)
    found = _evidence(h, req, before, after, replies, iopub)
    if found:
        raise Fail("the replayed message was executed again: " + "; ".join(found))
    return f"ignored (execution_count {before} -> {after} over one valid execute)"


# ========================================================================================
# lifecycle: restart and shutdown (last)


def _shutdown(h: Harness, restart: bool) -> tuple[float, str]:
    """shutdown_request on control; returns how long the process took to exit."""
    pid = h.pid()
    req = h.request("control", "shutdown_request", {"restart": restart})
    t0 = time.monotonic()
    reply = h.finish(req, need_idle=False)
    assert reply is not None
    c = reply.content
    if c.get("status") != "ok":
        raise Fail(f"shutdown_reply status {c.get('status')!r}")
    if c.get("restart") is not restart:
        raise Fail(f"shutdown_reply restart is {c.get('restart')!r}, the request said {restart}")
    deadline = t0 + h.timeout
    while h.alive():
        if time.monotonic() > deadline:
            raise Fail(f"the kernel process {pid} still runs {h.timeout:.0f}s after "
                       f"shutdown_request(restart={restart})")
        h.client.pump(0.1)
    return time.monotonic() - t0, f"process {pid}"


@check("lifecycle.restart", "shutdown_request(restart) ends the process; the new one answers")
def lifecycle_restart(h: Harness) -> str:
    try:
        took, which = _shutdown(h, restart=True)
    except Fail:
        h.wedged = True
        raise
    t0 = time.monotonic()
    h.restart()
    hello = h.samples.get("hello")
    if hello is not None:
        _, reply = h.run(hello["code"])
        count = h.count_of(reply)
        ran = f", execution_count {count}"
    else:
        h.finish(h.request("shell", "kernel_info_request"))
        ran = ""
    return (f"{which} exited {took:.2f}s after the reply; the restarted kernel answered "
            f"in {time.monotonic() - t0:.2f}s{ran}")


@check("lifecycle.shutdown", "shutdown_request ends the kernel process")
def lifecycle_shutdown(h: Harness) -> str:
    took, which = _shutdown(h, restart=False)
    return f"{which} exited {took:.2f}s after the reply"


# ========================================================================================
# running


def select(only: Iterable[str] = (), skip: Iterable[str] = ()) -> list[CheckDef]:
    """The checks to run: ``only`` and ``skip`` name groups or single checks."""
    names = {c.name for c in REGISTRY}
    only, skip = list(only), list(skip)
    for item in only + skip:
        if item not in GROUPS and item not in names:
            raise ValueError(f"unknown check or group {item!r}; groups: {', '.join(GROUPS)}")

    def matches(c: CheckDef, items: list[str]) -> bool:
        return c.group in items or c.name in items

    return [c for c in REGISTRY
            if (not only or matches(c, only)) and not matches(c, skip)]


def run(kernel_name: str, samples: Samples, checks: list[CheckDef], progress: Progress, *,
        timeout: float = 10.0, startup_timeout: float = 60.0) -> Report:
    """Start the kernel, run ``checks`` in order, and stop it."""
    t_all = time.monotonic()
    h = Harness(kernel_name, samples, timeout, startup_timeout)
    report = Report(
        kernel=kernel_name,
        display_name=str(h.spec.display_name),
        language=str(h.spec.language),
        interrupt_mode=h.interrupt_mode,
        samples=samples.source,
    )
    progress.begin(kernel_name, len(checks) + 1)
    try:
        progress.start("lifecycle.start")
        gone: str | None = None
        t0 = time.monotonic()
        try:
            took = h.start()
            problems = h.violations_of("start")
            if problems:
                start = Result("lifecycle.start", "lifecycle", "fail", _problems(problems),
                               time.monotonic() - t0)
            else:
                start = Result("lifecycle.start", "lifecycle", "pass",
                               f"answered kernel_info {took:.2f}s after launch",
                               time.monotonic() - t0)
        except KernelGone as exc:
            gone = f"the kernel did not start: {exc}"
            start = Result("lifecycle.start", "lifecycle", "fail", str(exc),
                           time.monotonic() - t0)
        report.kernel_info = dict(h.info)
        report.results.append(start)
        progress.done(start)
        for c in checks:
            progress.start(c.name)
            if gone is not None:
                result = Result(c.name, c.group, "skip", gone, 0.0)
            else:
                result, gone = _run_one(h, c, progress)
            report.results.append(result)
            progress.done(result)
    finally:
        report.messages = h.messages
        report.notes = list(h.notes)
        h.close()
        report.seconds = time.monotonic() - t_all
        progress.end()
    return report


def _problems(problems: list[str]) -> str:
    shown = "; ".join(problems[:3])
    return shown + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")


def _run_one(h: Harness, c: CheckDef, progress: Progress) -> tuple[Result, str | None]:
    """Run one check; returns its result, and why no further check can run (or None)."""
    h.current = c.name
    h.client.current = c.name
    t0 = time.monotonic()
    gone = None
    try:
        outcome, reason = "pass", c.func(h) or ""
    except Fail as exc:
        outcome, reason = "fail", str(exc)
    except Skip as exc:
        outcome, reason = "skip", str(exc)
    except KernelGone as exc:
        outcome, reason = "fail", str(exc)
        gone = f"the kernel is gone: {exc}"
    except Exception as exc:  # a bug in the checker, or a kernel that broke it
        outcome, reason = "fail", f"checker error: {type(exc).__name__}: {exc}"
    seconds = time.monotonic() - t0
    if gone is None and c.name != "lifecycle.shutdown":
        # Still charged to this check: what the kernel sends meanwhile is its aftermath.
        try:
            note = h.ensure_responsive()
        except KernelGone as exc:
            note = None
            gone = f"the kernel is gone: {exc}"
        if note:
            h.notes.append(f"after {c.name}: {note}")
            progress.note(h.notes[-1])
    problems = h.violations_of(c.name)
    if problems:
        spec = "spec violation: " + _problems(problems)
        reason = spec if outcome != "fail" else f"{reason}; {spec}"
        outcome = "fail"
    return Result(c.name, c.group, outcome, reason, seconds), gone
