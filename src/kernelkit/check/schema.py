"""The messaging spec (protocol 5.x) as field tables: what each message must carry.

``validate()`` takes one decoded message as a kernel sent it and returns the list
of problems found (empty when the message is valid). The rules come from
jupyter_client's ``docs/messaging.rst``:

* the header has ``msg_id``, ``username``, ``session``, ``date`` (ISO 8601,
  mandatory since 5.1), ``msg_type`` and ``version`` ("5.x"), all strings;
* ``parent_header``, ``metadata`` and ``content`` are objects;
* every reply has a ``status``: ``ok`` (and the reply's own fields), ``error``
  (with ``ename``, ``evalue`` and a ``traceback`` list of strings) or
  ``aborted`` (also the deprecated ``abort``) with nothing else required;
* IOPub and stdin messages carry their own fields.

Extra fields and unknown message types are allowed, as the spec asks of both
sides ("Both sides should allow unexpected message types, and extra fields in
known message types").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

# A field check returns a problem ("is an int, not a string") or None.
FieldCheck = Callable[[Any], "str | None"]
# field name -> (check, required)
Fields = dict[str, tuple[FieldCheck, bool]]

VERSION_RE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")
DATE_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?$"
)
MIMETYPE_RE = re.compile(r"^[\w.+-]+/[\w.+-]+$")
REPLY_STATUSES = ("ok", "error", "aborted", "abort")


# bool before int: True is an int to isinstance.
_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (list, "a list"),
    (dict, "an object"),
)


def type_name(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    for kind, name in _TYPE_NAMES:
        if isinstance(value, kind):
            return name
    return type(value).__name__


def short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- field checks ------------------------------------------------------------------------


def is_str(v: Any) -> str | None:
    return None if isinstance(v, str) else f"is {type_name(v)} {short(v)}, not a string"


def is_int(v: Any) -> str | None:
    if isinstance(v, int) and not isinstance(v, bool):
        return None
    return f"is {type_name(v)} {short(v)}, not an integer"


def is_bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else f"is {type_name(v)} {short(v)}, not a boolean"


def is_dict(v: Any) -> str | None:
    return None if isinstance(v, dict) else f"is {type_name(v)} {short(v)}, not an object"


def is_list_of_str(v: Any) -> str | None:
    if not isinstance(v, list):
        return f"is {type_name(v)} {short(v)}, not a list of strings"
    for i, item in enumerate(v):
        if not isinstance(item, str):
            return f"item {i} is {type_name(item)} {short(item)}, not a string"
    return None


def one_of(*values: str) -> FieldCheck:
    def check(v: Any) -> str | None:
        if v in values:
            return None
        return f"is {short(v)}, not one of {', '.join(repr(x) for x in values)}"

    return check


def is_version(v: Any) -> str | None:
    if not isinstance(v, str):
        return f"is {type_name(v)} {short(v)}, not a version string"
    return None if VERSION_RE.match(v) else f"is {short(v)}, not a version like '5.3'"


def is_date(v: Any) -> str | None:
    if not isinstance(v, str):
        return f"is {type_name(v)} {short(v)}, not an ISO 8601 string"
    return None if DATE_RE.match(v) else f"is {short(v)}, not an ISO 8601 date"


def is_mime_bundle(v: Any) -> str | None:
    """A mime bundle: mimetype keys; text/* values are strings."""
    if not isinstance(v, dict):
        return f"is {type_name(v)} {short(v)}, not a mime bundle object"
    for key, value in v.items():
        if not MIMETYPE_RE.match(key):
            return f"has key {short(key)}, which is not a mimetype"
        if key.startswith("text/") and not isinstance(value, str):
            return f"[{key!r}] is {type_name(value)} {short(value)}, not a string"
    return None


def obj(fields: Fields) -> FieldCheck:
    """An object with the given fields."""

    def check(v: Any) -> str | None:
        if not isinstance(v, dict):
            return f"is {type_name(v)} {short(v)}, not an object"
        problems = check_fields(v, fields)
        return "; ".join(problems) if problems else None

    return check


def list_of(item: FieldCheck) -> FieldCheck:
    def check(v: Any) -> str | None:
        if not isinstance(v, list):
            return f"is {type_name(v)} {short(v)}, not a list"
        for i, x in enumerate(v):
            problem = item(x)
            if problem:
                return f"item {i} {problem}"
        return None

    return check


def dict_of(item: FieldCheck) -> FieldCheck:
    def check(v: Any) -> str | None:
        if not isinstance(v, dict):
            return f"is {type_name(v)} {short(v)}, not an object"
        for k, x in v.items():
            problem = item(x)
            if problem:
                return f"[{k!r}] {problem}"
        return None

    return check


def history_entry(v: Any) -> str | None:
    """(session, line_number, input) or (session, line_number, (input, output))."""
    if not isinstance(v, list) or len(v) != 3:
        return f"is {short(v)}, not a 3-item list (session, line, input)"
    session, line, text = v
    problem = is_int(session) or is_int(line)
    if problem:
        return problem
    if isinstance(text, str):
        return None
    if isinstance(text, list) and len(text) == 2 and isinstance(text[0], str):
        return None
    return f"input {short(text)} is neither a string nor an (input, output) pair"


def check_fields(content: dict[str, Any], fields: Fields) -> list[str]:
    problems = []
    for name, (check, required) in fields.items():
        if name not in content:
            if required:
                problems.append(f"'{name}' is missing")
            continue
        problem = check(content[name])
        if problem:
            problems.append(f"'{name}' {problem}")
    return problems


# -- the tables ------------------------------------------------------------------------

HEADER: Fields = {
    "msg_id": (is_str, True),
    "username": (is_str, True),
    "session": (is_str, True),
    "date": (is_date, True),
    "msg_type": (is_str, True),
    "version": (is_version, True),
}

LANGUAGE_INFO: Fields = {
    # The spec lists name, version, mimetype and file_extension, but its own wrapper
    # kernel example (the Echo kernel) gives no version: only name is required here.
    "name": (is_str, True),
    "version": (is_str, False),
    "mimetype": (is_str, False),
    "file_extension": (is_str, False),
    "pygments_lexer": (is_str, False),
    "nbconvert_exporter": (is_str, False),
}

TRANSIENT: Fields = {"display_id": (is_str, False)}

# Fields of a reply whose status is "ok", by reply type.
REPLY_OK: dict[str, Fields] = {
    "execute_reply": {
        "execution_count": (is_int, True),
        "user_expressions": (is_dict, True),
        "payload": (list_of(obj({"source": (is_str, True)})), False),
    },
    "kernel_info_reply": {
        "protocol_version": (is_version, True),
        "implementation": (is_str, True),
        "implementation_version": (is_str, True),
        "language_info": (obj(LANGUAGE_INFO), True),
        "banner": (is_str, True),
        "help_links": (list_of(obj({"text": (is_str, True), "url": (is_str, True)})), False),
        "debugger": (is_bool, False),
        "supported_features": (is_list_of_str, False),
    },
    "complete_reply": {
        "matches": (is_list_of_str, True),
        "cursor_start": (is_int, True),
        "cursor_end": (is_int, True),
        "metadata": (is_dict, True),
    },
    "inspect_reply": {
        "found": (is_bool, True),
        "data": (is_mime_bundle, True),
        "metadata": (is_dict, True),
    },
    "history_reply": {"history": (list_of(history_entry), True)},
    "comm_info_reply": {"comms": (dict_of(obj({"target_name": (is_str, True)})), True)},
    "shutdown_reply": {"restart": (is_bool, True)},
    "interrupt_reply": {},
    "connect_reply": {
        "shell_port": (is_int, False),
        "iopub_port": (is_int, False),
        "stdin_port": (is_int, False),
        "hb_port": (is_int, False),
        "control_port": (is_int, False),
    },
    "create_subshell_reply": {"subshell_id": (is_str, True)},
    "delete_subshell_reply": {},
    "list_subshell_reply": {"subshell_id": (is_list_of_str, True)},
}

ERROR_FIELDS: Fields = {
    "ename": (is_str, True),
    "evalue": (is_str, True),
    "traceback": (is_list_of_str, True),
}

IOPUB: dict[str, Fields] = {
    "status": {"execution_state": (one_of("busy", "idle", "starting"), True)},
    "stream": {"name": (one_of("stdout", "stderr"), True), "text": (is_str, True)},
    "display_data": {
        "data": (is_mime_bundle, True),
        "metadata": (is_dict, True),
        "transient": (obj(TRANSIENT), False),
    },
    "update_display_data": {
        "data": (is_mime_bundle, True),
        "metadata": (is_dict, True),
        "transient": (obj({"display_id": (is_str, True)}), True),
    },
    "execute_input": {"code": (is_str, True), "execution_count": (is_int, True)},
    "execute_result": {
        "execution_count": (is_int, True),
        "data": (is_mime_bundle, True),
        "metadata": (is_dict, True),
        "transient": (obj(TRANSIENT), False),
    },
    "error": ERROR_FIELDS,
    "clear_output": {"wait": (is_bool, True)},
    "comm_open": {
        "comm_id": (is_str, True),
        "target_name": (is_str, True),
        "data": (is_dict, True),
    },
    "comm_msg": {"comm_id": (is_str, True), "data": (is_dict, True)},
    "comm_close": {"comm_id": (is_str, True), "data": (is_dict, False)},
    "iopub_welcome": {"subscription": (is_str, True)},
    "debug_event": {"event": (is_str, True)},
}

STDIN: dict[str, Fields] = {
    "input_request": {"prompt": (is_str, True), "password": (is_bool, True)},
}

# Reply types whose content is not a status reply.
NOT_STATUS_REPLIES = {"is_complete_reply", "debug_reply"}


def validate_reply(msg_type: str, content: dict[str, Any]) -> list[str]:
    """Problems with the content of a ``*_reply``."""
    if msg_type == "is_complete_reply":
        status = content.get("status")
        if status == "error":
            return check_fields(content, ERROR_FIELDS)
        found = check_fields(
            content,
            {"status": (one_of("complete", "incomplete", "invalid", "unknown"), True)},
        )
        if status == "incomplete":
            found += check_fields(content, {"indent": (is_str, True)})
        return found
    if msg_type == "debug_reply":
        # A Debug Adapter Protocol response: its shape is the DAP's, not Jupyter's.
        return check_fields(content, {"type": (is_str, False), "success": (is_bool, False)})
    if "status" not in content:
        return ["'status' is missing"]
    status = content["status"]
    if status not in REPLY_STATUSES:
        return [f"'status' is {short(status)}, not one of ok, error, aborted"]
    problems: list[str] = []
    if status == "error":
        problems += check_fields(content, ERROR_FIELDS)
        if msg_type == "execute_reply":
            # execution_count belongs to every execute_reply that ran, failed or not.
            problems += check_fields(content, {"execution_count": (is_int, True)})
    if status == "ok" and msg_type in REPLY_OK:
        problems += check_fields(content, REPLY_OK[msg_type])
    return problems


def validate(channel: str, msg: dict[str, Any]) -> list[str]:
    """Problems with one decoded message received on ``channel``.

    ``msg`` has the four parts ``header``, ``parent_header``, ``metadata`` and
    ``content`` (as parsed JSON, before any conversion).
    """
    problems: list[str] = []
    for part in ("header", "parent_header", "metadata", "content"):
        if not isinstance(msg.get(part), dict):
            problems.append(f"{part} is {type_name(msg.get(part))}, not an object")
    if problems:
        return problems
    header = msg["header"]
    problems += [f"header {p}" for p in check_fields(header, HEADER)]
    if isinstance(header.get("msg_id"), str) and not header["msg_id"]:
        problems.append("header 'msg_id' is empty")
    parent = msg["parent_header"]
    if parent and not isinstance(parent.get("msg_id"), str):
        problems.append("parent_header is not empty but has no 'msg_id' string")
    msg_type = header.get("msg_type")
    if not isinstance(msg_type, str):
        return problems
    content = msg["content"]
    if channel == "iopub" and msg_type == "shutdown_reply":
        # ipykernel and others also publish the shutdown reply on IOPub.
        problems += validate_reply(msg_type, content)
    elif channel == "iopub":
        if msg_type in IOPUB:
            problems += check_fields(content, IOPUB[msg_type])
    elif channel == "stdin":
        if msg_type in STDIN:
            problems += check_fields(content, STDIN[msg_type])
    elif msg_type.endswith("_reply"):
        problems += validate_reply(msg_type, content)
    return problems


def parse_version(text: Any) -> tuple[int, int] | None:
    """(major, minor) of a protocol version string, or None."""
    if not isinstance(text, str):
        return None
    m = VERSION_RE.match(text)
    return (int(m.group(1)), int(m.group(2))) if m else None
