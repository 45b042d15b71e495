"""kernel_info: the reply on shell and control, the protocol version, and that each claimed
optional feature works.
"""

from __future__ import annotations

from .. import schema
from ..harness import (
    LATEST_PROTOCOL,
    Harness,
    short,
)
from ..registry import Fail, check
from .subshells import subshells_claimed


def _kernel_info(h: Harness, channel: str) -> str:
    reply = h.finish(h.request(channel, "kernel_info_request"))
    assert reply is not None
    c = reply.content
    if c.get("status") != "ok":
        raise Fail(f"kernel_info_reply status {c.get('status')!r}")
    lang = c.get("language_info", {}).get("name") if isinstance(c.get("language_info"),
                                                                 dict) else None
    return (f"{c.get('implementation')} {c.get('implementation_version')}, "
            f"protocol {c.get('protocol_version')}, language {lang}")


@check("kernel_info.shell", "kernel_info_request on shell: valid reply, busy/idle")
def kernel_info_shell(h: Harness) -> str:
    return _kernel_info(h, "shell")


@check("kernel_info.control", "kernel_info_request on control: valid reply, busy/idle")
def kernel_info_control(h: Harness) -> str:
    return _kernel_info(h, "control")


@check("kernel_info.protocol_version", "protocol_version is 5.x and matches the kernelspec")
def kernel_info_protocol(h: Harness) -> str:
    claimed = h.info.get("protocol_version")
    version = schema.parse_version(claimed)
    if version is None:
        raise Fail(f"protocol_version {short(claimed)} is not a version")
    if version[0] != 5:
        raise Fail(f"protocol {claimed} is not 5.x, the protocol this checker speaks")
    latest = ".".join(map(str, LATEST_PROTOCOL))
    newer = f" (newer than {latest}, the latest this checker knows)" \
        if version > LATEST_PROTOCOL else ""
    declared = h.kernelspec_json().get("kernel_protocol_version")
    if declared:
        if schema.parse_version(declared) != version:
            raise Fail(f"the kernelspec declares protocol {declared}, "
                       f"kernel_info_reply says {claimed}")
        return f"protocol {claimed}{newer}; the kernelspec declares the same"
    return f"protocol {claimed}{newer}; the kernelspec declares none"


@check("kernel_info.supported_features", "each claimed optional feature works")
def kernel_info_features(h: Harness) -> str:
    features = h.info.get("supported_features") or []
    if not isinstance(features, list):
        raise Fail(f"supported_features is {short(features)}, not a list")
    claimed = [str(f) for f in features]
    if h.info.get("debugger") is True and "debugger" not in claimed:
        claimed.append("debugger")  # the deprecated flag claims the same
    if not claimed:
        return "no optional features claimed"
    notes = []
    for feature in claimed:
        if feature == "debugger":
            notes.append(_debugger(h))
        elif feature == "kernel subshells":
            notes.append(_subshells(h))
        else:
            notes.append(f"{feature!r}: not a feature this checker knows")
    return "; ".join(notes)


def _debugger(h: Harness) -> str:
    req = h.request("control", "debug_request",
                    {"type": "request", "seq": 1, "command": "debugInfo", "arguments": {}})
    reply = h.finish(req)
    assert reply is not None
    c = reply.content
    if c.get("success") is not True or c.get("command") != "debugInfo":
        raise Fail(f"'debugger' is claimed, but debug_request debugInfo got {short(c, 120)}")
    return "debugger: debugInfo answered"


def _subshells(h: Harness) -> str:
    subshells_claimed(h)
    return "kernel subshells: see the subshells checks"
