"""Kernels with a comm target, for the checker's comms group (tests/test_check_comms.py).

``EchoCommKernel`` is the command kernel of kk_testkernels (commands_samples.toml drives
it) with a comm target ``echo`` that does what tests/support/comm_samples.toml says:
each comm_msg comes back on its comm, data and buffers, while it is handled. The others
are that kernel with one thing a kernel author could get wrong; DEFECTS names the check
each must fail and words its reason must contain.
"""

from __future__ import annotations

import threading
from typing import Any

from kk_testkernels import CommandKernel

from kernelkit.comms import Comm, CommManager
from kernelkit.wire import Message


class EchoCommKernel(CommandKernel):
    """Answers a comm_open to ``echo`` with a comm_msg, then echoes every comm_msg."""

    implementation = "comm echo"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.comm_manager.register_target("echo", self.echo_target)

    def echo_target(self, comm: Comm, msg: dict[str, Any]) -> None:
        comm.send({"opened": msg["content"]["data"]})

        def on_msg(m: dict[str, Any]) -> None:
            self.echo(comm, m["content"]["data"], [bytes(b) for b in m["buffers"]])

        comm.on_msg(on_msg)

    def echo(self, comm: Comm, data: dict[str, Any], buffers: list[bytes]) -> None:
        comm.send({"echo": data}, buffers=buffers)


class KeepsUnknownManager(CommManager):
    """Keeps a comm to a target nobody registered open instead of closing it."""

    def comm_open(self, msg: Message) -> None:
        content = msg.content
        if content.get("target_name") in self.targets:
            super().comm_open(msg)
            return
        self.register_comm(Comm(target_name=str(content.get("target_name")),
                                comm_id=str(content.get("comm_id")), primary=False,
                                manager=self))


class KeepsUnknownKernel(EchoCommKernel):
    """Never closes a comm opened to an unknown target."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        manager = KeepsUnknownManager(self.comm_manager.publish)
        manager.register_target("echo", self.echo_target)
        self.comm_manager = manager


class ThreadEchoKernel(EchoCommKernel):
    """Sends the echo from a thread of its own: it has no parent (it should be the comm_msg)."""

    def echo(self, comm: Comm, data: dict[str, Any], buffers: list[bytes]) -> None:
        thread = threading.Thread(target=super().echo, args=(comm, data, buffers))
        thread.start()
        thread.join()


class DropsBuffersKernel(EchoCommKernel):
    """Echoes the data but not the buffers."""

    def echo(self, comm: Comm, data: dict[str, Any], buffers: list[bytes]) -> None:
        super().echo(comm, data, [])


class IgnoresCloseManager(CommManager):
    """Ignores the frontend's comm_close: the comm stays listed by comm_info."""

    def comm_close(self, msg: Message) -> None:
        return None


class IgnoresCloseKernel(EchoCommKernel):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        manager = IgnoresCloseManager(self.comm_manager.publish)
        manager.register_target("echo", self.echo_target)
        self.comm_manager = manager


class NoFilterManager(CommManager):
    """Answers comm_info with every comm, whatever target_name it asks for."""

    def comm_info(self, target_name: str | None = None) -> dict[str, dict[str, str]]:
        return super().comm_info(None)


class NoFilterKernel(EchoCommKernel):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        manager = NoFilterManager(self.comm_manager.publish)
        manager.register_target("echo", self.echo_target)
        self.comm_manager = manager


# class -> (the check that must fail, words its reason contains)
DEFECTS = {
    "KeepsUnknownKernel": ("comms.unknown_target", "without closing the comm"),
    "ThreadEchoKernel": ("comms.round_trip", "the echo's parent is empty, not the comm_msg"),
    "DropsBuffersKernel": ("comms.buffers", "the echo carries 0 buffers"),
    "IgnoresCloseKernel": ("comms.info_open", "still lists the comm after the frontend closed"),
    "NoFilterKernel": ("comms.info_open", "the filter is ignored"),
}
