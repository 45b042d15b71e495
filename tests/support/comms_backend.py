"""A Python bridge backend with comms (protocol 1.2), through the SDK's ``comms`` API.

``--subshells`` makes it opt in to subshells (each request on a thread of its own).

Targets: "echo" (from ``backend.comm_targets``): prints "opened DATA"; each comm_msg
prints "got DATA" and is answered on the same comm with ``{"echo": DATA}`` and the same
buffers; a message with ``{"raise": true}`` makes the callback raise ValueError; a
message with ``{"sleep": S}`` sleeps S seconds first. "refuse" (registered before
``serve``): its handler raises RuntimeError. Cells are commands:

    open [TARGET]    open a comm (default target "from-backend"; data hello, two buffers)
    send TEXT        comm_msg on the last opened comm: {"text": TEXT}, one buffer b"abc"
    close            close the last opened comm with {"bye": true}
    later            a thread sends {"later": true} on it 0.3 s after the reply
    register NAME    register target NAME (an echo) now
    unregister NAME  unregister it
    list             print the ids of the open comms, as JSON
    got              print what the comms' callbacks received so far, as JSON
    misuse           print the errors of wrong calls (bad data, bad buffers, closed comm)
    sleep S          print "started", sleep S seconds
    die              exit at once (os._exit(3))
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src/kernelkit/sdk/python"))

from kernelkit_backend import Comm, comms, serve

LOCK = threading.Lock()
received: list[dict[str, Any]] = []  # what callbacks got, in order


def note(event: str, msg: dict[str, Any]) -> None:
    with LOCK:
        received.append({"event": event, "comm_id": msg["comm_id"], "data": msg["data"],
                         "metadata": msg["metadata"],
                         "buffers": [b.hex() for b in msg["buffers"]],
                         "types": sorted({type(b).__name__ for b in msg["buffers"]}),
                         "thread": threading.current_thread().name})


def echo(comm: Comm, msg: dict[str, Any]) -> None:
    note("open", msg)
    print("opened", json.dumps(msg["data"]))

    def on_msg(m: dict[str, Any]) -> None:
        note("msg", m)
        if m["data"].get("sleep"):
            time.sleep(float(m["data"]["sleep"]))
        print("got", json.dumps(m["data"]))
        if m["data"].get("raise"):
            raise ValueError("asked to raise")
        comm.send({"echo": m["data"]}, buffers=m["buffers"])

    comm.on_msg(on_msg)
    comm.on_close(lambda m: note("close", m))


def refuse(comm: Comm, msg: dict[str, Any]) -> None:
    raise RuntimeError("refused by design")


class Backend:
    info = {
        "implementation": "py-comms", "implementation_version": "1.0",
        "language_info": {"name": "commands", "mimetype": "text/plain", "file_extension": ".txt"},
        "banner": "Python SDK comms test backend",
        "subshells": "--subshells" in sys.argv,
    }
    comm_targets = {"echo": echo}

    def __init__(self) -> None:
        self.last: Comm | None = None

    def execute(self, request: dict[str, Any], ctx: Any) -> None:
        cmd, _, arg = request["code"].strip().partition(" ")
        if cmd == "open":
            comm = ctx.comms.open(arg or "from-backend", {"hello": 1}, metadata={"m": 1},
                                  buffers=[b"\x00\xff", bytearray(b"xy")])
            comm.on_msg(lambda m: note("msg", m))
            comm.on_close(lambda m: note("close", m))
            self.last = comm
            print(comm.comm_id)
        elif cmd == "send":
            assert self.last is not None
            self.last.send({"text": arg}, buffers=[memoryview(b"abc")])
        elif cmd == "close":
            assert self.last is not None
            self.last.close({"bye": True})
        elif cmd == "later":
            comm = self.last
            assert comm is not None

            def later() -> None:
                time.sleep(0.3)
                comm.send({"later": True})

            threading.Thread(target=later).start()
        elif cmd == "register":
            comms.register_target(arg, echo)
        elif cmd == "unregister":
            comms.unregister_target(arg)
        elif cmd == "list":
            print(json.dumps(sorted(comms.comms)))
        elif cmd == "got":
            with LOCK:
                print(json.dumps(received))
        elif cmd == "misuse":
            self.misuse(ctx)
        elif cmd == "sleep":
            print("started")
            time.sleep(float(arg))
            print(f"slept {arg}")
        elif cmd == "die":
            os._exit(3)
        else:
            raise ValueError(f"unknown command {cmd!r}")

    def misuse(self, ctx: Any) -> None:
        comm = ctx.comms.open("from-backend")

        def attempt(call: Any) -> None:
            try:
                call()
                print("no error")
            except Exception as exc:
                print(f"{type(exc).__name__}: {exc}")

        attempt(lambda: comm.send([1]))
        attempt(lambda: comm.send({}, buffers=["text"]))
        attempt(lambda: comm.send({}, buffers=b"raw"))
        attempt(lambda: comm.send({"x": b"raw"}))
        attempt(lambda: ctx.comms.open("t", comm_id=comm.comm_id))
        attempt(lambda: ctx.comms.register_target("", echo))
        comm.close()
        comm.close()  # twice: once on the pipe
        attempt(lambda: comm.send({}))


comms.register_target("refuse", refuse)

if __name__ == "__main__":
    serve(Backend())
