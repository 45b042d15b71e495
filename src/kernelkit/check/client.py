"""A Jupyter client on raw pyzmq sockets that validates every message it receives.

jupyter_client's own client threads convert messages (dates become datetimes)
and hide frames, signatures and timing; the checker needs them as the kernel
sent them. This client signs what it sends with ``jupyter_client.session.Session``
and reads what comes back itself, on one thread, by polling:

* each message is checked (frames, signature, JSON, ``schema.validate``) and every
  problem is recorded as a ``Violation`` against the check running at the time;
* messages are matched to the ``Request`` they answer by their parent's msg_id:
  the reply, the IOPub messages (which must be bracketed by ``status: busy`` and
  ``status: idle``) and stdin's ``input_request``;
* comm messages on IOPub are also kept in order whatever their parent (``comm_log``),
  so that a comm check can say where one with the wrong parent went.
"""

from __future__ import annotations

import hmac
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import zmq

from . import schema

if TYPE_CHECKING:
    from jupyter_client.session import Session

DELIMITER = b"<IDS|MSG>"
JSON = dict[str, Any]
COMM_TYPES = frozenset({"comm_open", "comm_msg", "comm_close"})


@dataclass
class Msg:
    """One message received from the kernel."""

    channel: str
    header: JSON
    parent_header: JSON
    metadata: JSON
    content: JSON
    buffers: list[bytes]
    at: float

    @property
    def msg_type(self) -> str:
        return str(self.header.get("msg_type", ""))

    @property
    def parent_id(self) -> str | None:
        pid = self.parent_header.get("msg_id")
        return pid if isinstance(pid, str) else None


@dataclass
class Request:
    """A request sent to the kernel and what has come back for it so far."""

    msg_id: str
    msg_type: str
    channel: str
    header: JSON
    content: JSON
    owner: str
    strict: bool = True  # check busy/idle bracketing
    sent_at: float = field(default_factory=time.monotonic)
    replies: list[Msg] = field(default_factory=list)
    iopub: list[Msg] = field(default_factory=list)
    stdin: list[Msg] = field(default_factory=list)
    busy_at: float | None = None
    idle_at: float | None = None

    @property
    def reply(self) -> Msg | None:
        return self.replies[0] if self.replies else None

    @property
    def reply_type(self) -> str:
        """The reply this request gets; "" for one that gets none (comm_open, comm_msg...)."""
        base = self.msg_type[: -len("_request")] if self.msg_type.endswith("_request") else ""
        return f"{base}_reply" if base else ""

    @property
    def done(self) -> bool:
        return bool(self.replies) and self.idle_at is not None

    def outputs(self) -> list[Msg]:
        """IOPub messages other than status."""
        return [m for m in self.iopub if m.msg_type != "status"]

    def text(self) -> str:
        """All text output: streams and the text/plain of results and displays."""
        parts = []
        for m in self.iopub:
            if m.msg_type == "stream":
                parts.append(str(m.content.get("text", "")))
            elif m.msg_type in ("execute_result", "display_data", "update_display_data"):
                data = m.content.get("data")
                if isinstance(data, dict):
                    parts.append(str(data.get("text/plain", "")))
        return "".join(parts)

    def of_type(self, msg_type: str) -> list[Msg]:
        return [m for m in self.iopub if m.msg_type == msg_type]


@dataclass
class Violation:
    check: str
    problem: str
    count: int = 1


class Client:
    """Sockets to one kernel, the requests in flight and the violations seen."""

    def __init__(self, info: dict[str, Any], session: Session, context: zmq.Context[Any],
                 violations: list[Violation] | None = None) -> None:
        self.info = info
        self.session = session
        self.ctx = context
        self.current = "start"  # the check running now: violations are charged to it
        self.quiet_repeats = False
        # Shared with the harness, so that what one connection saw outlives it.
        self.violations: list[Violation] = [] if violations is None else violations
        self.requests: dict[str, Request] = {}
        self.received = 0
        self.welcomes: list[Msg] = []
        self.comm_log: list[Msg] = []  # comm_open/comm_msg/comm_close on IOPub, any parent
        self._sockets: dict[str, zmq.Socket[Any]] = {}
        self._names: dict[zmq.Socket[Any], str] = {}
        self._poller = zmq.Poller()
        self._hb: zmq.Socket[Any] | None = None
        self._monitors: dict[str, zmq.Socket[Any]] = {}
        self._curve: tuple[bytes, bytes] | None = None
        ident = session.bsession
        for channel, kind in (("shell", zmq.DEALER), ("control", zmq.DEALER),
                              ("stdin", zmq.DEALER), ("iopub", zmq.SUB)):
            sock = self.socket(kind, channel, identity=ident if kind == zmq.DEALER else None,
                               monitor=True)
            if kind == zmq.SUB:
                sock.setsockopt(zmq.SUBSCRIBE, b"")
            self.add(channel, sock)

    # -- sockets -------------------------------------------------------------------------

    def url(self, channel: str) -> str:
        info = self.info
        port = info[f"{channel}_port"]
        if info.get("transport", "tcp") == "ipc":
            return f"ipc://{info['ip']}-{port}"
        ip = info["ip"]
        return f"tcp://[{ip}]:{port}" if ":" in ip else f"tcp://{ip}:{port}"

    def socket(self, kind: int, channel: str, identity: bytes | None = None,
               monitor: bool = False) -> zmq.Socket[Any]:
        sock: zmq.Socket[Any] = self.ctx.socket(kind)
        sock.linger = 0
        if identity is not None:
            sock.setsockopt(zmq.IDENTITY, identity)
        if ":" in self.info["ip"]:
            sock.setsockopt(zmq.IPV6, 1)
        server_key = self.info.get("curve_publickey")
        if server_key:  # the kernel was started with CurveZMQ transport encryption
            if self._curve is None:
                self._curve = zmq.curve_keypair()
            sock.curve_serverkey = server_key.encode() if isinstance(server_key, str) \
                else server_key
            sock.curve_publickey, sock.curve_secretkey = self._curve
        if monitor:
            self._monitors[channel] = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        sock.connect(self.url(channel))
        return sock

    def wait_connected(self, timeout: float) -> list[str]:
        """Wait until every channel has finished its handshake with the kernel.

        A reply on shell says nothing about stdin: a kernel's ROUTER drops what it
        sends to a peer whose handshake is not done, so an input_request sent then
        would be lost. Returns the channels still not connected after ``timeout``.
        """
        deadline = time.monotonic() + timeout
        for channel in list(self._monitors):
            monitor = self._monitors[channel]
            if monitor.poll(max(0, int((deadline - time.monotonic()) * 1000))):
                monitor.recv_multipart()
                self._sockets[channel].disable_monitor()
                monitor.close(0)
                del self._monitors[channel]
        return list(self._monitors)

    def add(self, name: str, sock: zmq.Socket[Any]) -> None:
        """Read messages from ``sock`` too; ``name`` says how (iopub*, stdin, else replies)."""
        self._sockets[name] = sock
        self._names[sock] = name
        self._poller.register(sock, zmq.POLLIN)

    def has(self, name: str) -> bool:
        return name in self._sockets

    def remove(self, name: str) -> None:
        sock = self._sockets.pop(name)
        del self._names[sock]
        self._poller.unregister(sock)
        sock.close(0)

    def close(self) -> None:
        for monitor in self._monitors.values():
            monitor.close(0)
        self._monitors.clear()
        for name in list(self._sockets):
            self.remove(name)
        if self._hb is not None:
            self._hb.close(0)
            self._hb = None

    # -- sending ---------------------------------------------------------------------------

    def new_message(self, msg_type: str, content: JSON | None = None,
                    metadata: JSON | None = None, header: JSON | None = None) -> JSON:
        msg: JSON = self.session.msg(msg_type, content or {}, metadata=metadata, header=header)
        return msg

    def track(self, msg: JSON, channel: str, strict: bool = True) -> Request:
        header = msg["header"]
        req = Request(
            msg_id=str(header["msg_id"]),
            msg_type=str(header["msg_type"]),
            channel=channel,
            header=header,
            content=msg["content"],
            owner=self.current,
            strict=strict,
        )
        self.requests[req.msg_id] = req
        return req

    def send(self, channel: str, msg_type: str, content: JSON | None = None, *,
             metadata: JSON | None = None, header: JSON | None = None,
             strict: bool = True, buffers: list[bytes] | None = None) -> Request:
        """Send a request on shell or control and start tracking what comes back.

        ``buffers`` go as extra frames after the content (they are not signed).
        """
        if not buffers:
            return self.send_many(channel, [(msg_type, content, header)], metadata, strict)[0]
        msg = self.new_message(msg_type, content, metadata, header)
        frames = [*self.session.serialize(msg), *buffers]
        req = self.track(msg, channel, strict)
        self._sockets[channel].send_multipart(frames)
        return req

    def send_many(self, channel: str, messages: list[tuple[str, JSON | None, JSON | None]],
                  metadata: JSON | None = None, strict: bool = True) -> list[Request]:
        """Send several requests back to back: all are built and signed before the first goes,
        so that the kernel surely has them queued together."""
        built = [self.new_message(t, c, metadata, h) for t, c, h in messages]
        frames = [self.session.serialize(m) for m in built]
        reqs = [self.track(m, channel, strict) for m in built]
        sock = self._sockets[channel]
        for f in frames:
            sock.send_multipart(f)
        return reqs

    def send_frames(self, name: str, frames: list[bytes]) -> None:
        self._sockets[name].send_multipart(frames)

    def answer_input(self, request: Msg, value: str) -> None:
        """Reply to an input_request on stdin."""
        msg = self.session.msg("input_reply", {"value": value}, parent=request.header)
        self._sockets["stdin"].send_multipart(self.session.serialize(msg))

    def heartbeat(self, timeout: float) -> float | None:
        """Ping the heartbeat; the round trip in seconds, or None if no echo came back."""
        if self._hb is None:
            self._hb = self.socket(zmq.REQ, "hb")
        payload = b"kernelkit-check " + os.urandom(8).hex().encode()
        start = time.monotonic()
        self._hb.send(payload)
        if not self._hb.poll(int(timeout * 1000)):
            self._hb.close(0)  # a REQ socket whose reply never came is stuck: start over
            self._hb = None
            return None
        echo = self._hb.recv()
        if echo != payload:
            self.violate(f"heartbeat echoed {schema.short(echo)} for {schema.short(payload)}")
        return time.monotonic() - start

    # -- receiving -------------------------------------------------------------------------

    def violate(self, problem: str) -> None:
        """Record a problem against the current check (once per check, then counted).

        While ``quiet_repeats`` is set (the kernel is being restarted between checks), a
        problem already reported anywhere is only counted: a restart repeats what the
        first start showed, and that is not the fault of the check that happened to run.
        """
        for v in self.violations:
            if v.problem == problem and (v.check == self.current or self.quiet_repeats):
                v.count += 1
                return
        self.violations.append(Violation(self.current, problem))

    def pump(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for messages and handle all that are there. True if any."""
        events = dict(self._poller.poll(max(0, int(timeout * 1000))))
        got = False
        for sock in events:
            name = self._names.get(sock)
            if name is None:
                continue
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                got = True
                self._handle(name, frames)
        return got

    def wait(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Handle messages until ``condition()`` holds (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.pump(min(left, 0.2))
        return True

    def on_comm(self, comm_id: str, msg_type: str | None = None) -> list[Msg]:
        """The comm messages received for ``comm_id`` (of ``msg_type``), whatever their parent."""
        return [m for m in self.comm_log if m.content.get("comm_id") == comm_id
                and (msg_type is None or m.msg_type == msg_type)]

    def settle(self, seconds: float) -> None:
        """Handle whatever arrives during the next ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.pump(left)

    def _decode(self, name: str, frames: list[bytes]) -> Msg | None:
        try:
            split = frames.index(DELIMITER)
        except ValueError:
            self.violate(f"a message on {name} has no <IDS|MSG> delimiter frame")
            return None
        if len(frames) - split < 6:
            self.violate(f"a message on {name} has {len(frames) - split - 1} frames after "
                         "the delimiter; at least 5 are needed")
            return None
        signature = frames[split + 1]
        parts = frames[split + 2 : split + 6]
        if self.session.auth is not None:
            expected = self.session.sign(parts)
            if not hmac.compare_digest(signature, expected):
                self.violate(f"a message on {name} has an invalid signature")
        decoded = []
        for part_name, part in zip(("header", "parent_header", "metadata", "content"), parts,
                                   strict=True):
            try:
                decoded.append(json.loads(part))
            except ValueError as exc:
                self.violate(f"a message on {name}: {part_name} is not JSON ({exc})")
                return None
        raw = dict(zip(("header", "parent_header", "metadata", "content"), decoded, strict=True))
        channel = "iopub" if name.startswith("iopub") else name
        channel = "shell" if channel not in ("iopub", "stdin", "control") else channel
        problems = schema.validate(channel, raw)
        msg_type = raw["header"].get("msg_type") if isinstance(raw["header"], dict) else None
        for problem in problems:
            self.violate(f"{msg_type or 'message'} on {name}: {problem}")
        if not isinstance(raw["header"], dict):
            return None
        # Already reported: carry on with empty objects in place of the malformed parts.
        fixed = {k: v if isinstance(v, dict) else {} for k, v in raw.items()}
        return Msg(name, fixed["header"], fixed["parent_header"], fixed["metadata"],
                   fixed["content"], list(frames[split + 6 :]), time.monotonic())

    def _handle(self, name: str, frames: list[bytes]) -> None:
        self.received += 1
        msg = self._decode(name, frames)
        if msg is None:
            return
        req = self.requests.get(msg.parent_id or "")
        if name.startswith("iopub"):
            if msg.msg_type == "iopub_welcome":
                self.welcomes.append(msg)
            if name == "iopub" and msg.msg_type in COMM_TYPES:
                self.comm_log.append(msg)
            if name == "iopub" and req is not None:
                self._on_iopub(req, msg)
        elif name == "stdin":
            self._on_stdin(req, msg)
        else:
            self._on_reply(name, req, msg)

    def _where(self, req: Request) -> str:
        return f"{req.msg_type}" + (f" (sent by {req.owner})" if req.owner != self.current else "")

    def _on_iopub(self, req: Request, msg: Msg) -> None:
        state = msg.content.get("execution_state") if msg.msg_type == "status" else None
        if req.strict:
            what = f"status {state}" if state else msg.msg_type
            if req.idle_at is not None:
                self.violate(f"{what} for {self._where(req)} after its idle status")
            elif state == "busy" and req.busy_at is not None:
                self.violate(f"a second status busy for {self._where(req)}")
            elif state != "busy" and req.busy_at is None:
                self.violate(f"{what} for {self._where(req)} before any status busy")
        if state == "busy" and req.busy_at is None:
            req.busy_at = msg.at
        elif state == "idle" and req.idle_at is None:
            req.idle_at = msg.at
        req.iopub.append(msg)

    def _on_stdin(self, req: Request | None, msg: Msg) -> None:
        if msg.msg_type != "input_request":
            self.violate(f"unexpected {msg.msg_type} on stdin")
            return
        if req is None:
            self.violate("input_request for a request this client did not send")
        elif req.content.get("allow_stdin") is False:
            self.violate(f"input_request for {self._where(req)} although allow_stdin was false")
        if req is None or req.content.get("allow_stdin") is False:
            # Answer anyway, so that a kernel which should not have asked does not hang.
            self.answer_input(msg, "")
            return
        req.stdin.append(msg)

    def _on_reply(self, name: str, req: Request | None, msg: Msg) -> None:
        if req is None:
            self.violate(f"{msg.msg_type} on {name} answers no request this client sent")
            return
        if not req.reply_type:
            self.violate(f"{msg.msg_type} on {name} answers {req.msg_type}, which has no reply")
        elif req.replies:
            self.violate(f"a second {msg.msg_type} for {self._where(req)}")
        elif name != req.channel:
            self.violate(f"{msg.msg_type} came on {name}, the request was sent on {req.channel}")
        elif req.reply_type and msg.msg_type != req.reply_type:
            self.violate(f"{msg.msg_type} answers {req.msg_type}; expected {req.reply_type}")
        for key in ("msg_type", "session"):
            if msg.parent_header.get(key) != req.header.get(key):
                self.violate(f"{msg.msg_type}: parent_header {key} is "
                             f"{schema.short(msg.parent_header.get(key))}, the request's is "
                             f"{schema.short(req.header.get(key))}")
        req.replies.append(msg)

