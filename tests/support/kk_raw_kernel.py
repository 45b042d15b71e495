"""A minimal kernel on raw pyzmq, single-threaded, whose defects are switched on by flags.

    python kk_raw_kernel.py -f CONNECTION_FILE [--no-verify] [--no-replay-guard] [--no-idle]
                            [--no-heartbeat] [--ignore-shutdown] [--claim VERSION]
                            [--nameless]

Without flags it signs and checks messages (and refuses replays) the way the
spec asks, so that tests/test_check.py can show each flag's defect being caught
by ``kernelkit check``. Being single-threaded, it never answers control or the
heartbeat while an execution runs. Code is handled like the command kernel's:
``loop`` prints "started" and spins until interrupted, ``raise`` fails, anything
else is echoed.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import traceback
import uuid
from datetime import datetime, timezone
from typing import Any

import zmq

DELIM = b"<IDS|MSG>"


class RawKernel:
    def __init__(self, args: argparse.Namespace) -> None:
        with open(args.f) as f:
            info = json.load(f)
        self.args = args
        self.key = info["key"].encode()
        self.session = str(uuid.uuid4())
        self.count = 0
        self.seen: set[bytes] = set()
        self.ctx = zmq.Context()
        url = f"{info['transport']}://{info['ip']}:"
        self.shell = self.ctx.socket(zmq.ROUTER)
        self.shell.bind(url + str(info["shell_port"]))
        self.control = self.ctx.socket(zmq.ROUTER)
        self.control.bind(url + str(info["control_port"]))
        self.stdin = self.ctx.socket(zmq.ROUTER)
        self.stdin.bind(url + str(info["stdin_port"]))
        self.iopub = self.ctx.socket(zmq.PUB)
        self.iopub.bind(url + str(info["iopub_port"]))
        self.hb = self.ctx.socket(zmq.REP)
        self.hb.bind(url + str(info["hb_port"]))

    # -- wire -------------------------------------------------------------------------

    def sign(self, parts: list[bytes]) -> bytes:
        return hmac.new(self.key, b"".join(parts), hashlib.sha256).hexdigest().encode()

    def send(self, sock: zmq.Socket[Any], msg_type: str, content: dict[str, Any],
             parent: dict[str, Any] | None, ids: list[bytes]) -> None:
        header = {"msg_id": str(uuid.uuid4()), "msg_type": msg_type, "username": "raw",
                  "session": self.session, "version": "5.3",
                  "date": datetime.now(timezone.utc).isoformat()}
        parts = [json.dumps(p).encode() for p in (header, parent or {}, {}, content)]
        sock.send_multipart([*ids, DELIM, self.sign(parts), *parts])

    def receive(self, sock: zmq.Socket[Any]) -> tuple[list[bytes], dict[str, Any]] | None:
        frames = sock.recv_multipart()
        split = frames.index(DELIM)
        signature, parts = frames[split + 1], frames[split + 2 : split + 6]
        if not self.args.no_verify and not hmac.compare_digest(signature, self.sign(parts)):
            return None
        if not self.args.no_replay_guard:
            if signature in self.seen:
                return None
            self.seen.add(signature)
        names = ("header", "parent_header", "metadata", "content")
        return frames[:split], dict(zip(names, (json.loads(p) for p in parts), strict=True))

    def status(self, state: str, parent: dict[str, Any]) -> None:
        if state == "idle" and self.args.no_idle:
            return
        self.send(self.iopub, "status", {"execution_state": state}, parent, [b"status"])

    # -- requests -----------------------------------------------------------------------

    def handle(self, sock: zmq.Socket[Any], ids: list[bytes], msg: dict[str, Any]) -> bool:
        header = msg["header"]
        msg_type = header["msg_type"]
        self.status("busy", header)
        keep_going = True
        if msg_type == "kernel_info_request":
            self.send(sock, "kernel_info_reply", {
                "status": "ok", "protocol_version": self.args.claim,
                "implementation": "raw", "implementation_version": "0.1",
                "language_info": {} if self.args.nameless else {"name": "commands"},
                "banner": "raw test kernel",
            }, header, ids)
        elif msg_type == "execute_request":
            self.execute(sock, ids, msg)
        elif msg_type == "shutdown_request":
            restart = bool(msg["content"].get("restart", False))
            self.send(sock, "shutdown_reply", {"status": "ok", "restart": restart}, header, ids)
            keep_going = self.args.ignore_shutdown
        self.status("idle", header)
        return keep_going

    def execute(self, sock: zmq.Socket[Any], ids: list[bytes], msg: dict[str, Any]) -> None:
        header, content = msg["header"], msg["content"]
        code, silent = content.get("code", ""), content.get("silent", False)
        if content.get("store_history", True) and not silent:
            self.count += 1
        if not silent:
            self.send(self.iopub, "execute_input", {"code": code, "execution_count": self.count},
                      header, [b"execute_input"])
        try:
            if code == "loop":
                self.stream("started\n", header)
                while True:
                    pass
            if code.startswith("raise"):
                raise ValueError("boom")
            if not silent:
                self.stream(code, header)
            reply = {"status": "ok", "execution_count": self.count, "user_expressions": {},
                     "payload": []}
        except (Exception, KeyboardInterrupt) as exc:
            error = {"ename": type(exc).__name__, "evalue": str(exc),
                     "traceback": traceback.format_exception(exc)}
            self.send(self.iopub, "error", error, header, [b"error"])
            reply = {"status": "error", "execution_count": self.count, **error}
        self.send(sock, "execute_reply", reply, header, ids)

    def stream(self, text: str, parent: dict[str, Any]) -> None:
        self.send(self.iopub, "stream", {"name": "stdout", "text": text}, parent, [b"stream"])

    def serve(self) -> None:
        poller = zmq.Poller()
        for sock in (self.shell, self.control):
            poller.register(sock, zmq.POLLIN)
        if not self.args.no_heartbeat:  # else pings pile up unanswered
            poller.register(self.hb, zmq.POLLIN)
        while True:
            try:
                events = dict(poller.poll())
            except KeyboardInterrupt:
                continue
            if self.hb in events:
                self.hb.send(self.hb.recv())
            for sock in (self.control, self.shell):
                if sock in events:
                    received = self.receive(sock)
                    if received is not None and not self.handle(sock, *received):
                        return


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-f", required=True)
    parser.add_argument("--no-verify", action="store_true")
    parser.add_argument("--no-replay-guard", action="store_true")
    parser.add_argument("--no-idle", action="store_true")
    parser.add_argument("--no-heartbeat", action="store_true")
    parser.add_argument("--ignore-shutdown", action="store_true")
    parser.add_argument("--claim", default="5.3", help="protocol_version to claim")
    parser.add_argument("--nameless", action="store_true", help="no language_info.name")
    kernel = RawKernel(parser.parse_args())
    kernel.serve()
    # Flush the shutdown reply before leaving: os._exit skips libzmq's linger.
    kernel.ctx.destroy(linger=2000)
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
