"""Conformance of the TypeScript kernel on Deno (src/kernelkit/typescript): the community suite
(jupyter_kernel_test) with a full set of TypeScript samples, and ``kernelkit check`` with
tests/support/typescript_samples.toml, every check of it one test.

The kernel is installed as users install it, ``kernelkit install typescript --prefix P``
(which prepares the backend's cache under P once), into conftest's test prefix: once with the
default signal interrupt and once with ``--interrupt-mode message``.

Where the kernel has a gap that is not in introspect.ts (the part this file's author may
change), the test of it is an ``xfail(strict=True)`` whose reason says what is missing, so
that the gap stays visible and the test must be updated when it is closed.
"""

from __future__ import annotations

import functools
import json
import os
import queue
from pathlib import Path
from typing import Any

import jupyter_kernel_test as jkt  # not `from ... import KernelTests`: pytest would collect it
import pytest
from jupyter_kernel_test.msgspec_v5 import validate_message

from conftest import SUPPORT, kernelkit, stdout_until_idle
from kernelkit.check import runner

NAME = "kk-ts-conformance"
NAME_MESSAGE = "kk-ts-conformance-message"
SAMPLES = SUPPORT / "typescript_samples.toml"
TIMEOUT = 30

# A 1x1 PNG (a red pixel), as bytes the kernel's image() recognises by their signature.
PNG = ("new Uint8Array([137,80,78,71,13,10,26,10,0,0,0,13,73,72,68,82,0,0,0,1,0,0,0,1,8,2,0,0,0,"
       "144,119,83,222,0,0,0,12,73,68,65,84,8,215,99,248,207,192,0,0,3,1,1,0,24,221,141,176,0,0,"
       "0,0,73,69,78,68,174,66,96,130])")


@functools.cache
def install() -> Path:
    """Install both kernelspecs into conftest's prefix, once per test session."""
    prefix = Path(os.environ["JUPYTER_PATH"]).parents[1]
    for name, mode in ((NAME, "signal"), (NAME_MESSAGE, "message")):
        done = kernelkit("install", "typescript", "--name", name, "--prefix", str(prefix),
                         "--interrupt-mode", mode, timeout=300)
        assert done.returncode == 0, done.stderr
    return prefix


# -- jupyter_kernel_test -------------------------------------------------------------------
#
# Every sample attribute of the suite is set but code_page_something: TypeScript has no help
# syntax that pages (IPython's `x?`), and the kernel answers help through inspect_request.
# The suite has no stdin test; test_input below adds one in the suite's style.


class TypeScriptKernelTests(jkt.KernelTests):
    kernel_name = NAME
    language_name = "typescript"
    file_extension = ".ts"

    @classmethod
    def setUpClass(cls) -> None:
        install()
        super().setUpClass()

    code_hello_world = 'const greeting: string = "hello, world";\nconsole.log(greeting);'
    code_stderr = 'console.error("to stderr");'
    code_generate_error = (
        'function fail(why: string): never {\n  throw new TypeError(why);\n}\nfail("boom");')
    # The suite compares the set of matches exactly.
    completion_samples = [
        {"text": "Deno.versi", "matches": ["version"]},
        {"text": "JSON.str", "matches": ["stringify"]},
        {"text": "Deno.readTextF", "matches": ["readTextFile", "readTextFileSync"]},
        {"text": "consol", "matches": ["console"]},
        {"text": "interf", "matches": ["interface"]},  # TypeScript keywords too
        {"text": 'import { join } from "node:pat', "matches": ["node:path"]},
        {"text": "Object.keys(Deno.en", "matches": ["env"]},
    ]
    complete_code_samples = [
        "let x: number = 1;",
        "@((c: any) => c) class Decorated {}",  # (judged by the TypeScript compiler)
        "namespace N { export const x = 1 }",
        "interface Point { x: number; y: number }",
        "type Id = string | number;",
        "const f = (a: number): number => a * 2;",
        "for (const c of 'abc') console.log(c);",
        "",
    ]
    incomplete_code_samples = [
        "function f(a: number): number {",
        "class C {\n  @dec m() {}",
        "namespace N {",
        "if (true) {\n  console.log(1);",
        "const s = `a template",
        "let xs = [1, 2,",
        "const total = 1 +",
        "const g = (a: number) =>",
        "/* a comment",
    ]
    invalid_code_samples = [
        "let = ;",
        "const x: number = );",
        "x)",
        "}",
        "1 +* 2",
    ]
    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": 'const word: string = "kernel";\nword.toUpperCase()', "result": '"KERNEL"'},
        {"code": "const point = { x: 1, ys: [1, 2] } as const;\npoint",
         "result": "{ x: 1, ys: [ 1, 2 ] }"},
        {"code": "html`<b>bold</b>`", "mime": "text/html", "result": "<b>bold</b>"},
        {"code": "md`# title`", "mime": "text/markdown"},
        {"code": "Deno.jupyter.svg`<svg xmlns='http://www.w3.org/2000/svg'/>`",
         "mime": "image/svg+xml"},
        {"code": "const shown = {\n  [Symbol.for('Jupyter.display')]() {\n"
                 "    return { 'application/json': { n: 1 } };\n  },\n};\nshown",
         "mime": "application/json"},
    ]
    code_display_data = [
        {"code": "display(html`<i>shown</i>`);", "mime": "text/html"},
        {"code": "display({ 'text/plain': 'raw', 'text/latex': '$x$' }, { raw: true });",
         "mime": "text/latex"},
        {"code": "Deno.jupyter.display(svg`<svg xmlns='http://www.w3.org/2000/svg'/>`);",
         "mime": "image/svg+xml"},
        {"code": f"display(image({PNG}));", "mime": "image/png"},
        {"code": "await Deno.jupyter.broadcast('display_data', "
                 "{ data: { 'text/html': '<p>p</p>' }, metadata: {}, transient: {} });",
         "mime": "text/html"},
    ]
    code_history_pattern = "6 * 7"
    supported_history_operations = ("tail", "range", "search")
    code_inspect_sample = "Deno.readTextFile"
    code_clear_output = 'console.log("soon gone");\nconsole.clear();'
    # Not a suite attribute: (code, the prompt the frontend sees) for test_input.
    code_input = [
        ('const answer: string | null = prompt("name?");\nconsole.log("got", answer);', "name? "),
        ('console.log("got", await input("name: "));', "name: "),
    ]

    def test_input(self) -> None:
        """input_request with the prompt on stdin; the input_reply's value reaches the code."""
        for code, prompt in self.code_input:
            with self.subTest(code=code):
                self.flush_channels()
                msg_id = self.kc.execute(code, allow_stdin=True)
                request = self.kc.get_stdin_msg(timeout=TIMEOUT)
                self.kc.input("kernelkit")  # first: a failed assertion must not leave it waiting
                # Not jupyter_kernel_test's validate_message: its schema wants a number for
                # `password`, which the spec makes a boolean.
                self.assertEqual(request["msg_type"], "input_request")
                self.assertEqual(request["parent_header"]["msg_id"], msg_id)
                self.assertEqual(request["content"], {"prompt": prompt, "password": False})
                reply = self.get_non_kernel_info_reply(timeout=TIMEOUT)
                validate_message(reply, "execute_reply", msg_id)
                assert reply is not None
                self.assertEqual(reply["content"]["status"], "ok")
                self.assertIn("got kernelkit", self.stdout_until_idle(msg_id))

    def test_input_not_allowed(self) -> None:
        """allow_stdin false: no input_request, an error the code can see."""
        self.flush_channels()
        msg_id = self.kc.execute('prompt("never asked")', allow_stdin=False)
        reply = self.get_non_kernel_info_reply(timeout=TIMEOUT)
        validate_message(reply, "execute_reply", msg_id)
        assert reply is not None
        self.assertEqual(reply["content"]["status"], "error")
        self.assertEqual(reply["content"]["ename"], "StdinNotImplementedError")
        with pytest.raises(queue.Empty):
            self.kc.get_stdin_msg(timeout=0.5)

    def stdout_until_idle(self, msg_id: str) -> str:
        return stdout_until_idle(self.kc, msg_id, TIMEOUT, check=validate_message)


def test_a_parenthesized_last_expression_is_the_result(start_kernel: Any) -> None:
    """`({ a: 1 })` is how a REPL user writes an object literal as a cell's value."""
    install()
    k = start_kernel(NAME)
    for code, shown in (("({ a: 1, b: [1, 2] } as const)", "{ a: 1, b: [ 1, 2 ] }"),
                        ("(1);", "1"), ("((2) + (3))", "5")):
        reply, msgs = k.execute(code)
        assert reply["content"]["status"] == "ok", reply["content"]
        (result,) = [m["content"]["data"] for m in msgs if m["msg_type"] == "execute_result"]
        assert result["text/plain"] == shown


class TypeScriptIopubWelcomeTests(jkt.IopubWelcomeTests):
    kernel_name = NAME
    support_iopub_welcome = True

    @classmethod
    def setUpClass(cls) -> None:
        install()
        super().setUpClass()


# -- kernelkit check --------------------------------------------------------------------------

# Checks that may skip, and why that is not a gap in the kernel. Nothing else may skip.
SKIP_REASONS: dict[str, str] = {}
# Gaps of the kernel outside introspect.ts, each a strict xfail with what is missing.
GAPS: dict[str, str] = {}
CHECKS = ["lifecycle.start", *(c.name for c in runner.all_checks())]


def run_check(name: str, *args: str) -> dict[str, dict[str, Any]]:
    install()
    done = kernelkit("check", name, "--samples", str(SAMPLES), "--json", "--timeout", "20",
                     *args, timeout=600)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["samples"] == str(SAMPLES)
    return {r["check"]: r for r in report["results"]}


@pytest.fixture(scope="module")
def check_results() -> dict[str, dict[str, Any]]:
    return run_check(NAME)


def test_kernelkit_check_ran_every_check(check_results: dict[str, dict[str, Any]]) -> None:
    assert sorted(check_results) == sorted(CHECKS)


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=GAPS[n])) if n in GAPS else n
    for n in CHECKS
])
def test_kernelkit_check(check_results: dict[str, dict[str, Any]], name: str) -> None:
    result = check_results[name]
    if result["result"] == "skip" and name in SKIP_REASONS:
        assert SKIP_REASONS[name] in result["reason"]
        return
    assert result["result"] == "pass", f"{name}: {result['result']}: {result['reason']}"


def test_kernelkit_check_interrupts_in_message_mode() -> None:
    """The interrupt group with ``--interrupt-mode message``: interrupt_request on control."""
    results = run_check(NAME_MESSAGE, "--only", "interrupt")
    assert {n: r["result"] for n, r in results.items() if n.startswith("interrupt.")} == {
        "interrupt.running": "pass", "interrupt.idle": "pass"}
    assert "message interrupt" in results["interrupt.running"]["reason"]
