"""The floor: the least a Python process can do on the Jupyter wire.

A minimal pyzmq responder that answers kernel_info and execute with the same messages
an Echo kernel sends (busy, execute_input, stream, reply, idle) and nothing else: no
threads but the heartbeat, no dispatch, no error handling. Usage: floor.py CONNECTION_FILE.

It checks each request's signature and drops one that does not match, because a kernel
must: without it any local process could run code (the floor skipped it until 2026-12-03,
which made its 10 MB output figure about 5 % better than the least a kernel can do).
"""

import hashlib
import hmac
import json
import os
import sys
import threading
from datetime import datetime, timezone

import zmq

with open(sys.argv[1]) as f:
    info = json.load(f)
key = info["key"].encode()
digest = hmac.new(key, digestmod=hashlib.sha256) if key else None
ctx = zmq.Context()
raw_send = zmq.backend.Socket.send


def bind(kind: int, name: str) -> zmq.Socket:
    sock = ctx.socket(kind)
    sock.bind(f"{info['transport']}://{info['ip']}:{info[name + '_port']}")
    return sock


shell, control, stdin = (
    bind(zmq.ROUTER, "shell"),
    bind(zmq.ROUTER, "control"),
    bind(zmq.ROUTER, "stdin"),
)
iopub = bind(zmq.PUB, "iopub")
hb = bind(zmq.ROUTER, "hb")
threading.Thread(target=zmq.proxy, args=(hb, hb), daemon=True).start()
session = os.urandom(16).hex()
counter = 0
count = 0


def send(sock, ids, msg_type, content, parent):
    global counter
    counter += 1
    header = {
        "msg_id": f"{session}_{counter}",
        "msg_type": msg_type,
        "username": "floor",
        "session": session,
        "date": datetime.now(timezone.utc).isoformat(),
        "version": "5.3",
    }
    parts = [json.dumps(header).encode(), parent, b"{}", json.dumps(content).encode()]
    sig = b""
    if digest:
        d = digest.copy()
        for p in parts:
            d.update(p)
        sig = d.hexdigest().encode()
    frames = [*ids, b"<IDS|MSG>", sig, *parts]
    for frame in frames[:-1]:  # the backend's send: pyzmq's fastest path, as kernelkit uses
        raw_send(sock, frame, 2)
    raw_send(sock, frames[-1], 0)


KERNEL_INFO = {
    "status": "ok",
    "protocol_version": "5.3",
    "implementation": "floor",
    "implementation_version": "0",
    "banner": "",
    "language_info": {"name": "Any text", "mimetype": "text/plain", "file_extension": ".txt"},
}
poller = zmq.Poller()
poller.register(shell, zmq.POLLIN)
poller.register(control, zmq.POLLIN)
while True:
    for sock, _ in poller.poll():
        frames = sock.recv_multipart()
        i = frames.index(b"<IDS|MSG>")
        ids, raw_header, content = frames[:i], frames[i + 2], frames[i + 5]
        if digest:
            d = digest.copy()
            for part in frames[i + 2 : i + 6]:
                d.update(part)
            if not hmac.compare_digest(d.hexdigest().encode(), frames[i + 1]):
                continue
        header = json.loads(raw_header)
        msg_type = header["msg_type"]
        send(iopub, [b"status"], "status", {"execution_state": "busy"}, raw_header)
        if msg_type == "execute_request":
            code = json.loads(content)["code"]
            count += 1
            send(
                iopub,
                [b"execute_input"],
                "execute_input",
                {"code": code, "execution_count": count},
                raw_header,
            )
            send(iopub, [b"stream"], "stream", {"name": "stdout", "text": code}, raw_header)
            send(
                sock,
                ids,
                "execute_reply",
                {"status": "ok", "execution_count": count, "payload": [], "user_expressions": {}},
                raw_header,
            )
        elif msg_type == "kernel_info_request":
            send(sock, ids, "kernel_info_reply", KERNEL_INFO, raw_header)
        elif msg_type == "shutdown_request":
            send(sock, ids, "shutdown_reply", {"status": "ok", "restart": False}, raw_header)
            send(iopub, [b"status"], "status", {"execution_state": "idle"}, raw_header)
            sys.exit(0)
        send(iopub, [b"status"], "status", {"execution_state": "idle"}, raw_header)
