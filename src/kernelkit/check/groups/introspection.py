"""introspection: complete, inspect, is_complete and history, each optional (Skip when not
implemented).
"""

from __future__ import annotations

from ..harness import (
    Harness,
    optional,
    short,
)
from ..registry import Fail, Skip, check


@check("introspection.complete", "complete_request: matches and a valid cursor range")
def introspection_complete(h: Harness) -> str:
    sample = h.samples.get("complete") or h.samples.get("hello")
    if sample is None:
        raise Skip("no sample: complete")
    code = sample["code"]
    reply = optional(h, "complete_request", {"code": code, "cursor_pos": len(code)})
    c = reply.content
    start, end, matches = c.get("cursor_start"), c.get("cursor_end"), c.get("matches")
    if isinstance(start, int) and isinstance(end, int) and not 0 <= start <= end <= len(code):
        raise Fail(f"cursor_start {start}, cursor_end {end} is not a range within the "
                   f"{len(code)} characters of code")
    expected = sample.get("match")
    if expected is not None and matches == []:
        raise Skip(f"no matches for {code!r} (no completion, or a sample it does not know)")
    if expected is not None:
        if not isinstance(matches, list) or not any(expected in str(m) for m in matches):
            raise Fail(f"completing {code!r} did not offer {expected!r} "
                       f"(matches: {short(matches)})")
        return f"{code!r} -> {len(matches)} matches including {expected!r}"
    return f"{len(matches) if isinstance(matches, list) else '?'} matches (no sample to compare)"


@check("introspection.inspect", "inspect_request: found and a mime bundle")
def introspection_inspect(h: Harness) -> str:
    sample = h.samples.get("inspect")
    code = (sample or h.need("hello"))["code"]
    reply = optional(h, "inspect_request",
                      {"code": code, "cursor_pos": len(code), "detail_level": 0})
    c = reply.content
    if c.get("found") is True and not c.get("data"):
        raise Fail("found is true but data is empty")
    if c.get("found") is not True:
        # found: false is a valid answer; a kernel without inspection gives it for anything.
        why = "no inspection, or a sample it does not know" if sample else "no sample: inspect"
        raise Skip(f"found nothing for {code!r} ({why})")
    return f"{code!r}: {', '.join(sorted(c.get('data') or {}))}"


@check("introspection.is_complete", "is_complete_request: complete and incomplete code")
def introspection_is_complete(h: Harness) -> str:
    sample = h.need("is_complete")
    notes = []
    for expected in ("complete", "incomplete"):
        code = sample.get(expected)
        if code is None:
            continue
        reply = optional(h, "is_complete_request", {"code": code})
        status = reply.content.get("status")
        if status == "unknown":
            raise Skip(f"not implemented: the kernel answers 'unknown' for {code!r}")
        if status != expected:
            raise Fail(f"{code!r} is {expected}, the kernel says {status!r}")
        notes.append(f"{code!r}: {status}")
    if not notes:
        raise Skip("no sample: is_complete")
    return "; ".join(notes)


@check("introspection.history", "history_request: tail of the history")
def introspection_history(h: Harness) -> str:
    hello = h.samples.get("hello")
    if hello is not None:
        h.run(hello["code"])
    reply = optional(h, "history_request",
                      {"hist_access_type": "tail", "n": 10, "output": False, "raw": True})
    history = reply.content.get("history")
    if not isinstance(history, list):
        raise Fail(f"history is {short(history)}")
    if not history:
        raise Skip("not implemented: the kernel keeps no history (empty history_reply)")
    if hello is not None:
        inputs = [e[2] if isinstance(e[2], str) else e[2][0] for e in history
                  if isinstance(e, list) and len(e) == 3 and isinstance(e[2], (str, list))]
        if hello["code"] not in inputs:
            raise Fail(f"the code just executed is not in the history tail: {short(inputs)}")
    return f"{len(history)} entries"
