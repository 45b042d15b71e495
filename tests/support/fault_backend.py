"""A bridge backend that misbehaves on purpose, speaking the protocol by hand.

Usage: fault_backend.py MODE. Modes for start-up: ok, exit-now, silent, refuse, and
``info JSON``, whose object is merged into the initialize result (wrong types on purpose).
Once running, the code of an execute picks the fault: die, kill, hang, garbage,
big N, stray, echo-input, stderr-lines N (N lines on stderr, then the reply),
after-reply (output written just after the reply), deaf (answers, then never reads its
stdin again); anything else is echoed.
"""

import json
import os
import signal
import sys
import time

mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
overrides = json.loads(sys.argv[2]) if mode == "info" else {}
out = sys.stdout.buffer


def send(obj):
    out.write(json.dumps(obj).encode() + b"\n")
    out.flush()


def raw(line: bytes):
    out.write(line + b"\n")
    out.flush()


if mode == "exit-now":
    print("cannot find my configuration", file=sys.stderr, flush=True)
    sys.exit(3)
if mode == "silent":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    time.sleep(3600)

signal.signal(signal.SIGINT, signal.SIG_IGN)  # only a kill can stop a hang
for line in sys.stdin.buffer:
    msg = json.loads(line)
    rid, method, params = msg.get("id"), msg.get("method"), msg.get("params", {})
    if method is None:
        continue  # a response from the host (to our bogus request)
    if method == "initialize":
        if mode == "refuse":
            send({"jsonrpc": "2.0", "id": rid, "error": {"code": 1, "message": "not today"}})
            continue
        send({"jsonrpc": "2.0", "id": rid, "result": {
            "implementation": "faulty", "implementation_version": "0.1",
            "language_info": {"name": "faults", "mimetype": "text/plain", "file_extension": ".txt"},
            "banner": "a backend that fails on request", **overrides}})
        continue
    if method == "shutdown":
        send({"jsonrpc": "2.0", "id": rid, "result": {"status": "ok"}})
        break
    if method != "execute":
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "no " + method}})
        continue
    code = params["code"]
    if code == "die":
        print("fatal: the backend fell over", file=sys.stderr, flush=True)
        os._exit(7)
    if code == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if code == "hang":
        send({"jsonrpc": "2.0", "method": "stream",
              "params": {"name": "stdout", "text": "started"}})
        while True:
            pass
    if code == "garbage":
        raw(b'{"jsonrpc": "2.0", "method": "stream", "params": {"name": "stdout"')  # broken JSON
        send({"jsonrpc": "2.0", "method": "no_such_notification", "params": {}})
        send({"jsonrpc": "2.0", "method": "stream", "params": {"name": "nowhere", "text": 5}})
        send({"jsonrpc": "2.0", "method": "display_data", "params": {"data": "not a dict"}})
        send({"jsonrpc": "2.0", "method": "stream", "params": "not an object"})
        send({"jsonrpc": "2.0", "id": 99999, "result": {"status": "ok"}})  # unknown id
        send({"jsonrpc": "2.0", "id": "x1", "method": "no_such_request", "params": {}})
        raw(b'{"jsonrpc": "2.0", "id": 1.5}')
        raw(b"\xff\xfe not utf-8")
        send({"jsonrpc": "2.0", "method": "stream",
              "params": {"name": "stdout", "text": "survived"}})
        send({"jsonrpc": "2.0", "id": rid, "result": {"status": "ok"}})
        continue
    if code == "deaf":
        send({"jsonrpc": "2.0", "id": rid, "result": {"status": "ok"}})
        time.sleep(3600)  # idle for the host, but a request written now is never read
    if code == "wrong-result":
        send({"jsonrpc": "2.0", "id": rid, "result": ["not", "an", "object"]})
        continue
    if code.startswith("big "):
        n = int(code.split()[1])
        block = "0123456789abcdef" * 64 + "\n"  # 1025 bytes
        text = (block * (n // len(block) + 1))[:n]
        send({"jsonrpc": "2.0", "method": "stream", "params": {"name": "stdout", "text": text}})
        send({"jsonrpc": "2.0", "id": rid, "result": {"status": "ok"}})
        continue
    if code == "stray":
        print("a stray print", flush=True)
        print("a warning on stderr", file=sys.stderr, flush=True)
        time.sleep(0.2)
        send({"jsonrpc": "2.0", "id": rid, "result": {"status": "ok"}})
        continue
    if code.startswith("stderr-lines "):
        for i in range(int(code.split()[1])):
            os.write(2, f"err {i}\n".encode())  # unbuffered: in the pipe before the reply
        send({"jsonrpc": "2.0", "id": rid, "result": {"status": "ok"}})
        continue
    if code == "after-reply":
        send({"jsonrpc": "2.0", "method": "stream", "params": {"name": "stdout", "text": "in"}})
        send({"jsonrpc": "2.0", "id": rid, "result": {"status": "ok"}})
        raw(b"late text line")
        send({"jsonrpc": "2.0", "method": "stream",
              "params": {"name": "stdout", "text": "late notification"}})
        time.sleep(0.2)
        os.write(2, b"late stderr\n")
        continue
    if code == "echo-input":
        send({"jsonrpc": "2.0", "id": "in1", "method": "input", "params": {"prompt": "? "}})
        answer = json.loads(sys.stdin.buffer.readline())
        text = json.dumps(answer.get("result") or answer.get("error"))
        send({"jsonrpc": "2.0", "method": "stream", "params": {"name": "stdout", "text": text}})
        send({"jsonrpc": "2.0", "id": rid, "result": {"status": "ok"}})
        continue
    send({"jsonrpc": "2.0", "method": "stream", "params": {"name": "stdout", "text": code}})
    send({"jsonrpc": "2.0", "id": rid, "result": {"status": "ok"}})
