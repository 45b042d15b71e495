"""The backend process: start it, write lines to it, read its output, and end it with its children.

(Why ~850 lines: reading both pipes in one loop, the idle watcher and the lifetime
guarantees — parent-death signal, keeper, pidfd, group kill — all act on the same
pipes and process; they were separate once and the seams were where output got lost.
A split along "spawning" (``_spawn``, ``_Spawner``, the keeper) is the next step.)

Reading. The thread that runs requests reads the backend's stdout *and* stderr
itself, in one poll loop (no reader thread handing lines over through a queue: one
thread wake-up less per line). One loop for both pipes is what lets the host keep
the promise of docs/bridge-protocol.md, "Output order": when the reply arrives,
whatever the backend wrote to stderr before it is already in the stderr pipe, and
the host reads it (``drain_stderr``) before it answers the client. Between requests
(``end`` … ``begin``) a watcher thread reads and logs what the backend writes, so that
a chatty idle backend never blocks on a full pipe and its output never lands in the
next cell; the request thread takes the pipes back by switching the watcher's epoll
off (one system call, no thread wake-up; about 4 µs a request for the switches and
the two polls that catch up, measured in-process). Without epoll (not Linux) there is
no watcher: output between requests is read, and logged, when the next one starts.

Bounds. A stdout line may be at most ``max_line`` bytes (MAX_LINE, or
$KERNELKIT_BRIDGE_MAX_LINE): a longer one is ``TooLong`` and the backend is ended, so
the host never holds more than that for an unfinished line. Stderr is passed on in
chunks as it comes; the host keeps only the last STDERR_TAIL lines, each cut to
STDERR_LINE_MAX characters, for reports.

Lifetime. The backend runs in its own session (a SIGINT that Jupyter sends to the
kernel's process group reaches the host, which decides what the backend gets) and
therefore in its own process group, which the host kills whenever the backend ends,
so that helpers it started go too. When the host dies without cleaning up (SIGKILL,
a kill of its process group, os._exit), two things still end the backend: on Linux
a parent-death signal (SIGKILL), and for its children a keeper: a tiny ``sh`` in a
session of its own that waits on a pipe only the host holds and kills the
backend's process group when the pipe closes. The exit of the backend itself is
watched through a pidfd, not only through the end of its output, so a child that
keeps the backend's stdout open cannot make a request hang.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Lines of the backend's stderr kept for reports when it dies, and how long each may be.
STDERR_TAIL = 20
STDERR_LINE_MAX = 1000
# The longest line the backend may write on its stdout (bytes, newline included).
# Large enough for any output a notebook can show (images and HTML of tens of MB),
# small enough that one line costs the host a bounded amount: it holds the unfinished
# line (at most this much), then the decoded text and the parsed message, about 3x.
MAX_LINE = 64 << 20
MAX_LINE_ENV = "KERNELKIT_BRIDGE_MAX_LINE"
# Bytes read from a pipe at a time; while a long line comes in, up to BIG_READ_SIZE.
READ_SIZE = 1 << 16
BIG_READ_SIZE = 1 << 20
# Bytes written to the backend's stdin per write call: a big request goes in pieces, each
# finished if the pipe takes less of it (a signal can cut a write to a pipe short).
WRITE_SIZE = 1 << 20
# The capacity asked for the backend's stdin and stdout pipes (Linux, F_SETPIPE_SZ; the
# default is 64 KiB): a 10 MB line crosses in 10 pipe-fulls, not 160, each one a wake-up
# of the reader and the writer. Best effort: /proc/sys/fs/pipe-max-size may refuse it.
PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031
# At most this much is read from a pipe when catching up (after a reply, at a request's
# start, after the backend exited): a child that keeps writing cannot hold the host.
DRAIN_LIMIT = 4 << 20
# Without a pidfd, how often a waiting reader checks whether the backend still runs (ms).
EXIT_CHECK_MS = 200
# Logged lines of output between requests are cut to this many characters.
LOG_LINE_MAX = 200

LINUX = sys.platform.startswith("linux")
# The keeper: waits for EOF on its stdin (a pipe whose write end only the host holds),
# then kills the backend's process group ($1). `kill -s KILL -- -PGID` is the form
# every POSIX sh (dash included) takes.
KEEPER_SCRIPT = 'read x; kill -s KILL -- -"$1" 2>/dev/null'


def configured_max_line() -> int:
    """MAX_LINE, or $KERNELKIT_BRIDGE_MAX_LINE (bytes) when set to a positive integer."""
    raw = os.environ.get(MAX_LINE_ENV, "")
    if raw:
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value > 0:
            return value
        from ..logs import logger

        logger().warning("ignoring %s=%r: not a positive integer", MAX_LINE_ENV, raw)
    return MAX_LINE


@dataclass(slots=True)
class Line:
    """One line from the backend's stdout (with its newline); the reader may empty ``data``."""

    data: bytes | bytearray


@dataclass(slots=True)
class Stderr:
    text: str


@dataclass(slots=True)
class Exited:
    """The backend exited (or closed its stdout); everything it wrote before came first."""


@dataclass(slots=True)
class TooLong:
    """The backend wrote a stdout line longer than ``limit`` bytes; it must be ended."""

    limit: int


Event = Line | Stderr | Exited | TooLong


def launch(argv: list[str], max_line: int | None = None) -> BackendProcess:
    """Start a bridge backend as the host runs it (``KERNELKIT_BRIDGE=1`` in its environment).

    ``kernelkit bridge`` calls this before it imports the engine, and hands the process to
    ``BridgeKernel(backend=...)``: the backend's start-up and the host's imports overlap.
    Raises OSError if the program cannot be run.
    """
    return BackendProcess(argv, env={**os.environ, "KERNELKIT_BRIDGE": "1"}, max_line=max_line)


class BackendProcess:
    """One running backend program.

    It starts *busy*: the thread that created it reads its output (the ``initialize``
    exchange) until it calls ``end``; ``begin`` and ``end`` bracket every request.
    """

    def __init__(
        self, argv: list[str], env: dict[str, str] | None = None, max_line: int | None = None
    ) -> None:
        self.argv = argv
        self.max_line = max_line if max_line is not None else configured_max_line()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
        self._write_lock = threading.Lock()
        self.proc = _spawn(argv, env)
        self._keeper: subprocess.Popen[bytes] | None = None
        self._keeper_w = -1
        self._start_keeper()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._out_fd = self.proc.stdout.fileno()
        self._err_fd = self.proc.stderr.fileno()
        os.set_blocking(self._out_fd, False)
        os.set_blocking(self._err_fd, False)
        assert self.proc.stdin is not None
        self._in_fd = self.proc.stdin.fileno()
        if LINUX:
            _grow_pipe(self._in_fd)
            _grow_pipe(self._out_fd)
        self._pidfd = -1
        if LINUX and hasattr(os, "pidfd_open"):
            with contextlib.suppress(OSError):
                self._pidfd = os.pidfd_open(self.proc.pid)
        # stdout: bytes read and not yet handed out as lines.
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf known to hold no newline
        self._out_eof = False
        self._too_long = False
        self._too_long_told = False
        # stderr: decoded text not yet handed out, and the unfinished line for the tail.
        self._err_decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._err_text: list[str] = []
        self._err_line: list[str] = []
        self._err_line_len = 0
        self._err_eof = False
        self._dead = False  # the process has exited (seen through the pidfd or waitid)
        self._closed = False
        self.busy = True
        # Between requests: a complete stdout line is offered to on_idle_line first (True:
        # taken, e.g. a comm message, which is state and must not be dropped), else logged
        # (called with _lock held). on_end is called once when the backend has ended: the
        # host stopped it, or it was seen to exit between requests.
        self.on_idle_line: Callable[[bytes | bytearray], bool] | None = None
        self.on_end: Callable[[], None] | None = None
        # Reading is the busy request thread's, or the watcher's when idle: this lock
        # makes the hand-over exact.
        self._lock = threading.Lock()
        self._poll = select.poll()
        self._poll.register(self._out_fd, select.POLLIN)
        self._poll.register(self._err_fd, select.POLLIN)
        if self._pidfd >= 0:
            self._poll.register(self._pidfd, select.POLLIN)
        self._err_poll = select.poll()
        self._err_poll.register(self._err_fd, select.POLLIN)
        self._watcher = _Watcher(self) if LINUX and hasattr(select, "epoll") else None

    @property
    def pid(self) -> int:
        return self.proc.pid

    # -- requests: who reads -----------------------------------------------------------

    def begin(self) -> None:
        """A request starts: take the pipes from the watcher; what came before is logged."""
        with self._lock:
            if self.busy:
                return
            self.busy = True
            if self._watcher is not None:
                self._watcher.unwatch()
            self._catch_up()
            self._log_pending()

    def end(self) -> None:
        """The last request in flight was answered: what follows is logged, not shown."""
        with self._lock:
            if not self.busy:
                return
            self._log_pending()
            self.busy = False
            if self._watcher is not None and not self._closed:
                self._watcher.watch()

    def drain_stderr(self) -> str:
        """Stderr the backend wrote up to now (call it when a reply arrives), as text."""
        if self._err_poll.poll(0):  # usually empty: one cheap call, no exception
            self._read_err(DRAIN_LIMIT)
        text = "".join(self._err_text)
        self._err_text.clear()
        return text

    # -- reading ----------------------------------------------------------------------

    def next_event(self, timeout: float | None = None) -> Event | None:
        """What the backend said next, or None once ``timeout`` (s) passes. One reader only."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._closed:
                return Exited()
            event = self._pending()
            if event is not None:
                return event
            wait_ms = -1
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                wait_ms = math.ceil(left * 1000)
            if self._pidfd < 0 and not self._dead:
                wait_ms = EXIT_CHECK_MS if wait_ms < 0 else min(wait_ms, EXIT_CHECK_MS)
            ready = self._poll.poll(wait_ms)
            for fd, _ in ready:
                if fd == self._out_fd:
                    self._read_out(READ_SIZE)
                elif fd == self._err_fd:
                    self._read_err(READ_SIZE)
                elif fd == self._pidfd:
                    self._process_ended()
            if self._pidfd < 0 and not self._dead and not ready and not self.alive():
                self._process_ended()

    def _pending(self) -> Event | None:
        """The next event from what has been read already, if any."""
        if self._err_text:
            text = "".join(self._err_text)
            self._err_text.clear()
            return Stderr(text)
        if not self._too_long:
            line = self._take_line()
            if line is not None:
                return line
        if self._too_long:
            if not self._too_long_told:
                self._too_long_told = True
                return TooLong(self.max_line)
            return Exited()
        if self._out_eof or self._dead:
            if self._buf:  # a last line without its newline
                rest, self._buf = self._buf, bytearray()
                self._scanned = 0
                return Line(rest)
            return Exited()
        return None

    def _take_line(self) -> Line | None:
        buf = self._buf
        end = buf.find(b"\n", self._scanned)
        if end < 0:
            self._scanned = len(buf)
            if len(buf) > self.max_line:
                self._line_too_long()
            return None
        if end + 1 > self.max_line:
            self._line_too_long()
            return None
        self._scanned = 0
        if end + 1 == len(buf):  # the whole buffer: hand it over rather than copy it
            self._buf = bytearray()
            return Line(buf)
        if end + 1 > len(buf) - end - 1:
            # A long line with a little after it (a big output, then the reply, in one read):
            # hand the buffer over as the line and copy what follows, not the line.
            self._buf = buf[end + 1 :]
            del buf[end + 1 :]
            return Line(buf)
        line = bytes(memoryview(buf)[: end + 1])
        del buf[: end + 1]  # cheap: bytearray drops from the front without copying
        return Line(line)

    def _line_too_long(self) -> None:
        """Over the maximum: drop what is held, and everything after (the backend is ended)."""
        self._too_long = True
        self._buf = bytearray()
        self._scanned = 0

    def _read_out(self, limit: int) -> bool:
        """Read up to ``limit`` bytes of stdout that are there now; False once nothing is."""
        got = False
        while limit > 0 and not self._out_eof:
            # Within a long line (more of it than one read), read bigger pieces: fewer calls
            # and joins. Small lines keep small reads (a read allocates its size first).
            size = min(limit, BIG_READ_SIZE if len(self._buf) >= READ_SIZE else READ_SIZE)
            try:
                data = os.read(self._out_fd, size)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                self._out_eof = True
                self._unregister(self._out_fd)
                break
            got = True
            short = len(data) < size  # the pipe held no more just now
            limit -= len(data)
            if not self._too_long:  # else the backend is being ended for it: drop the rest
                self._buf += data
                if len(self._buf) > self.max_line + READ_SIZE:
                    break  # let _take_line look: never hold much more than a line
            if short:
                break  # no second read only to hear EAGAIN
        return got

    def _read_err(self, limit: int) -> None:
        while limit > 0 and not self._err_eof:
            try:
                data = os.read(self._err_fd, min(limit, READ_SIZE))
            except BlockingIOError:
                break
            except OSError:
                data = b""
            short = False
            if not data:
                self._err_eof = True
                self._unregister(self._err_fd)
                text = self._err_decoder.decode(b"", final=True)
            else:
                short = len(data) < min(limit, READ_SIZE)
                limit -= len(data)
                text = self._err_decoder.decode(data)
            if text:
                if self.busy:
                    self._err_text.append(text)
                self._keep_tail(text)
            if short:
                break

    def _keep_tail(self, text: str) -> None:
        """Remember the last lines (each cut short) for reports; log them when idle."""
        start = 0
        while True:
            nl = text.find("\n", start)
            piece = text[start:] if nl < 0 else text[start:nl]
            room = STDERR_LINE_MAX - self._err_line_len
            if room > 0 and piece:
                self._err_line.append(piece[:room])
            self._err_line_len += len(piece)
            if nl < 0:
                return
            self._finish_err_line()
            start = nl + 1

    def _finish_err_line(self) -> None:
        line = "".join(self._err_line)
        if self._err_line_len > STDERR_LINE_MAX:
            line += f" [… {self._err_line_len - STDERR_LINE_MAX:,} more characters]"
        self._err_line.clear()
        self._err_line_len = 0
        self.stderr_tail.append(line)
        if not self.busy:
            _log("backend stderr: %s", line[: STDERR_LINE_MAX + 40])

    def _catch_up(self) -> None:
        """Read what the pipes hold now (bounded), without waiting."""
        if self._dead or self._closed:
            return
        events = self._poll.poll(0)
        if not events:
            return
        ready = dict(events)
        if self._out_fd in ready:
            self._read_out(DRAIN_LIMIT)
        if self._err_fd in ready:
            self._read_err(DRAIN_LIMIT)
        if self._pidfd in ready:
            self._process_ended()

    def _log_pending(self) -> None:
        """Log (not show) the complete lines read so far: output between requests."""
        if not self._buf and not self._err_text and not self._too_long:
            return
        if self._err_text:  # read after the reply while still busy: in the tail, not logged
            text = "".join(self._err_text)
            self._err_text.clear()
            _log("backend stderr after the reply (logged, not shown): %s",
                 text[:STDERR_LINE_MAX].rstrip("\n"))
        while True:
            line = self._take_line()
            if line is None:
                break
            if self.on_idle_line is not None and self.on_idle_line(line.data):
                continue
            text = bytes(line.data[:LOG_LINE_MAX]).decode("utf-8", "replace").rstrip("\r\n")
            _log("backend output between requests (logged, not shown): %s", text)
        if self._too_long and not self._too_long_told:
            self._too_long_told = True
            _log("backend wrote a stdout line of more than %d bytes between requests; "
                 "it is ended and will be restarted", self.max_line)
            self.kill()

    def _process_ended(self) -> None:
        """The process exited: collect what it wrote before, then report the end."""
        if self._dead:
            return
        self._dead = True
        if self._pidfd >= 0:
            self._unregister(self._pidfd)
        self._read_out(DRAIN_LIMIT)
        self._read_err(DRAIN_LIMIT)
        self._kill_group()  # its helpers must not outlive it (the leader is unreaped)

    def _unregister(self, fd: int) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._poll.unregister(fd)

    # -- the idle watcher's side ---------------------------------------------------------

    def _idle_read(self, fds: set[int]) -> None:
        """Watcher: output between requests is read and logged (never shown)."""
        with self._lock:
            if self.busy or self._closed:
                return
            if self._out_fd in fds:
                self._read_out(DRAIN_LIMIT)
            if self._err_fd in fds:
                self._read_err(DRAIN_LIMIT)
            self._log_pending()
            if self._pidfd in fds and not self._dead:
                self._process_ended()
                self._log_pending()
                _log("backend %s between requests; it will be restarted for the next one",
                     self.describe_exit(0))
                self._ended()
            if self._watcher is not None:
                self._watcher.forget(
                    {fd for fd, gone in ((self._out_fd, self._out_eof),
                                         (self._err_fd, self._err_eof),
                                         (self._pidfd, self._dead)) if gone}
                )

    # -- writing, signals, the end -----------------------------------------------------

    def send(self, data: bytes, piece: int = WRITE_SIZE) -> bool:
        """Write one line, whole; False if the backend no longer reads its stdin.

        Straight to the pipe with ``os.write``, in pieces of WRITE_SIZE through a view (no
        copies), each piece finished when the pipe takes only part of it: ``write`` on a
        pipe may write less than asked (a signal arrives mid-way), and a line cut short
        would be joined by the backend to the next one. A writer thread of its own asks for
        bigger ``piece``s: each write lets the GIL go, and a thread waits up to the switch
        interval (5 ms) to have it back while the main thread encodes.
        """
        with self._write_lock:
            try:
                if len(data) <= piece:
                    written = os.write(self._in_fd, data)
                    if written == len(data):
                        return True
                else:
                    written = 0
                view = memoryview(data)
                while written < len(data):  # (-1 once stdin is closed: EBADF, False)
                    written += os.write(self._in_fd, view[written : written + piece])
            except (BrokenPipeError, OSError, ValueError):
                return False
        return True

    def signal(self, signum: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signum)

    def alive(self) -> bool:
        """Whether the backend still runs (it is not reaped here: its group stays ours)."""
        return self._exit_status(block=False) is None

    def _exit_status(self, block: bool) -> int | None:
        """Exit code (negative: signal) once it exited, else None; never reaps it."""
        if self.proc.returncode is not None:
            return self.proc.returncode
        flags = os.WEXITED | os.WNOWAIT | (0 if block else os.WNOHANG)
        try:
            info = os.waitid(os.P_PID, self.proc.pid, flags)
        except ChildProcessError:  # reaped by someone else
            return self.proc.poll()
        except InterruptedError:
            return None
        if info is None:
            return None
        if info.si_code == os.CLD_EXITED:
            return info.si_status
        return -info.si_status

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` (s) for the backend to exit; its exit code, or None."""
        deadline = time.monotonic() + timeout
        while True:
            code = self._exit_status(block=False)
            if code is not None:
                return code
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if self._pidfd >= 0:
                with contextlib.suppress(OSError, ValueError):
                    select.select([self._pidfd], [], [], left)
            else:
                time.sleep(min(left, 0.01))

    def describe_exit(self, timeout: float = 2.0) -> str:
        """How the backend ended, in words: exit code or signal name."""
        code = self.wait(timeout)
        if code is None:
            return "stopped answering (its output closed but it is still running)"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"was killed by {name}"
        return f"exited with code {code}"

    def kill(self) -> None:
        """SIGKILL the backend and its process group now (it is reaped by ``stop``)."""
        self._kill_group()

    def _kill_group(self) -> None:
        # Safe while the leader is unreaped: its pid, and so the group id, cannot be reused.
        if self.proc.returncode is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(OSError):
                self.proc.kill()

    def stop(self, grace: float = 1.0) -> None:
        """Close its stdin, give it ``grace`` s to leave, then kill what is left of its group."""
        if self.proc.stdin is not None:
            self._in_fd = -1  # send() fails from now on, never writes to a reused fd
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        if self.wait(grace) is None:
            self._kill_group()
            self.wait(max(grace, 1.0))
        self._kill_group()  # helpers it started, even when it left by itself
        self._end_keeper()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(1.0)  # reap it now: it has exited or been killed
        self.close()
        self._ended()

    def _ended(self) -> None:
        on_end, self.on_end = self.on_end, None  # once
        if on_end is not None:
            on_end()

    def close(self) -> None:
        """Stop watching; the pipes close with the process object (a reader may still poll)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._watcher is not None:
            self._watcher.stop()  # outside the lock: the watcher may be waiting for it
        if self._pidfd >= 0:
            # Closed at collection, not here: a reader in another thread may be polling it.
            import weakref

            weakref.finalize(self, _close_fd, self._pidfd)

    # -- the keeper -------------------------------------------------------------------

    def _start_keeper(self) -> None:
        if os.name != "posix" or not os.path.exists("/bin/sh"):
            return
        r, w = os.pipe()  # not inheritable: only the host holds w
        try:
            self._keeper = subprocess.Popen(
                ["/bin/sh", "-c", KEEPER_SCRIPT, "kernelkit-keeper", str(self.proc.pid)],
                stdin=r, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, cwd="/",
            )
        except OSError as exc:
            os.close(w)
            _log("cannot start the backend's keeper (%s): if the kernel is killed, processes "
                 "the backend started may survive it", exc)
            return
        finally:
            os.close(r)
        self._keeper_w = w

    def _end_keeper(self) -> None:
        keeper = self._keeper
        if keeper is None:
            return
        self._keeper = None
        # Kill it rather than close its pipe: it would kill the group after the backend
        # was reaped, when the group id could belong to someone else.
        with contextlib.suppress(OSError):
            keeper.kill()
        keeper.wait()  # SIGKILL to a shell blocked in read: at once (a timeout would poll)
        os.close(self._keeper_w)
        self._keeper_w = -1


def _grow_pipe(fd: int) -> None:
    """Ask for a PIPE_SIZE pipe behind ``fd`` (Linux); keep the default if refused."""
    import fcntl

    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_SIZE)


def _close_fd(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _log(fmt: str, *args: Any) -> None:
    from ..logs import logger

    logger().warning(fmt, *args)


# -- starting the backend -------------------------------------------------------------------


_PR_SET_PDEATHSIG = 1
_pdeathsig: Callable[[], None] | None = None
_spawner: _Spawner | None = None
_spawner_lock = threading.Lock()


def _spawn(argv: list[str], env: dict[str, str] | None) -> subprocess.Popen[bytes]:
    """Start the backend, with a parent-death signal on Linux, from a thread that lives on.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the
    process: a backend restarted from a subshell's thread would be killed when that
    subshell is deleted. The main thread and the spawner thread live as long as the host.
    """

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
            bufsize=0,  # requests are written whole and must leave at once
            preexec_fn=_parent_death_signal(),  # only calls prctl: safe with threads
        )

    if not LINUX or threading.current_thread() is threading.main_thread():
        return start()
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = _Spawner()
        spawner = _spawner
    return spawner.run(start)


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec function that asks for SIGKILL when the host dies (Linux), or None."""
    global _pdeathsig
    if not LINUX:
        return None
    if _pdeathsig is None:
        import ctypes

        try:
            prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            return None
        prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                          ctypes.c_ulong]
        host = os.getpid()
        kill = int(signal.SIGKILL)

        def set_pdeathsig() -> None:
            # Runs in the child between fork and exec: no allocation-heavy Python here.
            prctl(_PR_SET_PDEATHSIG, kill, 0, 0, 0)
            if os.getppid() != host:  # the host died before the signal was asked for
                os._exit(1)

        _pdeathsig = set_pdeathsig
    return _pdeathsig


class _Spawner:
    """A thread that lives as long as the host and starts backends for other threads."""

    def __init__(self) -> None:
        import queue

        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], list[Any], threading.Event]] = (
            queue.SimpleQueue()
        )
        threading.Thread(target=self._loop, name="kernelkit-backend-spawner", daemon=True).start()

    def _loop(self) -> None:
        while True:
            job, box, done = self._jobs.get()
            try:
                box.append(job())
            except BaseException as exc:  # handed to the waiting thread
                box.append(exc)
            done.set()

    def run(self, job: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        box: list[Any] = []
        done = threading.Event()
        self._jobs.put((job, box, done))
        interrupted = False
        while True:
            try:
                done.wait()
                break
            except KeyboardInterrupt:  # the process is being started: it must not be lost
                interrupted = True
        result = box[0]
        if isinstance(result, BaseException):
            raise result
        if interrupted:
            with contextlib.suppress(OSError):
                os.killpg(result.pid, signal.SIGKILL)
            result.wait()
            raise KeyboardInterrupt
        assert isinstance(result, subprocess.Popen)
        return result


# -- watching between requests ------------------------------------------------------------


class _Watcher:
    """A thread that reads a backend's output between requests and logs it (Linux: epoll).

    The backend's pipes and pidfd sit in an inner epoll set; the thread waits on an outer
    one that listens to the inner set only between requests. ``watch``/``unwatch`` turn
    that on and off, one system call each: a request thread takes the pipes back without
    waking the watcher. Called with the backend's lock held.
    """

    def __init__(self, backend: BackendProcess) -> None:
        self._backend = backend
        self._inner = select.epoll()
        for fd in (backend._out_fd, backend._err_fd, backend._pidfd):
            if fd >= 0:
                self._inner.register(fd, select.EPOLLIN)
        self._inner_fd = self._inner.fileno()
        self._outer = select.epoll()
        self._outer.register(self._inner_fd, 0)  # watched between requests only
        self._wake = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._outer.register(self._wake, select.EPOLLIN)
        self._watching = False
        self._gone: set[int] = set()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="kernelkit-backend-watch",
                                        daemon=True)
        self._thread.start()

    def watch(self) -> None:
        if not self._watching:
            try:  # (try rather than contextlib.suppress: this runs twice per request)
                self._outer.modify(self._inner_fd, select.EPOLLIN)
            except (OSError, ValueError):
                return
            self._watching = True

    def unwatch(self) -> None:
        if self._watching:
            self._watching = False
            try:
                self._outer.modify(self._inner_fd, 0)  # cheaper than unregister + register
            except (OSError, ValueError):
                return  # closed: the watcher is gone

    def forget(self, fds: set[int]) -> None:
        """These reached their end (EOF, exit): level-triggered, they would wake us forever."""
        for fd in fds - self._gone:
            self._gone.add(fd)
            with contextlib.suppress(OSError, ValueError):
                self._inner.unregister(fd)

    def stop(self) -> None:
        self._stopping = True
        self.unwatch()
        with contextlib.suppress(OSError):
            os.eventfd_write(self._wake, 1)
        if threading.current_thread() is not self._thread:
            self._thread.join(1.0)

    def _loop(self) -> None:
        try:
            while not self._stopping:
                try:
                    self._outer.poll()
                    ready = self._inner.poll(0)
                except InterruptedError:
                    continue
                if self._stopping:
                    break
                if ready:
                    self._backend._idle_read({fd for fd, _ in ready})
        except Exception:  # a broken watcher must not take the kernel down; log it
            from ..logs import logger

            logger().exception("backend watcher failed")
        finally:
            self._outer.close()
            self._inner.close()
            _close_fd(self._wake)
