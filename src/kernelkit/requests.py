"""Request contents checked against the messaging spec's types before any hook sees them.

A hook is written for the types the spec promises (``silent`` a boolean, ``cursor_pos``
an index into ``code``); a value of another type would be misread by it (the string
``"false"`` is true in Python) or crash it far from the cause. Each function here takes
one request's content and returns the hook's arguments, with the spec's defaults for
omitted fields (as jupyter_client, JupyterLab and nbclient omit some), or raises
``InvalidRequest``, which the dispatcher answers with an error reply naming the field;
nothing runs and the execution count does not move.

``null`` counts as omitted only where a field's default is itself "nothing"
(``cursor_pos``: the end of the code, as jupyter_client and ipykernel read it;
``user_expressions``; the optional numbers and the pattern of a history request;
``target_name``). Booleans must be booleans.

These run on the path of every execute: plain ``is`` and ``isinstance`` checks only.
"""

from __future__ import annotations

from typing import Any

from .wire import JSONDict

_MISSING: Any = object()
# Longest value quoted back in an error message.
_SHOWN = 40


class InvalidRequest(Exception):
    """A request whose content breaks the messaging spec; answered ``ename``/``evalue``."""

    def __init__(self, ename: str, evalue: str) -> None:
        super().__init__(evalue)
        self.ename = ename
        self.evalue = evalue


def describe(value: object) -> str:
    """A JSON value as an error message names it: its JSON type, and the value if short."""
    if value is None:
        return "null"
    if value is True or value is False:
        return f"the boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        digits = str(value) if -(10**_SHOWN) < value < 10**_SHOWN else ""
        return f"the integer {digits}" if digits else f"an integer of {len(str(abs(value)))} digits"
    if isinstance(value, float):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= _SHOWN else value[:_SHOWN] + "..."
        return f"the string {shown!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _wrong_type(msg_type: str, field: str, expected: str, value: object) -> InvalidRequest:
    return InvalidRequest(
        "TypeError", f"{msg_type} content '{field}' must be {expected}, not {describe(value)}"
    )


def _bool(content: JSONDict, msg_type: str, field: str, default: bool) -> bool:
    value = content.get(field, default)
    if value is True or value is False:
        return bool(value)
    raise _wrong_type(msg_type, field, "a boolean (true or false)", value)


def _code(content: JSONDict, msg_type: str) -> str:
    code = content.get("code", "")
    if not isinstance(code, str):
        raise _wrong_type(msg_type, "code", "a string", code)
    return code


def _int_or_none(content: JSONDict, msg_type: str, field: str, default: int | None) -> int | None:
    value = content.get(field, default)
    if value is None:
        return None
    if isinstance(value, int) and value is not True and value is not False:
        return value
    raise _wrong_type(msg_type, field, "an integer", value)


def execute(
    content: JSONDict, metadata: JSONDict
) -> tuple[str, bool, bool, JSONDict, bool, bool, str | None]:
    """(code, silent, store_history, user_expressions, allow_stdin, stop_on_error, cell_id)."""
    code = content.get("code", "")
    if not isinstance(code, str):
        raise _wrong_type("execute_request", "code", "a string", code)
    get = content.get
    silent = get("silent", False)
    if silent is not True and silent is not False:
        raise _wrong_type("execute_request", "silent", "a boolean (true or false)", silent)
    store_history = get("store_history", _MISSING)
    if store_history is _MISSING:
        store_history = not silent
    elif store_history is not True and store_history is not False:
        raise _wrong_type(
            "execute_request", "store_history", "a boolean (true or false)", store_history
        )
    user_expressions = get("user_expressions")
    if user_expressions is None:
        user_expressions = {}
    elif not isinstance(user_expressions, dict):
        raise _wrong_type(
            "execute_request", "user_expressions", "an object of strings", user_expressions
        )
    elif user_expressions:
        for name, expression in user_expressions.items():
            if not isinstance(expression, str):
                raise _wrong_type(
                    "execute_request", f"user_expressions[{name!r}]", "a string", expression
                )
    allow_stdin = get("allow_stdin", True)
    if allow_stdin is not True and allow_stdin is not False:
        raise _wrong_type("execute_request", "allow_stdin", "a boolean (true or false)",
                          allow_stdin)
    stop_on_error = get("stop_on_error", True)
    if stop_on_error is not True and stop_on_error is not False:
        raise _wrong_type("execute_request", "stop_on_error", "a boolean (true or false)",
                          stop_on_error)
    cell_id = metadata.get("cellId")
    if cell_id is not None and not isinstance(cell_id, str):
        raise _wrong_type("execute_request", "metadata 'cellId'", "a string", cell_id)
    # A silent execute never stores history (messaging spec, "Execute": store_history).
    return (code, silent, store_history and not silent, user_expressions, allow_stdin,
            stop_on_error, cell_id)


def _cursor(content: JSONDict, msg_type: str, code: str) -> int:
    pos = content.get("cursor_pos")
    if pos is None:
        return len(code)
    if not isinstance(pos, int) or pos is True or pos is False:
        raise _wrong_type(msg_type, "cursor_pos", "an integer", pos)
    if not 0 <= pos <= len(code):
        raise InvalidRequest(
            "ValueError",
            f"{msg_type} content 'cursor_pos' must be between 0 and {len(code)} (the length "
            f"of 'code' in characters), not {describe(pos).removeprefix('the integer ')}",
        )
    return pos


def complete(content: JSONDict) -> tuple[str, int]:
    """(code, cursor_pos); a missing cursor_pos is the end of the code."""
    code = _code(content, "complete_request")
    return code, _cursor(content, "complete_request", code)


def inspect(content: JSONDict) -> tuple[str, int, int, Any]:
    """(code, cursor_pos, detail_level, omit_sections)."""
    code = _code(content, "inspect_request")
    pos = _cursor(content, "inspect_request", code)
    level = content.get("detail_level", 0)
    if level is None:
        level = 0
    elif level is True or level is False or not isinstance(level, int):
        raise _wrong_type("inspect_request", "detail_level", "the integer 0 or 1", level)
    elif level not in (0, 1):
        raise InvalidRequest(
            "ValueError",
            f"inspect_request content 'detail_level' must be 0 or 1, not {describe(level)}",
        )
    omit = content.get("omit_sections")
    if omit is None:
        omit = ()
    elif not isinstance(omit, list) or not all(isinstance(s, str) for s in omit):
        raise _wrong_type("inspect_request", "omit_sections", "an array of strings", omit)
    return code, pos, level, omit


def is_complete(content: JSONDict) -> str:
    return _code(content, "is_complete_request")


def history(
    content: JSONDict,
) -> tuple[str, bool, bool, int | None, int | None, int | None, int | None, str | None, bool]:
    """do_history's arguments, in its order; each field of its spec type."""
    msg_type = "history_request"
    access = content.get("hist_access_type", "tail")
    if not isinstance(access, str):
        raise _wrong_type(msg_type, "hist_access_type", "a string ('range', 'tail' or "
                          "'search')", access)
    pattern = content.get("pattern")
    if pattern is not None and not isinstance(pattern, str):
        raise _wrong_type(msg_type, "pattern", "a string", pattern)
    return (
        access,
        _bool(content, msg_type, "output", False),
        _bool(content, msg_type, "raw", True),
        _int_or_none(content, msg_type, "session", 0),
        _int_or_none(content, msg_type, "start", 0),
        _int_or_none(content, msg_type, "stop", None),
        _int_or_none(content, msg_type, "n", None),
        pattern,
        _bool(content, msg_type, "unique", False),
    )


def comm_info(content: JSONDict) -> str | None:
    """The optional target_name."""
    target = content.get("target_name")
    if target is not None and not isinstance(target, str):
        raise _wrong_type("comm_info_request", "target_name", "a string", target)
    return target


def shutdown(content: JSONDict) -> bool:
    """restart."""
    return _bool(content, "shutdown_request", "restart", False)
