"""The harness: one kernel under test, started as Jupyter starts it, and what checks share.

It launches the kernelspec with jupyter_client's ``KernelManager`` (same argv,
environment, process group and interrupt mode as Jupyter) and talks to it with
``client.Client``. Between checks it makes sure the kernel still answers, and restarts
it when it does not, so that one defect does not hide the rest. The helpers at the end
are what several groups need: keeping the main shell busy, optional requests.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from . import schema
from .client import Client, Msg, Request, Violation
from .registry import Fail, KernelGone, Skip
from .samples import Samples

if TYPE_CHECKING:
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import KernelManager
    from jupyter_client.session import Session

# The newest protocol version this checker knows the rules of.
LATEST_PROTOCOL = (5, 5)
# After a kernel went idle, how long its reply may still take to arrive (s).
REPLY_AFTER_IDLE_GRACE = 2.0
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# The value the stdin check types in.
INPUT_TOKEN = "kernelkit-check-7c1e"


def short(value: Any, limit: int = 60) -> str:
    return schema.short(value, limit)


def error_text(content: dict[str, Any]) -> str:
    return f"{content.get('ename')}: {short(content.get('evalue'), 80)}"


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
            detail = f" ({error_text(reply.content)})" if status == "error" else ""
            raise Fail(f"executing {short(code, 30)} gave status {status!r}{detail}")
        return req, reply

    def count_of(self, reply: Msg) -> int:
        count = reply.content.get("execution_count")
        if not isinstance(count, int) or isinstance(count, bool):
            raise Fail(f"execute_reply execution_count is {short(count)}")
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
            detail = f": {error_text(req.reply.content)}" if status == "error" else ""
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

    def kernelspec_json(self) -> dict[str, Any]:
        """The kernelspec's kernel.json as written (the spec object drops unknown keys)."""
        try:
            with open(os.path.join(self.spec.resource_dir, "kernel.json"),
                      encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


# -- what several groups share ------------------------------------------------------------


@dataclass
class Busy:
    """The long-running sample keeping the main shell busy, and whether it stopped after."""

    loop: Request
    stopped: bool = False

    @property
    def note(self) -> str:
        """What a passing reason adds when the sample would not stop."""
        return "" if self.stopped else "; the sample could not be interrupted afterwards"


@contextlib.contextmanager
def while_busy(h: Harness) -> Iterator[Busy]:
    """The body runs while the long-running sample runs; it is interrupted afterwards,
    also when the body fails, and a sample that keeps running leaves the kernel wedged."""
    busy = Busy(h.start_loop())
    try:
        yield busy
    finally:
        busy.stopped = h.stop_loop(busy.loop)


def optional(h: Harness, msg_type: str, content: dict[str, Any]) -> Msg:
    """Send an optional request; Skip if the kernel does not implement it."""
    req = h.request("shell", msg_type, content)
    reply = h.finish(req, optional=True)
    if reply is None:
        raise Skip(f"not implemented: no reply to {msg_type}")
    c = reply.content
    if c.get("status") == "error":
        ename = str(c.get("ename", ""))
        if "NotImplemented" in ename or "not implemented" in str(c.get("evalue", "")).lower():
            raise Skip(f"not implemented: {error_text(c)}")
        raise Fail(f"{reply.msg_type} error {error_text(c)}")
    return reply
