"""Reply contents the bridge host makes: from a backend's JSON-RPC answer, or for a fault."""

from __future__ import annotations

from typing import Any

from . import jsonrpc


def reply_of(msg: jsonrpc.Response) -> dict[str, Any]:
    """The reply content for the backend's answer to one of the host's requests."""
    if msg.error is not None:
        err = msg.error
        data: dict[str, Any] = err["data"] if isinstance(err.get("data"), dict) else {}
        not_found = err.get("code") == jsonrpc.METHOD_NOT_FOUND
        default = "MethodNotFound" if not_found else "BackendError"
        return error(
            str(data.get("ename") or default),
            str(err.get("message", "")),
            data.get("traceback") if isinstance(data.get("traceback"), list) else None,
        )
    if not isinstance(msg.result, dict):
        return error(
            "BackendError", f"backend result is {type(msg.result).__name__}, not an object"
        )
    return msg.result


def error(ename: str, evalue: str, traceback: list[str] | None = None) -> dict[str, Any]:
    return {
        "status": "error",
        "ename": ename,
        "evalue": evalue,
        "traceback": traceback if traceback is not None else [f"{ename}: {evalue}"],
    }
