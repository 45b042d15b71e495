"""The shell channel's own mechanics (kernelkit.shell), with real sockets in-process."""

from __future__ import annotations

from typing import Any

import zmq

from kernelkit.droplog import DropLog
from kernelkit.shell import ShellChannel
from kernelkit.wire import Message, Session


class Recorder:
    """A handler that answers kernel_info at once, like the dispatcher."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def handle(self, channel: str, msg: Message) -> None:
        self.seen.append(msg.msg_type)

    def immediate(self, msg: Message) -> bool:
        return msg.msg_type == "kernel_info_request"

    def reject(self, channel: str, msg: Message, ename: str, evalue: str) -> None:
        self.seen.append(f"rejected {msg.msg_type}")


def test_the_main_thread_never_waits_while_requests_are_pending() -> None:
    """Regression: when what it read was dropped or answered at once, the main thread went
    back to poll with more requests waiting, and the socket's read notice already spent:
    each such request then cost up to a second (seen as a slow fuzzing suite)."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.bind("inproc://shell-test")
    client = ctx.socket(zmq.DEALER)
    client.connect("inproc://shell-test")
    session = Session(b"key")  # the client's; the kernel refuses messages of its own session
    channel = ShellChannel(router, Session(b"key"), lambda: None, DropLog(lambda text: None))
    handler = Recorder()
    channel.handler = handler  # no reader thread: the main thread reads for itself
    try:
        client.send_multipart([b"not a message"])
        client.send_multipart(session.serialize("kernel_info_request", {}))
        client.send_multipart(session.serialize("execute_request", {"code": "x"}))
        assert router.poll(5000)
        waited_with_input: list[bool] = []

        def wait(poller: Any, wake_rx: int, timeout: float = 1.0) -> None:
            waited_with_input.append(bool(router.getsockopt(zmq.EVENTS) & zmq.POLLIN))

        channel._wait = wait  # type: ignore[assignment]
        delivered: list[str] = []
        channel.serve_main(lambda msg: delivered.append(msg.msg_type),
                           lambda: not delivered)
        assert delivered == ["execute_request"]
        assert handler.seen == ["kernel_info_request"]
        assert True not in waited_with_input
    finally:
        client.close(0)
        channel.close()
        ctx.term()
