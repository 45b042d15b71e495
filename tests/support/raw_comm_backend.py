"""A bridge backend for comms (protocol 1.2) that writes its protocol lines by hand, no SDK.

It tests the host alone: what the host does with each line is all that matters here.
Comm target "echo": each comm_msg is answered, on the same comm, with
``{"echo": data}`` and the same buffers, after printing "got" (output of that message).
Target "refuse" answers comm_open with an error. Cells are commands:

    open             open comm "k1" to target "from-backend" (data hello, one buffer)
    send TEXT        comm_msg on k1 with {"text": TEXT}
    close            comm_close k1
    later            a thread sends comm_msg on k1 0.3 s after the reply (between requests)
    register NAME    register target NAME (a notification, after initialize)
    unregister NAME  unregister it
    bad              comm notifications the host must drop (then a good one: {"after": "bad"})
    sleep S          sleep S seconds, printing "started" first
    die              exit at once (os._exit(3))
    got              print the comm messages received so far, as JSON
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
import time
from typing import Any

LOCK = threading.Lock()
SUBSHELLS = "--subshells" in sys.argv
received: list[dict[str, Any]] = []
out = sys.stdout


def send(obj: dict[str, Any]) -> None:
    with LOCK:
        out.write(json.dumps(obj) + "\n")
        out.flush()


def notify(method: str, request: Any = None, **params: Any) -> None:
    if request is not None:
        params["request"] = request
    send({"jsonrpc": "2.0", "method": method, "params": params})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


INFO = {
    "implementation": "raw-comms",
    "language_info": {"name": "commands", "version": "1.0", "mimetype": "text/plain",
                      "file_extension": ".txt"},
    "comm_targets": ["echo", "refuse"],
    "subshells": SUBSHELLS,
}


def execute(rid: Any, code: str) -> dict[str, Any]:
    cmd, _, arg = code.strip().partition(" ")
    if cmd == "open":
        notify("comm_open", rid, comm_id="k1", target_name="from-backend",
               data={"hello": 1}, metadata={"m": 1}, buffers=[b64(b"\x00\xff")])
    elif cmd == "send":
        notify("comm_msg", rid, comm_id="k1", data={"text": arg})
    elif cmd == "close":
        notify("comm_close", rid, comm_id="k1", data={"bye": True})
    elif cmd == "later":
        def later() -> None:
            time.sleep(0.3)
            notify("comm_msg", rid, comm_id="k1", data={"later": True})
        threading.Thread(target=later).start()
    elif cmd in ("register", "unregister"):
        notify(f"comm_{cmd}_target", target_name=arg)
    elif cmd == "bad":
        notify("comm_msg", rid, comm_id=5, data={})
        notify("comm_msg", rid, comm_id="k1", data=[1])
        notify("comm_msg", rid, comm_id="k1", data={}, buffers=["not base64!"])
        notify("comm_open", rid, comm_id="k2")  # no target_name
        notify("comm_msg", rid, comm_id="nobody", data={})
        notify("comm_register_target", target_name="")
        notify("comm_msg", rid, comm_id="k1", data={"after": "bad"})
    elif cmd == "sleep":
        notify("stream", rid, name="stdout", text="started\n")
        time.sleep(float(arg))
    elif cmd == "die":
        os._exit(3)
    elif cmd == "got":
        notify("stream", rid, name="stdout", text=json.dumps(received))
    return {"status": "ok"}


def comm(rid: Any, method: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """Answer a host comm request: a result, or None after sending an error."""
    with LOCK:
        received.append({"method": method, **{k: params.get(k) for k in
                                               ("comm_id", "target_name", "data", "buffers")}})
    if method == "comm_open" and params.get("target_name") == "refuse":
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32603, "message": "refused"}})
        return None
    if method == "comm_msg":
        notify("stream", rid, name="stdout", text="got\n")
        data = params.get("data") or {}
        if data.get("raise"):
            send({"jsonrpc": "2.0", "id": rid,
                  "error": {"code": -32603, "message": "the handler raised",
                            "data": {"ename": "ValueError"}}})
            return None
        notify("comm_msg", rid, comm_id=params["comm_id"], data={"echo": data},
               buffers=params.get("buffers") or [])
    return {}


def handle(msg: dict[str, Any]) -> None:
    rid, method, params = msg.get("id"), msg.get("method"), msg.get("params") or {}
    if rid is None:
        return  # notifications (interrupt) are not used here
    result: dict[str, Any] | None
    if method == "initialize":
        result = INFO
    elif method == "execute":
        result = execute(rid, params.get("code", ""))
    elif method in ("comm_open", "comm_msg", "comm_close"):
        result = comm(rid, method, params)
    elif method == "shutdown":
        send({"jsonrpc": "2.0", "id": rid, "result": {"status": "ok"}})
        sys.exit(0)
    else:
        send({"jsonrpc": "2.0", "id": rid,
              "error": {"code": -32601, "message": f"unknown method {method}"}})
        return
    if result is not None:
        send({"jsonrpc": "2.0", "id": rid, "result": result})


def main() -> None:
    for line in sys.stdin:
        msg = json.loads(line)
        if SUBSHELLS and msg.get("method") in ("execute", "comm_open", "comm_msg", "comm_close"):
            threading.Thread(target=handle, args=(msg,), daemon=True).start()
        else:
            handle(msg)


if __name__ == "__main__":
    main()
