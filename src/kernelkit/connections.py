"""Who is connected to each channel, and cutting connections that abuse it.

ZeroMQ accepts any connection to a kernel's ports and does work for it before a
single message is authenticated: it keeps a file descriptor per connection, a
subscription trie per IOPub subscriber, and queues of output for subscribers that
do not read. A local process can exhaust any of these. libzmq gives no handle on a
single connection, but its socket monitor reports each accepted connection's file
descriptor, and the operating system can say of a descriptor what it has sent and
received. This module, owned by the **control thread** (it alone reads the monitor
sockets and touches the descriptors), keeps the descriptors per channel and cuts a
connection with ``shutdown(2)`` on it; libzmq then sees the connection end as if the
peer had gone, and frees what belonged to it. Cut:

* connections beyond ``max_per_channel`` on a channel, as they arrive, so that file
  descriptors stay available for clients already connected, the heartbeat and a
  bridge backend's restart (the kernel first raises its soft limit on open files to
  the hard one; the cap is what then leaves enough over). Out of descriptors,
  libzmq's listener spins at 100 % CPU and refuses everyone; at the cap only new
  connections to that channel are refused, until others leave;
* IOPub connections that have sent more than ``MAX_SUBSCRIBER_BYTES``: a Jupyter
  client subscribes once (to the empty topic), so more is a flood of subscriptions,
  each of which grows libzmq's subscription trie (TCP only: over ipc only the
  kernel's own user can connect);
* when the output libzmq holds passes its byte bound (``iopub.IOPub.held_bytes``),
  IOPub connections that have taken no data for ``STALL_S`` while data waited for
  them (the threads publishing large output wait meanwhile: a slow reader that
  takes anything at all slows output down, and loses nothing).

Before a descriptor is cut it is checked to still be a connection to the channel's
own address: monitor events arrive late, and the number may have been reused.
"""

from __future__ import annotations

# The C module, not ``socket``: that wrapper builds its enums and imports selectors at
# import time, about 2 ms of every kernel's start-up, for the constants and the few calls
# made here on descriptors libzmq already owns (``closing`` stands in for its ``with``).
import _socket as socket
import contextlib
import os
import struct
import time
from collections.abc import Callable

import zmq

MAX_PER_CHANNEL = 4096
MAX_SUBSCRIBER_BYTES = 64 * 1024
STALL_CHECK_S = 0.2
# A subscriber that takes nothing this long while output waits for it is cut (s).
STALL_S = 5.0
_EVENTS = zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_CLOSED
# struct tcp_info (linux/tcp.h): tcpi_bytes_acked and tcpi_bytes_received, u64 at 120, 128.
_TCP_INFO_LEN = 136
_ACKED_AT, _RECEIVED_AT = 120, 128


def raise_fd_limit(want: int = 65536) -> int:
    """Raise the soft limit on open files towards ``want`` (the hard limit allowing); return it."""
    try:
        import resource
    except ImportError:  # not on this platform
        return 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return int(soft) if soft != resource.RLIM_INFINITY else want


class Channel:
    """One channel's listening socket's monitor and the connections it reported."""

    def __init__(self, name: str, sock: zmq.Socket[bytes], local: object, family: int) -> None:
        self.name = name
        self.monitor = sock.get_monitor_socket(_EVENTS)
        self.local = local  # the address accepted connections have as their own
        self.family = family
        self.fds: dict[int, float] = {}  # descriptor -> when it was accepted
        self.refused = 0
        self.cut = 0


class ConnectionGuard:
    """Tracks connections per channel and cuts abusive ones (control thread only)."""

    def __init__(
        self,
        warn: Callable[[str], None],
        max_per_channel: int = MAX_PER_CHANNEL,
    ) -> None:
        self._warn = warn
        self.max_per_channel = max_per_channel
        self.channels: dict[str, Channel] = {}
        self._stalls: dict[int, tuple[int, float]] = {}  # fd -> (progress, since when)
        self._last_warning = 0.0
        self._flood_cut_at = -1e9  # when a subscription flood was last cut

    def watch(self, name: str, sock: zmq.Socket[bytes], endpoint: str) -> None:
        """Monitor a bound socket (call before other threads use it)."""
        family, local = _local_address(endpoint)
        self.channels[name] = Channel(name, sock, local, family)

    def monitors(self) -> list[zmq.Socket[bytes]]:
        return [ch.monitor for ch in self.channels.values()]

    # -- events ----------------------------------------------------------------------

    def on_events(self, monitor: zmq.Socket[bytes]) -> None:
        for ch in self.channels.values():
            if ch.monitor is monitor:
                self._read_events(ch)
                return

    def refresh(self) -> None:
        for ch in self.channels.values():
            self._read_events(ch)

    def _read_events(self, ch: Channel) -> None:
        while True:
            try:
                frames = ch.monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError:
                return
            if len(frames[0]) != 6:  # (zmq.utils.monitor would import asyncio)
                continue
            event, fd = struct.unpack("=HI", frames[0])
            if event == zmq.EVENT_ACCEPTED:
                ch.fds[fd] = time.monotonic()
                if len(ch.fds) > self.max_per_channel:
                    ch.refused += 1
                    self._cut(ch, fd, f"more than {self.max_per_channel} connections")
            elif ch.fds.pop(fd, None) is not None and ch.name == "iopub" and (
                time.monotonic() - self._flood_cut_at < 60
            ):
                trim_heap()  # a flooder's subscriptions were just freed: give the memory back

    # -- cutting -----------------------------------------------------------------------

    def _cut(self, ch: Channel, fd: int, why: str) -> bool:
        sock = self._socket(ch, fd)
        if sock is None:
            ch.fds.pop(fd, None)
            return False
        with contextlib.closing(sock), contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        ch.fds.pop(fd, None)
        ch.cut += 1
        now = time.monotonic()
        if now - self._last_warning >= 1.0:  # a flood of connections is not a flood of lines
            self._last_warning = now
            self._warn(f"cut a connection to {ch.name}: {why}")
        return True

    def _socket(self, ch: Channel, fd: int) -> socket.socket | None:
        """A duplicate of ``fd`` if it is still a connection accepted on this channel."""
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            return None
        try:
            if sock.family != ch.family or sock.type != socket.SOCK_STREAM:
                raise OSError("not the channel's kind of socket")
            if _same_address(sock.getsockname(), ch.local):
                return sock
        except OSError:
            pass
        sock.close()
        return None

    # -- IOPub ---------------------------------------------------------------------------

    def cut_subscription_floods(self, name: str = "iopub") -> int:
        """Cut TCP subscribers that have sent far more than a subscription (control thread)."""
        ch = self.channels.get(name)
        if ch is None or ch.family == socket.AF_UNIX:
            return 0
        self._read_events(ch)
        n = 0
        for fd in list(ch.fds):
            info = _tcp_info(fd)
            if info is not None and info[1] > MAX_SUBSCRIBER_BYTES:
                n += self._cut(ch, fd, f"sent {info[1]:,} bytes of subscriptions")
        if n:
            self._flood_cut_at = time.monotonic()
            trim_heap()
        return n

    def cut_stalled(self, name: str = "iopub") -> int:
        """Cut subscribers that have taken no output for ``STALL_S`` while data waited.

        Called often while IOPub is over its bound; each call samples every connection
        and remembers since when each has made no progress. A slow reader that takes
        anything at all is never cut (the publishers wait for it instead).
        """
        ch = self.channels.get(name)
        if ch is None:
            return 0
        self._read_events(ch)
        now = time.monotonic()
        seen: dict[int, tuple[int, float]] = {}
        n = 0
        for fd in list(ch.fds):
            sample = _progress(fd, ch.family)
            if sample is None:
                continue
            waiting, progress = sample
            old = self._stalls.get(fd)
            if waiting == 0 or old is None or old[0] != progress:
                seen[fd] = (progress, now)
                continue
            seen[fd] = old
            if now - old[1] >= STALL_S and self._cut(
                ch, fd, f"took no output for {now - old[1]:.1f} s with {waiting:,} bytes "
                f"waiting in the socket alone"):
                n += 1
                seen.pop(fd, None)
        self._stalls = seen
        if n:
            trim_heap()
        return n

    def counts(self) -> dict[str, int]:
        return {name: len(ch.fds) for name, ch in self.channels.items()}

    def close(self) -> None:
        for ch in self.channels.values():
            with contextlib.suppress(zmq.ZMQError):
                ch.monitor.close(linger=0)


def _local_address(endpoint: str) -> tuple[int, object]:
    scheme, _, rest = endpoint.partition("://")
    if scheme == "ipc":
        return socket.AF_UNIX, rest
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return family, (host, int(port))


def _same_address(name: object, local: object) -> bool:
    if isinstance(local, str):
        return name == local
    if isinstance(name, tuple) and isinstance(local, tuple):
        host, port = local
        return bool(name[1] == port and (host in ("0.0.0.0", "::", "*") or name[0] == host))
    return False


def _tcp_info(fd: int) -> tuple[int, int] | None:
    """(bytes the peer acknowledged, bytes received from it) of a TCP connection."""
    try:
        with contextlib.closing(socket.socket(fileno=os.dup(fd))) as sock:
            raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    except (OSError, AttributeError):
        return None
    if len(raw) < _TCP_INFO_LEN:
        return None
    acked, received = struct.unpack_from("=QQ", raw, _ACKED_AT)
    return int(acked), int(received)


def _progress(fd: int, family: int) -> tuple[int, int] | None:
    """(bytes waiting in the send queue, a counter that moves when the peer takes data)."""
    import fcntl  # only when IOPub is over its bound: not at start-up
    import termios

    try:
        waiting = struct.unpack("i", fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0\0\0\0"))[0]
    except OSError:
        return None
    if family == socket.AF_UNIX:
        return waiting, waiting  # no counter: a queue that stays the same has not moved
    info = _tcp_info(fd)
    return (waiting, info[0]) if info is not None else None


def trim_heap() -> None:
    """Give freed memory back to the system (glibc keeps it otherwise)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)  # glibc's; elsewhere the lookup fails, harmlessly
