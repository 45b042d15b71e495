"""execute: replies, execution_count, silent and store_history, errors, results,
user_expressions, and the stop_on_error pair.
"""

from __future__ import annotations

from .. import schema
from ..client import Request
from ..harness import (
    Harness,
    error_text,
    execute_content,
    short,
)
from ..registry import Fail, check


@check("execute.ok", "hello world: ok reply, execute_input, output")
def execute_ok(h: Harness) -> str:
    hello = h.need("hello")
    req, reply = h.run(hello["code"])
    count = h.count_of(reply)
    inputs = req.of_type("execute_input")
    if not inputs:
        raise Fail("no execute_input on IOPub")
    if inputs[0].content.get("code") != hello["code"]:
        raise Fail(f"execute_input code is {short(inputs[0].content.get('code'))}")
    if inputs[0].content.get("execution_count") != count:
        raise Fail(f"execute_input execution_count {inputs[0].content.get('execution_count')} "
                   f"!= execute_reply's {count}")
    expected = hello.get("output")
    if expected is not None and expected not in req.text():
        raise Fail(f"output {short(req.text())} does not contain {expected!r}")
    return f"execution_count {count}, output {short(req.text().strip(), 40)}"


@check("execute.execution_count", "each stored execution adds exactly one")
def execute_count(h: Harness) -> str:
    hello = h.need("hello")
    first = h.count_of(h.run(hello["code"])[1])
    second = h.count_of(h.run(hello["code"])[1])
    if second != first + 1:
        raise Fail(f"two executions in a row counted {first} then {second}")
    return f"{first} then {second}"


@check("execute.silent", "silent: no IOPub output, counter unchanged")
def execute_silent(h: Harness) -> str:
    hello = h.need("hello")
    before = h.count_of(h.run(hello["code"])[1])
    req, reply = h.run(hello["code"], silent=True, store_history=False)
    during = h.count_of(reply)
    after = h.count_of(h.run(hello["code"])[1])
    published = [m.msg_type for m in req.outputs()]
    if published:
        raise Fail(f"a silent execution published {', '.join(published)} on IOPub")
    if during != before:
        raise Fail(f"a silent execution answered execution_count {during}; "
                   f"the counter was {before}")
    if after != before + 1:
        raise Fail(f"the counter went from {before} to {after} over a silent execution "
                   "and a stored one")
    return f"counter {before} -> {during} (silent) -> {after}"


@check("execute.store_history", "store_history false: counter unchanged")
def execute_store_history(h: Harness) -> str:
    hello = h.need("hello")
    before = h.count_of(h.run(hello["code"])[1])
    during = h.count_of(h.run(hello["code"], store_history=False)[1])
    after = h.count_of(h.run(hello["code"])[1])
    if during != before:
        raise Fail(f"with store_history false the reply says {during}; the counter was {before}")
    if after != before + 1:
        raise Fail(f"the counter went from {before} to {after} over one stored execution")
    return f"counter {before} -> {during} (not stored) -> {after}"


@check("execute.error", "an error: error reply and the error on IOPub")
def execute_error(h: Harness) -> str:
    sample = h.need("error")
    req, reply = h.run(sample["code"], expect="error")
    c = reply.content
    errors = req.of_type("error")
    if not errors:
        raise Fail("no error message on IOPub")
    if errors[0].content.get("ename") != c.get("ename"):
        raise Fail(f"IOPub error {errors[0].content.get('ename')!r} != reply's {c.get('ename')!r}")
    expected = sample.get("ename")
    if expected and c.get("ename") != expected:
        raise Fail(f"ename {c.get('ename')!r}, expected {expected!r}")
    tb = c.get("traceback")
    return f"{error_text(c)}; traceback of {len(tb) if isinstance(tb, list) else '?'} lines"


@check("execute.result", "an expression: execute_result with its value")
def execute_result(h: Harness) -> str:
    sample = h.need("expression")
    req, reply = h.run(sample["code"])
    results = req.of_type("execute_result")
    if not results:
        raise Fail("no execute_result on IOPub")
    data = results[0].content.get("data")
    text = data.get("text/plain") if isinstance(data, dict) else None
    if not isinstance(text, str) or sample["result"] not in text:
        raise Fail(f"execute_result text/plain {short(text)} does not contain "
                   f"{sample['result']!r}")
    count = h.count_of(reply)
    if results[0].content.get("execution_count") != count:
        raise Fail(f"execute_result execution_count {results[0].content.get('execution_count')}"
                   f" != execute_reply's {count}")
    return f"text/plain {short(text, 30)}"


@check("execute.user_expressions", "user_expressions are evaluated into the reply")
def execute_user_expressions(h: Harness) -> str:
    hello = h.need("hello")
    sample = h.need("expression")
    _, reply = h.run(hello["code"], user_expressions={"answer": sample["code"]})
    exprs = reply.content.get("user_expressions")
    if not isinstance(exprs, dict) or "answer" not in exprs:
        raise Fail(f"user_expressions in the reply is {short(exprs)}: 'answer' is missing")
    value = exprs["answer"]
    if not isinstance(value, dict) or value.get("status") != "ok":
        raise Fail(f"user_expressions['answer'] is {short(value, 100)}, not status ok")
    data = value.get("data")
    problem = schema.is_mime_bundle(data)
    if problem:
        raise Fail(f"user_expressions['answer'] data {problem}")
    assert isinstance(data, dict)
    text = data.get("text/plain")
    if not isinstance(text, str) or sample["result"] not in text:
        raise Fail(f"user_expressions['answer'] text/plain {short(text)} does not contain "
                   f"{sample['result']!r}")
    return f"answer: {short(text, 30)}"


def _behind_an_error(h: Harness, stop_on_error: bool) -> Request:
    """The stop_on_error pair: the error sample with ``stop_on_error`` and the hello
    sample queued right behind it, both answered; returns the queued one."""
    error = h.need("error")
    hello = h.need("hello")
    failing, queued = h.execute_two(execute_content(error["code"], stop_on_error=stop_on_error),
                                    execute_content(hello["code"]))
    h.finish(failing)
    h.finish(queued)
    assert failing.reply is not None and queued.reply is not None
    if failing.reply.content.get("status") != "error":
        raise Fail(f"the error sample gave status {failing.reply.content.get('status')!r}")
    return queued


@check("execute.stop_on_error", "an error aborts the executes queued behind it")
def execute_stop_on_error(h: Harness) -> str:
    queued = _behind_an_error(h, stop_on_error=True)
    assert queued.reply is not None
    status = queued.reply.content.get("status")
    ran = [m.msg_type for m in queued.outputs()]
    if status == "ok" or ran:
        raise Fail(f"the execute queued behind the error ran (status {status!r}"
                   + (f", published {', '.join(ran)})" if ran else ")"))
    # The abort is for what was queued then: the next execute must run.
    h.run(h.need("hello")["code"])
    return f"queued execute answered {status!r} without running; the next one ran"


@check("execute.no_stop_on_error", "stop_on_error false: the next execute runs")
def execute_no_stop(h: Harness) -> str:
    queued = _behind_an_error(h, stop_on_error=False)
    assert queued.reply is not None
    status = queued.reply.content.get("status")
    if status != "ok":
        raise Fail(f"the execute queued behind an error with stop_on_error false got {status!r}")
    return "the queued execute ran"
