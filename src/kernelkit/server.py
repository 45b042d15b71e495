"""Binding the five channels and running their threads; nothing about what messages mean.

(Why ~750 lines: the channels' pieces are their own modules — ``shell``, ``iopub``,
``stdin``, ``interrupts``, ``connections``, ``droplog``; what stays is the one object
that owns every socket and the control thread's loop, with the signal handling that
must live next to it. Splitting the signal chase from the loop it runs in would put
one state machine in two files. Candidates to move next: ``_ParentWatch`` and the ipc
path check, into ``connection``.)

Threads and who owns what:

* the **main thread** runs the main shell's requests (taken from the shell channel's
  queue), so that SIGINT, which Python delivers to the main thread only, interrupts
  the running hook;
* the **shell reader thread** (``shell.ShellChannel``) reads the shell socket and
  routes requests to the main shell or a child subshell; each child subshell runs on
  a thread of its own;
* the **control thread** owns the control socket, answers there while shell is busy,
  turns IOPub subscriptions into ``iopub_welcome`` (protocol 5.5), reads the signal
  wake-up pipe (interrupts reach subshells from here), watches the parent, throws
  away what reaches stdin between conversations, and owns the connection guard
  (``connections``: monitors of every socket, cutting connections that abuse them);
* the **heartbeat thread** echoes in libzmq's C proxy on its own context, so it keeps
  answering while Python code holds the GIL;
* IOPub (``iopub.IOPub``), shell sends and the stdin conversation
  (``stdin.StdinChannel``) are used from several threads, each behind its own lock.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING

import zmq

from .connection import PORT_RANGE_ENV, ConnectionInfo, parse_port_range
from .connections import (
    MAX_PER_CHANNEL,
    MAX_SUBSCRIBER_BYTES,
    STALL_CHECK_S,
    ConnectionGuard,
    raise_fd_limit,
    trim_heap,
)
from .droplog import DropLog
from .interrupts import IDLE, Gate, Guard, OnInterrupt, ThreadGate
from .iopub import DEFAULT_MAX_BYTES, IOPub
from .shell import Handler, ShellChannel, send_frames
from .stdin import StdinChannel
from .wire import JSONDict, Message, ProtocolError, Session

if TYPE_CHECKING:
    import logging
    import signal
else:  # the C module: ``signal`` builds three enums when imported, ~0.4 ms of start-up
    import _signal as signal

# How long sockets may keep unsent messages at exit (ms): replies and the last
# status must reach the client, but a vanished client must not hold up the exit.
LINGER_MS = 1000
# Grace given to a busy main thread to finish after shutdown before the process exits anyway.
SHUTDOWN_GRACE_S = 2.0
# How often the control thread looks at the parent process (s).
PARENT_POLL_S = 1.0
# A SIGINT the main thread has not acted on is sent again this often, this many times.
CHASE_INTERVAL_S = 0.05
CHASE_TRIES = 60
# A handler run this close before the control thread reads the signal was for that signal.
HANDLED_JUST_NOW_S = 0.005
# How long a thread publishing large output waits for IOPub to have room (s).
IOPUB_WAIT_S = 10.0
IOPUB_NOTICE_MIN = 64 * 1024
# Signals whose default action ends the process: they end the kernel cleanly instead
# (its connection file removed, a bridge backend ended), as SIGTERM does.
ENDING_SIGNALS = ("SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGVTALRM",
                  "SIGPROF", "SIGXCPU", "SIGXFSZ", "SIGPOLL")

# What libzmq may take from a peer before anything is authenticated. The largest
# message a channel accepts, per frame (a peer that sends more is disconnected); shell
# carries cells and comm buffers, so it allows most (KERNELKIT_MAX_MESSAGE_BYTES).
MAX_MESSAGE_BYTES = {
    "shell": 256 << 20,
    "control": 64 << 20,
    "stdin": 16 << 20,
    "iopub": 4096,  # subscriptions: Jupyter clients send one, to the empty topic
    "hb": 16 << 10,  # pings: jupyter_client sends b"ping"
}
# Messages queued per peer: stdin has one conversation at a time, the heartbeat echoes.
HWM = {"stdin": 16, "hb": 64}
SUBSCRIPTION_HWM = 16
# Dead peers are noticed by TCP keepalive (a client that vanished without closing).
# A client that closes and reconnects at once with the same routing identity (jupyter
# server does so with the browser's session id when it replaces a stale websocket)
# may find its old connection not yet gone inside libzmq; without ROUTER_HANDOVER the
# new one is then set aside and, once libzmq retries it, its next frame is taken for
# its identity: that client is never answered (8 of 200 immediate reconnects, measured;
# ipykernel sets it for the same reason, ipykernel#270, libzmq#2892). The price: a local
# process that knows a client's identity (every IOPub message shows it) can take over
# the connection; the client's is cut, it reconnects and takes it back, and only
# replies in flight at that moment are lost (docs/reliability.md, attack 5).
ROUTER_HANDOVER = ("shell", "control", "stdin")
KEEPALIVE = {"idle": 30, "interval": 5, "count": 3}


def _logger() -> logging.Logger:
    # logging costs a few ms to import: only pay when there is something to say.
    from .logs import logger

    return logger()


class _Terminate(BaseException):
    """Raised by the SIGTERM (SIGHUP, ...) handler to unwind the main thread to a clean exit."""


class Server:
    """Binds the five channels and moves messages between them and a Handler."""

    def __init__(self, info: ConnectionInfo, session: Session) -> None:
        self.info = info
        self.session = session
        # The shell and control threads (this server's) both check signatures: it owns
        # the lock that makes the replay guard's check-and-record one step.
        session.replay_guard.lock = threading.Lock()
        self.handler: Handler | None = None
        self.exit_code = 0
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._ctx.linger = LINGER_MS
        self._hb_ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._running = False
        self._terminating = False  # main thread: an ending signal has been raised once
        self._done = threading.Event()
        self._main_ident = threading.main_thread().ident
        self.main_gate = Gate(self._main_ident)
        self._no_gate = _NoGate()
        self._thread_gate = threading.local()  # .gate: a subshell thread's own gate
        # SIGINT bookkeeping for the chase (see _chase_interrupt); the handler writes it.
        self._sigint_runs = 0
        self._chase = 0
        self._chase_seen = 0
        self._chase_entry = 0
        self._chase_next = 0.0
        self._sigint_last_run = 0.0
        self._signal_rx = self._signal_tx = -1
        self.drops = DropLog(lambda text: _logger().warning("%s", text))
        fd_limit = raise_fd_limit()
        # Five channels' worth of connections must leave descriptors for the rest.
        cap = _env_int("KERNELKIT_MAX_CONNECTIONS", MAX_PER_CHANNEL)
        self.guard = ConnectionGuard(lambda text: _logger().warning("%s", text),
                                     max_per_channel=max(1, min(cap, (fd_limit - 128) // 5)))
        self._ipc_owned: dict[str, tuple[int, int]] = {}
        self._iopub_over = False  # control thread: IOPub holds more than its bound
        self._wake_lock = threading.Lock()  # the wake-up PAIR socket, sent on from any thread
        self._bind()

    # -- setup ---------------------------------------------------------------

    def _bind(self) -> None:
        ctx = self._ctx
        # Ports left 0 are chosen inside this range if a launcher set one (`kernelkit launch`).
        # Taken out of the environment, so that the user's code does not inherit it.
        self._port_range = parse_port_range(os.environ.pop(PORT_RANGE_ENV, ""))
        shell = ctx.socket(zmq.ROUTER)
        self.control = ctx.socket(zmq.ROUTER)
        stdin = ctx.socket(zmq.ROUTER)
        iopub = ctx.socket(zmq.XPUB)
        iopub.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.hb = self._hb_ctx.socket(zmq.ROUTER)
        self.hb.linger = 0
        sockets = (("shell", shell), ("iopub", iopub), ("stdin", stdin),
                   ("control", self.control), ("hb", self.hb))
        limits = dict(MAX_MESSAGE_BYTES, shell=_env_int("KERNELKIT_MAX_MESSAGE_BYTES",
                                                         MAX_MESSAGE_BYTES["shell"]))
        for channel, sock in sockets:
            sock.setsockopt(zmq.MAXMSGSIZE, limits[channel])
            if channel in HWM:
                sock.sndhwm = sock.rcvhwm = HWM[channel]
            if channel == "iopub":
                # Subscriptions enter libzmq's trie as the kernel's threads take them from
                # this queue: kept short, a flood is read slowly enough to be cut early.
                sock.rcvhwm = SUBSCRIPTION_HWM
            if channel in ROUTER_HANDOVER:
                sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
            if self.info.transport == "tcp":
                sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
                sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, KEEPALIVE["idle"])
                sock.setsockopt(zmq.TCP_KEEPALIVE_INTVL, KEEPALIVE["interval"])
                sock.setsockopt(zmq.TCP_KEEPALIVE_CNT, KEEPALIVE["count"])
        for channel, sock in sockets:
            self._bind_one(channel, sock)
            self.guard.watch(channel, sock, self.info.url(channel))
        self.iopub = IOPub(iopub, self.session,
                           _env_int("KERNELKIT_IOPUB_MAX_BYTES", DEFAULT_MAX_BYTES),
                           on_full=self._wake_control)
        self.iopub.flood_bytes = MAX_SUBSCRIBER_BYTES
        self.shell = ShellChannel(shell, self.session, _logger, self.drops)
        self.stdin = StdinChannel(stdin, self.session, lambda: self._running,
                                  lambda text: _logger().warning("%s", text), self.drops)
        # Wakes the control loop (exit) from other threads.
        self._wake_control_rx = ctx.socket(zmq.PAIR)
        self._wake_control_rx.bind("inproc://kernelkit-wake-control")
        self._wake_control_tx = ctx.socket(zmq.PAIR)
        self._wake_control_tx.connect("inproc://kernelkit-wake-control")

    def _bind_one(self, channel: str, sock: zmq.Socket[bytes]) -> None:
        info = self.info
        if info.curve_secretkey is not None:
            self._curve_server(sock)
        if info.transport == "tcp":
            host = f"tcp://[{info.ip}]" if ":" in info.ip else f"tcp://{info.ip}"
            if ":" in info.ip:
                sock.setsockopt(zmq.IPV6, 1)
            if info.port(channel) == 0:
                lo, hi = self._port_range or (49152, 65535)
                info.set_port(channel, sock.bind_to_random_port(
                    host, min_port=lo, max_port=hi + 1, max_tries=max(100, hi - lo)))
            else:
                sock.bind(info.url(channel))
            return
        # ipc: pick the first free "<ip>-<n>" path when no port was given, like jupyter_client.
        if info.port(channel) == 0:
            port = 1
            while os.path.exists(f"{info.ip}-{port}") or port in info.ports():
                port += 1
            info.set_port(channel, port)
        path = f"{info.ip}-{info.port(channel)}"
        _refuse_ipc_in_use(path)
        # libzmq makes the socket file with the umask's mode: only this user may connect.
        old = os.umask(0o077)
        try:
            sock.bind(info.url(channel))
        finally:
            os.umask(old)
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)
            st = os.stat(path)
            self._ipc_owned[path] = (st.st_dev, st.st_ino)

    def _curve_server(self, sock: zmq.Socket[bytes]) -> None:
        """Make a socket a CurveZMQ server with the connection file's keypair (before bind).

        jupyter_client (>= 8.9) connects every channel, heartbeat included, as a Curve
        client with ``curve_publickey`` as the server key.
        """
        assert self.info.curve_secretkey is not None and self.info.curve_publickey is not None
        secret = self.info.curve_secretkey.encode("ascii")
        public = self.info.curve_publickey.encode("ascii")
        if not zmq.has("curve"):
            raise RuntimeError("the connection file asks for CurveZMQ, which this libzmq lacks")
        if zmq.curve_public(secret) != public:
            raise ValueError("curve_publickey is not the public key of curve_secretkey")
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_server = True

    # -- running -------------------------------------------------------------

    def run(self, handler: Handler) -> int:
        """Serve until shutdown; returns the exit code. Must run on the main thread."""
        self.handler = handler
        self._running = True
        self._install_signal_handlers()
        threading.Thread(target=self._heartbeat, name="kernelkit-heartbeat", daemon=True).start()
        control = threading.Thread(target=self._control_loop, name="kernelkit-control", daemon=True)
        control.start()
        self.shell.start(handler)
        try:
            self._main_shell()
        except _Terminate as exc:
            import signal as named  # the enum, for its name: only at exit

            name = named.Signals(exc.args[0]).name if exc.args else "SIGTERM"
            _logger().info("%s: exiting", name)
        finally:
            self._running = False
            # Never block here: the control thread may have seen _running go false (a
            # signal wakes it) and left already, and a PAIR send to no peer waits forever.
            with self._wake_lock, contextlib.suppress(zmq.Again):
                self._wake_control_tx.send(b"", zmq.NOBLOCK)
            control.join(SHUTDOWN_GRACE_S)
            # A control thread stuck in a hook still holds its socket: then term() would hang.
            self._close(term=not control.is_alive())
            self._done.set()
        return self.exit_code

    def _main_shell(self) -> None:
        """The main shell: requests without a subshell_id, one at a time, on this thread."""
        deliver = self._deliver
        while self._running:
            try:
                self.shell.serve_main(lambda msg: deliver("shell", msg), lambda: self._running)
            except KeyboardInterrupt:
                continue  # SIGINT while idle is harmless

    def _deliver(self, channel: str, msg: Message) -> None:
        assert self.handler is not None
        try:
            self.handler.handle(channel, msg)
        except KeyboardInterrupt:
            _logger().warning("interrupt arrived between requests; ignored")
        except Exception:
            _logger().exception("internal error handling %s on %s", msg.msg_type, channel)

    def _deliver_frames(self, channel: str, frames: list[bytes]) -> None:
        try:
            msg = self.session.deserialize(frames)
        except ProtocolError as exc:
            self.drops.dropped(channel, str(exc))
            return
        except Exception as exc:  # no message, however odd, may end the loop serving a channel
            self.drops.dropped(channel, f"could not be parsed: {exc!r}")
            return
        self._deliver(channel, msg)

    def _control_loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self.control, zmq.POLLIN)
        # The XPUB socket's own file descriptor only says "look at me": polling it
        # from this thread never touches the socket, which belongs to the IOPub lock.
        iopub_fd = self.iopub.socket.getsockopt(zmq.FD)
        poller.register(iopub_fd, zmq.POLLIN)
        wake_rx = self._wake_control_rx
        poller.register(wake_rx, zmq.POLLIN)
        stdin_fd = self.stdin.sock.getsockopt(zmq.FD)  # only a notice, as for IOPub
        poller.register(stdin_fd, zmq.POLLIN)
        if self._signal_rx >= 0:
            poller.register(self._signal_rx, zmq.POLLIN)
        monitors = self.guard.monitors()
        for monitor in monitors:
            poller.register(monitor, zmq.POLLIN)
        parent = _ParentWatch()
        if parent.fd is not None:
            poller.register(parent.fd, zmq.POLLIN)
        self.iopub.welcome()
        next_sweep = 0.0
        try:
            while self._running:
                timeout = self._control_timeout()
                events = dict(poller.poll(int(timeout * 1000)))
                if self._chase:
                    self._chase_interrupt()
                self.iopub.welcome()  # on its wake-up, and periodically for one another send ate
                self._guard_iopub()
                if self.control in events:
                    while self._running:
                        try:
                            frames = self.control.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._deliver_frames("control", frames)
                if wake_rx in events:
                    wake_rx.recv()
                if self._signal_rx in events:
                    self._signals_arrived()
                for monitor in monitors:
                    if monitor in events:
                        self.guard.on_events(monitor)
                now = time.monotonic()
                if stdin_fd in events or now >= next_sweep:
                    self.stdin.discard_idle()
                if now >= next_sweep:
                    next_sweep = now + PARENT_POLL_S
                    self.drops.flush()
                    if parent.gone():
                        _logger().warning("parent process is gone; exiting")
                        self.stop(0)
                elif parent.fd is not None and parent.fd in events and parent.gone():
                    _logger().warning("parent process is gone; exiting")
                    self.stop(0)
        finally:
            self.control.close()
            wake_rx.close()
            parent.close()

    def _control_timeout(self) -> float:
        timeout = CHASE_INTERVAL_S if self._chase else PARENT_POLL_S
        due = self.iopub.next_due()
        if due is not None:
            timeout = min(timeout, max(0.0, due - time.monotonic()) + 0.001)
        if self._iopub_over:
            timeout = min(timeout, STALL_CHECK_S / 2)
        return timeout

    def _guard_iopub(self) -> None:
        """Control thread: cut IOPub connections that flood subscriptions or take no output."""
        if self.iopub.subscription_bytes > MAX_SUBSCRIBER_BYTES:
            self.iopub.subscription_bytes = 0
            self.guard.cut_subscription_floods()
        held = self.iopub.held_bytes()
        was_over, self._iopub_over = self._iopub_over, held > self.iopub.max_bytes
        if was_over and not self._iopub_over:
            trim_heap()  # what the cut subscriber held has been freed by now: give it back
        if self._iopub_over:
            cut = self.guard.cut_stalled()
            _logger().debug("IOPub holds %d bytes; cut %s", held, cut)

    def _wake_control(self) -> None:
        """From any thread: make the control loop look (at IOPub's bound) now."""
        with self._wake_lock, contextlib.suppress(zmq.ZMQError):
            self._wake_control_tx.send(b"", zmq.NOBLOCK)

    def _heartbeat(self) -> None:
        with contextlib.suppress(zmq.ZMQError):  # context terminated at exit
            zmq.proxy(self.hb, self.hb)

    def stop(self, exit_code: int = 0) -> None:
        """Ask the kernel to exit; safe from any thread. A busy main thread gets a grace period."""
        self.exit_code = exit_code
        self._running = False
        if threading.get_ident() == self._main_ident:
            return
        self.shell.wake_main()
        threading.Thread(target=self._force_exit, name="kernelkit-exit", daemon=True).start()

    def _force_exit(self) -> None:
        if self._done.wait(SHUTDOWN_GRACE_S):
            return
        _logger().warning(
            "main thread still busy %.0fs after shutdown; exiting", SHUTDOWN_GRACE_S
        )
        # First unwind it as SIGTERM does, so that clean-up on its way out runs (a bridge
        # kernel ends its backend, which lives in its own session); then exit regardless.
        exit_code = self.exit_code
        if self._main_ident is not None:
            with contextlib.suppress(OSError):
                signal.pthread_kill(self._main_ident, signal.SIGTERM)
            if self._done.wait(SHUTDOWN_GRACE_S):
                return
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code)

    def _close(self, term: bool) -> None:
        self.shell.close()
        self.stdin.close()
        with self._wake_lock:
            self._wake_control_tx.close()
        self.iopub.close()
        self.guard.close()
        # term() waits (up to LINGER_MS) until queued replies and statuses are sent.
        if term:
            self._ctx.term()
        self.drops.flush(force=True)
        self.drops.log_totals()
        for path, owned in self._ipc_owned.items():
            # Only files this kernel made: another process may have taken the path since.
            with contextlib.suppress(OSError):
                st = os.stat(path)
                if (st.st_dev, st.st_ino) == owned:
                    os.unlink(path)

    # -- sending ---------------------------------------------------------------

    def send(
        self,
        channel: str,
        msg_type: str,
        content: JSONDict,
        parent: Message | None = None,
        metadata: JSONDict | None = None,
        buffers: list[bytes] | tuple[bytes, ...] = (),
    ) -> JSONDict:
        """Send one message: a reply on shell/control to the parent's sender, or an IOPub publish.

        Returns the header sent. Sending is never cut in half by an interrupt: one
        that arrives meanwhile is raised once the frames are out (interrupts.Gate).
        """
        header = self.session.header(msg_type)
        parent_header = (parent.raw_header or parent.header) if parent is not None else None
        if channel == "iopub":
            ids: list[bytes] = [msg_type.encode()]
        else:
            ids = parent.identities if parent is not None else []
        frames = self.session.serialize(
            msg_type, content, parent_header, metadata, ids, buffers, header=header
        )
        if channel == "iopub" and self.iopub.over and not self.iopub.wait_for_room(IOPUB_WAIT_S):
            # Subscribers hold all IOPub may hold and none could be cut: this one is
            # not sent (the bound is in bytes), and the notebook is told.
            size = sum(len(f) for f in frames)
            _logger().warning("IOPub full: %s of %d bytes not sent", msg_type, size)
            if msg_type == "stream" or size < IOPUB_NOTICE_MIN:
                return header
            notice = {"name": "stderr", "text": f"[kernelkit: {msg_type} of {size:,} bytes "
                      "not sent: IOPub subscribers are not taking output]\n"}
            frames = self.session.serialize("stream", notice, parent_header, None,
                                            [b"stream"])
        gate = self.gate()
        gate.begin_send()
        try:
            if channel == "iopub":
                self.iopub.send(frames)
            elif channel == "shell":
                self.shell.send(frames)
            elif channel == "control":
                send_frames(self.control, frames)
            else:
                raise ValueError(f"cannot send {msg_type} on channel {channel!r}")
        finally:
            gate.end_send()
        return header

    def wait_for_subscriber(self, timeout: float) -> bool:
        """Wait until some client has subscribed to IOPub (True), or timeout (False)."""
        return self.iopub.subscribed.wait(timeout)

    def queued(self, channel: str = "shell") -> list[Message]:
        """Requests waiting in the calling thread's shell queue (to abort after an error)."""
        assert channel == "shell", "only shell queues can be drained"
        return self.shell.queued()

    def request_input(self, parent: Message, prompt: str, password: bool) -> str:
        """Ask the client that sent ``parent`` for a line of input over stdin and wait for it."""
        return self.stdin.request_input(parent, prompt, password)

    # -- subshells -------------------------------------------------------------------

    def create_subshell(self) -> str:
        return self.shell.create(on_start=self._register_gate)

    def _register_gate(self, gate: ThreadGate) -> None:
        self._thread_gate.gate = gate

    def delete_subshell(self, subshell_id: str) -> bool:
        sub = self.shell.delete(subshell_id)
        if sub is None:
            return False
        if sub.gate is not None:
            sub.gate.interrupt()  # a busy subshell ends its request, then its thread
        return True

    def list_subshells(self) -> list[str]:
        return self.shell.ids()

    # -- interrupts --------------------------------------------------------------

    def gate(self) -> Gate:
        """The calling thread's interrupt gate (one that nothing interrupts, off subshells)."""
        if threading.get_ident() == self._main_ident:
            return self.main_gate
        gate: Gate = getattr(self._thread_gate, "gate", self._no_gate)
        return gate

    def interruptible(self, on_interrupt: OnInterrupt | None = None) -> Guard:
        """Run a block (a kernel hook) that SIGINT or interrupt_request may cut short.

        By default an interrupt raises KeyboardInterrupt wherever the hook is.
        ``on_interrupt(frame)`` may handle it instead (returning True), for code such
        as an event loop that must not be cut at an arbitrary point.
        """
        return self.gate()(on_interrupt)

    def interrupt(self) -> None:
        """Interrupt as SIGINT would (interrupt_mode "message"): every running hook.

        The signal's byte on the wake-up pipe makes the control thread pass it on to
        the subshells (_signals_arrived), exactly as for a SIGINT from outside.
        """
        self.main_gate.interrupt()

    def _install_signal_handlers(self) -> None:
        if threading.get_ident() != self._main_ident:
            return
        signal.signal(signal.SIGINT, self._on_sigint)
        for name in ENDING_SIGNALS:
            signum = getattr(signal, name, None)
            # Handlers the kernel's own code set up before (SIGALRM, say) stay.
            if signum is not None and (name == "SIGTERM" or signal.getsignal(signum)
                                       in (signal.SIG_DFL, None)):
                signal.signal(signum, self._on_sigterm)
        # Every signal also writes a byte here, which the control thread watches:
        # see _chase_interrupt for why.
        self._signal_rx, self._signal_tx = os.pipe()
        os.set_blocking(self._signal_tx, False)
        signal.set_wakeup_fd(self._signal_tx, warn_on_full_buffer=False)

    def _signals_arrived(self) -> None:
        """Control thread: bytes on the wake-up pipe, one per signal received."""
        try:
            data = os.read(self._signal_rx, 512)
        except OSError:
            return
        if signal.SIGINT in data:
            # Interrupts are for the whole kernel (JEP 91): subshells' hooks too.
            for gate in self.shell.gates():
                gate.interrupt()
            # The handler runs on the main thread, usually just before or just after
            # this read; if it has not run lately, this SIGINT may be waiting on a
            # blocked thread.
            recently = time.monotonic() - self._sigint_last_run < HANDLED_JUST_NOW_S
            if not recently:
                self._chase, self._chase_seen = CHASE_TRIES, self._sigint_runs
                self._chase_entry = self.main_gate.entries  # the hook it is for
                self._chase_next = time.monotonic() + CHASE_INTERVAL_S
        if any(signum in data for signum in self._ending_signums()):
            # The main thread's handler may not run soon (the same race as SIGINT's,
            # with the thread about to block in poll): stop from here as well.
            self.stop(0)

    def _ending_signums(self) -> list[int]:
        return [int(s) for name in ENDING_SIGNALS if (s := getattr(signal, name, None))]

    def _chase_interrupt(self) -> None:
        """Control thread: re-send a SIGINT that arrived but did not interrupt the main thread.

        A signal that lands just before the main thread enters a blocking call
        (``time.sleep`` right after printing, say) is noted by Python but only
        acted on when that call returns, which may be never. While the hook is
        still running and the handler has not run, send it again: this time it
        finds the thread inside the call and wakes it.
        """
        gate = self.main_gate
        if (self._sigint_runs != self._chase_seen or not gate.armed
                or gate.entries != self._chase_entry):
            # Handled, or no hook runs, or another one does: the hook this SIGINT was for
            # has ended (a slow host can read the pipe after the handler's 5 ms), and an
            # interrupt must not reach the next cell.
            self._chase = 0
            return
        if time.monotonic() < self._chase_next:
            return
        self._chase -= 1
        self._chase_next = time.monotonic() + CHASE_INTERVAL_S
        signal.pthread_kill(self._main_ident, signal.SIGINT)  # type: ignore[arg-type]

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self._sigint_runs += 1
        self._sigint_last_run = time.monotonic()
        self.main_gate.on_sigint(frame)

    def _on_sigterm(self, signum: int, frame: object) -> None:
        self._running = False
        if self._terminating:
            return  # already unwinding: a second raise would cut the clean-up short
        self._terminating = True
        raise _Terminate(signum)


class _NoGate(Gate):
    """The gate of threads whose hooks nothing interrupts (the control thread)."""

    def enter(self, on_interrupt: OnInterrupt | None) -> tuple[str, OnInterrupt | None]:
        return (IDLE, None)

    def leave(self, saved: tuple[str, OnInterrupt | None]) -> None:
        return None

    def begin_send(self) -> None:
        return None

    def end_send(self) -> None:
        return None

    def interrupt(self) -> None:
        return None


class _ParentWatch:
    """Notices when the process that launched the kernel (JPY_PARENT_PID) has gone.

    On Linux a pidfd names that very process, so a new process given the same pid
    later is not taken for it; ``fd`` becomes readable when it exits. Elsewhere the
    pid is probed, which a reused pid can fool.
    """

    def __init__(self) -> None:
        try:
            self.pid = int(os.environ.get("JPY_PARENT_PID", "0"))
        except ValueError:
            self.pid = 0
        self.ppid = os.getppid()
        self.fd: int | None = None
        self._gone = False
        if self.pid > 0 and hasattr(os, "pidfd_open"):
            try:
                self.fd = os.pidfd_open(self.pid)
            except ProcessLookupError:
                self._gone = True
            except OSError:
                self.fd = None

    def gone(self) -> bool:
        if self.pid <= 0:
            return False
        if self._gone:
            return True
        if self.ppid == self.pid and os.getppid() != self.pid:
            return True  # we were re-parented: the launcher died
        if self.fd is not None:
            import select

            readable, _, _ = select.select([self.fd], [], [], 0)
            return bool(readable)
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


def _env_int(name: str, default: int) -> int:
    """A positive integer setting from the environment, or the default (with a warning)."""
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = int(text)
        if value <= 0:
            raise ValueError
    except ValueError:
        _logger().warning("%s=%r is not a positive integer; using %d", name, text, default)
        return default
    return value


def _refuse_ipc_in_use(path: str) -> None:
    """Refuse to bind an ipc path another process listens on (libzmq would take it over).

    A socket file nobody accepts on is left from a kernel that died: binding replaces
    it. Anything else at the path is not ours to replace.
    """
    import socket
    import stat

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise RuntimeError(f"cannot bind {path}: something other than a socket is there")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return  # stale
    except OSError as exc:
        raise RuntimeError(f"cannot bind {path}: {exc}") from None
    finally:
        probe.close()
    raise RuntimeError(f"cannot bind {path}: another process (a kernel?) is listening there")
