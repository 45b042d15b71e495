"""stdin: input_request and its reply reaching the code; none when allow_stdin is false."""

from __future__ import annotations

from ..harness import (
    INPUT_TOKEN,
    Harness,
    error_text,
    short,
)
from ..registry import Fail, check


@check("stdin.input", "input_request on stdin, and the reply reaches the code")
def stdin_input(h: Harness) -> str:
    sample = h.need("input")
    req = h.execute(sample["code"], allow_stdin=True)
    client = h.client
    if not h.wait(lambda: bool(req.stdin) or req.reply is not None):
        raise Fail(f"no input_request within {h.timeout:.0f}s")
    if not req.stdin:
        assert req.reply is not None
        raise Fail(f"the execution ended without an input_request "
                   f"(status {req.reply.content.get('status')!r})")
    request = req.stdin[0]
    prompt = request.content.get("prompt")
    expected = sample.get("prompt")
    client.answer_input(request, INPUT_TOKEN)
    reply = h.finish(req)
    assert reply is not None
    if expected is not None and isinstance(prompt, str) and expected.strip() not in prompt:
        raise Fail(f"input_request prompt is {prompt!r}, expected {expected!r}")
    if reply.content.get("status") != "ok":
        raise Fail(f"after the input_reply the execution failed: {error_text(reply.content)}")
    if INPUT_TOKEN not in req.text():
        raise Fail(f"the value typed ({INPUT_TOKEN}) did not reach the code "
                   f"(output: {short(req.text())})")
    return f"prompt {prompt!r}; the value came back in the output"


@check("stdin.not_allowed", "allow_stdin false: no input_request, and a reply")
def stdin_not_allowed(h: Harness) -> str:
    sample = h.need("input")
    req = h.execute(sample["code"], allow_stdin=False)
    reply = h.finish(req)
    assert reply is not None
    return f"status {reply.content.get('status')!r} without asking"
