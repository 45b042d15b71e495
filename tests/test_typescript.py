"""The TypeScript kernel on Deno (src/kernelkit/typescript): real Deno behind the real host
(``kernelkit bridge``), installed as kernelspecs and driven by jupyter_client.

A module fixture runs ``prepare()`` for real (``deno bundle`` of the pinned npm parsers,
fetched from the npm registry or Deno's cache) into a cache directory of its own, then
installs the kernel twice: with no permissions at all, and with read access to a scratch
directory. The deno unit tests of the pieces (tests/typescript/) run from here too.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import DENO, ROOT, kernelkit
from kernelkit import typescript

Msg = dict[str, Any]
SPECS = {"kk-typescript": [], "kk-typescript-read": ["--allow-read={scratch}"]}
# The Jupyter side's interrupt: a SIGINT to the host, or an interrupt_request message.
MODES = {"kk-typescript": "signal", "kk-typescript-read": "message"}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("ts-scratch")
    (d / "helper.ts").write_text("export const triple = (x: number): number => x * 3;\n")
    return d


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("ts-cache")
    typescript.prepare(DENO, cache)
    assert typescript.is_prepared(cache)
    typescript.prepare(DENO, cache)  # idempotent: a second call finds it done
    return cache


@pytest.fixture(scope="module")
def installed(prepared: Path, scratch: Path) -> list[str]:
    prefix = Path(os.environ["JUPYTER_PATH"]).parents[1]  # conftest's test prefix
    for name, flags in SPECS.items():
        argv = typescript.backend_argv(DENO, [f.format(scratch=scratch) for f in flags], prepared)
        done = kernelkit("install", "--name", name, "--prefix", str(prefix),
                         "--interrupt-mode", MODES[name], "--", *argv)
        assert done.returncode == 0, done.stderr
    return list(SPECS)


@pytest.fixture
def k(installed: list[str], start_kernel: Any) -> Any:
    return start_kernel("kk-typescript")


def results(msgs: list[Msg]) -> list[Any]:
    return [m["content"]["data"] for m in msgs if m["msg_type"] == "execute_result"]


def plain(k: Any, code: str) -> str:
    """The text/plain result of a cell that must succeed."""
    reply, msgs = k.execute(code)
    assert reply["content"]["status"] == "ok", reply["content"]
    (data,) = results(msgs)
    return str(data["text/plain"])


def error_of(k: Any, code: str, **kw: Any) -> Msg:
    reply, msgs = k.execute(code, **kw)
    content = reply["content"]
    assert content["status"] == "error", content
    (published,) = [m["content"] for m in msgs if m["msg_type"] == "error"]
    assert published["traceback"] == content["traceback"]
    return content  # type: ignore[no-any-return]


def streams(msgs: list[Msg], name: str = "stdout") -> str:
    return "".join(m["content"]["text"] for m in msgs
                   if m["msg_type"] == "stream" and m["content"]["name"] == name)


# -- the pieces, with deno test ----------------------------------------------------------------


def test_deno_unit_tests_pass(prepared: Path) -> None:
    env = {**os.environ, "KK_TS_DEPS": str(typescript.backend_dir(prepared) / "deps.js"),
           "KK_TS_TYPESCRIPT": str(typescript.backend_dir(prepared) / "typescript.js"),
           "NO_COLOR": "1"}
    done = subprocess.run([DENO, "test", "--allow-read",
                           "--allow-env=KK_TS_DEPS,KK_TS_TYPESCRIPT,KK_TS_DEBUG",
                           "tests/typescript/"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert " passed | 0 failed" in done.stdout


def test_the_backend_downloads_nothing_at_start(prepared: Path, tmp_path: Path) -> None:
    """With an empty DENO_DIR and --cached-only the kernel starts and runs TypeScript."""
    argv = typescript.backend_argv(DENO, ["--cached-only"], prepared)
    env = {**os.environ, "DENO_DIR": str(tmp_path / "empty-deno-dir")}
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    lines: queue.Queue[Msg] = queue.Queue()
    assert proc.stdout is not None and proc.stdin is not None

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(json.loads(line))

    threading.Thread(target=read, daemon=True).start()

    def call(rid: int, method: str, params: Msg) -> list[Msg]:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method,
                                     "params": params}).encode() + b"\n")
        proc.stdin.flush()
        got = []
        while True:
            msg = lines.get(timeout=30)
            got.append(msg)
            if msg.get("id") == rid and "method" not in msg:
                return got

    try:
        info = call(1, "initialize", {"protocol_version": "1.2"})[-1]["result"]
        assert info["language_info"]["name"] == "typescript"
        assert "--cached-only" in info["banner"]
        got = call(2, "execute", {"code": "const n: number = 6 * 7\nn", "silent": False})
        assert got[-1]["result"]["status"] == "ok", got
        assert [m["params"]["data"]["text/plain"] for m in got
                if m.get("method") == "execute_result"] == ["42"]
    finally:
        proc.kill()
        proc.wait(10)
        for f in (proc.stdin, proc.stdout, proc.stderr):
            f.close()


def test_backend_argv_without_prepare_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="prepare"):
        typescript.backend_argv(DENO, [], tmp_path)


# -- the language ------------------------------------------------------------------------------


def test_kernel_info_names_typescript_and_the_permissions(installed: list[str],
                                                          start_kernel: Any) -> None:
    k = start_kernel("kk-typescript-read")
    k.kc.kernel_info()
    info = k.kc.get_shell_msg(timeout=20)["content"]
    assert info["language_info"]["name"] == "typescript"
    assert info["implementation"] == "kernelkit-typescript"
    assert "--allow-read=" in info["banner"]


def test_declarations_persist_and_may_be_redeclared(k: Any) -> None:
    k.execute("const x: number = 1\nlet y = x + 1")
    k.execute("function f(a: number): number { return a * 10 }\n"
              "class P { constructor(public n: number) {} }")
    assert plain(k, "[x, y, f(2), new P(3).n]") == "[ 1, 2, 20, 3 ]"
    k.execute("const x = 'again'\nfunction f(): string { return 'new f' }")
    assert plain(k, "[x, f()]") == '[ "again", "new f" ]'


def test_typescript_syntax_is_stripped(k: Any) -> None:
    code = ("interface Point { x: number; y: number }\ntype Id = string\n"
            "enum Color { Red, Green }\nconst p: Point = { x: 1, y: 2 } as Point\n"
            "function first<T>(xs: T[]): T | undefined { return xs[0] }\n"
            "[first<number>([p.x, p.y]), Color.Green, 'a' satisfies Id]")
    assert plain(k, code) == '[ 1, 1, "a" ]'


def test_decorators_and_namespaces(k: Any) -> None:
    # sucrase cannot strip these (it would drop the namespace without a word, and V8 does
    # not run decorators): the TypeScript compiler, bundled at install time, compiles them.
    code = ("namespace Geo {\n  export const pi: number = 3\n"
            "  export function area(r: number): number { return pi * r * r }\n}\n"
            "function logged(f: any, ctx: ClassMethodDecoratorContext) {\n"
            "  return function (this: any, ...a: any[]) {\n"
            "    console.log(`calling ${String(ctx.name)}`)\n    return f.apply(this, a)\n  }\n}\n"
            "class Circle {\n  constructor(public r: number) {}\n"
            "  @logged area(): number { return Geo.area(this.r) }\n}\n"
            "new Circle(2).area()")
    reply, msgs = k.execute(code)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert streams(msgs) == "calling area\n"
    assert [r["text/plain"] for r in results(msgs)] == ["12"]
    # Both persist; a decorated method's error points at the cell's own line.
    assert plain(k, "[Geo.pi, new Circle(1).area()]") == "[ 3, 3 ]"
    err = error_of(k, "function broken(f: any, ctx: any) {\n  return () => {\n"
                      "    throw new RangeError('from the decorator')\n  }\n}\n"
                      "class Box {\n  @broken open() {}\n}\nnew Box().open()")
    trace = "\n".join(err["traceback"])
    assert err["ename"] == "RangeError"
    assert re.search(r"<cell \d+>:3:", trace) and re.search(r"<cell \d+>:9:", trace), trace
    err = error_of(k, "namespace Bad {\n  export const = 1\n}")
    assert err["ename"] == "SyntaxError"
    assert re.search(r"<cell \d+>:2:", "\n".join(err["traceback"]))


def test_top_level_await_and_the_last_expression(k: Any) -> None:
    assert plain(k, "const v = await Promise.resolve(41)\nv + 1") == "42"
    reply, msgs = k.execute("let nothing = 5")
    assert reply["content"]["status"] == "ok" and results(msgs) == []
    assert plain(k, "const out: number[] = []\n"
                    "const gen = async function* () { yield 1; yield 2 }\n"
                    "for await (const n of gen()) out.push(n)\n"
                    "out") == "[ 1, 2 ]"


def test_npm_import(k: Any) -> None:
    # prepare() fetched this very package into Deno's cache: no download here.
    assert plain(k, 'import { parse } from "npm:acorn@8.19.0"\n'
                    'parse("1 + 1", { ecmaVersion: 2020 }).body.length') == "1"
    assert plain(k, "typeof parse") == '"function"'  # the import persists


def test_relative_imports_follow_the_permissions(installed: list[str], scratch: Path,
                                                 start_kernel: Any) -> None:
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="kk-typescript-read", startup_timeout=30,
                              cwd=str(scratch))
    try:
        msg_id = kc.execute('import { triple } from "./helper.ts"\ntriple(2)')
        reply = kc.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    # Without --allow-read the same file is refused, by Deno, with the flag to grant.
    k = start_kernel("kk-typescript")
    err = error_of(k, f'import {{ triple }} from "{scratch / "helper.ts"}"')
    assert "--allow-read" in err["evalue"]


def test_errors_point_at_the_cells_own_lines(k: Any) -> None:
    k.execute("function inner(s: string): never {\n  throw new TypeError(`bad ${s}`)\n}")
    reply, _ = k.execute("let a = 1\n\ninner('x')")
    err = reply["content"]
    assert err["ename"] == "TypeError" and err["evalue"] == "bad x"
    count = reply["content"]["execution_count"]
    tb = "\n".join(err["traceback"])
    assert f"at inner (<cell {count - 1}>:2:9)" in tb  # defined in the cell before
    assert f"<cell {count}>:3:1" in tb
    for ours in ("blob:", "kernelkit", "supervisor", "runtime", "__kk$"):
        assert ours not in tb, tb


def test_syntax_errors_show_the_line_and_a_caret(k: Any) -> None:
    err = error_of(k, "const ok = 1\nlet x y = 2")
    assert err["ename"] == "SyntaxError"
    assert err["traceback"][1:3] == ["  let x y = 2", "        ^"]


# -- rich display -------------------------------------------------------------------------------

PNG = bytes([137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13])


def test_display_and_tagged_templates(k: Any) -> None:
    reply, msgs = k.execute(
        "display(html`<b>${1 + 1}</b>`)\ndisplay(md`# title`)\ndisplay(svg`<svg></svg>`)\n"
        f"display(image(new Uint8Array({list(PNG)})))\n"
        "display({ a: 1 })\nconsole.log('between')\n"
        "Deno.jupyter.html`<i>result</i>`")
    assert reply["content"]["status"] == "ok", reply["content"]
    shown = [m["content"]["data"] for m in msgs if m["msg_type"] == "display_data"]
    assert shown == [{"text/html": "<b>2</b>"}, {"text/markdown": "# title"},
                     {"image/svg+xml": "<svg></svg>"},
                     {"image/png": base64.b64encode(PNG).decode()},
                     {"text/plain": "{ a: 1 }"}]
    assert streams(msgs) == "between\n"
    assert results(msgs) == [{"text/html": "<i>result</i>"}]
    kinds = [m["msg_type"] for m in msgs if m["msg_type"] in ("display_data", "stream")]
    assert kinds == ["display_data"] * 5 + ["stream"]  # in the order made


def test_deno_jupyter_namespace_as_in_deno_jupyter(k: Any) -> None:
    reply, msgs = k.execute(
        "await Deno.jupyter.display({ 'text/plain': 'raw', 'text/html': '<p>raw</p>' },\n"
        "                           { raw: true })\n"
        "await Deno.jupyter.broadcast('display_data',\n"
        "  { data: { 'text/plain': 'sent' }, metadata: {}, transient: {} })\n"
        "const own = { [Symbol.for('Jupyter.display')]() {\n"
        "  return { 'text/html': '<em>own</em>' } } }\n"
        "await Deno.jupyter.display(own)\n"
        "const bundle = await Deno.jupyter.format(Deno.jupyter.md`**b**`)\n"
        ";[typeof Deno.jupyter.$display, bundle]")
    assert reply["content"]["status"] == "ok", reply["content"]
    shown = [m["content"]["data"] for m in msgs if m["msg_type"] == "display_data"]
    assert shown == [{"text/plain": "raw", "text/html": "<p>raw</p>"}, {"text/plain": "sent"},
                     {"text/html": "<em>own</em>"}]
    assert results(msgs) == [{"text/plain": '[ "symbol", { "text/markdown": "**b**" } ]'}]
    assert results(k.execute("own")[1]) == [{"text/html": "<em>own</em>"}]


def test_dataframe_like_values_are_html_tables(k: Any) -> None:
    (data,) = results(k.execute(
        "const rows = [{ name: 'a', n: 1 }, { name: '<b>', n: 2 }]\n"
        "const df = { schema: { name: 'Utf8', n: 'Int64' },\n"
        "  head: () => ({ toRecords: () => rows }), toRecords: () => rows }\ndf")[1])
    assert data["text/html"].startswith("<table><thead><tr><th>name</th><th>n</th></tr>")
    assert "<td>&lt;b&gt;</td>" in data["text/html"]
    assert data["application/vnd.dataresource+json"]["data"] == [{"name": "a", "n": 1},
                                                                 {"name": "<b>", "n": 2}]


def test_update_display_by_id(k: Any) -> None:
    _, msgs = k.execute("const h = display('one', { display_id: true })")
    (first,) = [m for m in msgs if m["msg_type"] == "display_data"]
    display_id = first["content"]["transient"]["display_id"]
    _, msgs = k.execute("h.update('two')\nawait Deno.jupyter.display('three', "
                        "{ display_id: h.display_id, update: true })")
    updates = [m["content"] for m in msgs if m["msg_type"] == "update_display_data"]
    assert [u["data"] for u in updates] == [{"text/plain": '"two"'}, {"text/plain": '"three"'}]
    assert {u["transient"]["display_id"] for u in updates} == {display_id}


# -- interrupts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", list(SPECS))
def test_interrupting_an_await_keeps_the_session(installed: list[str], start_kernel: Any,
                                                 spec: str) -> None:
    k = start_kernel(spec)
    k.execute("let kept = 7")
    msg_id = k.kc.execute("console.log('started'); await new Promise(r => setTimeout(r, 60000))")
    k.wait_started(msg_id)
    k.km.interrupt_kernel()
    reply = k.reply(msg_id, timeout=20)["content"]
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    assert plain(k, "kept") == "7"


@pytest.mark.parametrize("spec", list(SPECS))
def test_interrupting_a_synchronous_loop_keeps_the_session(installed: list[str],
                                                           start_kernel: Any, spec: str) -> None:
    k = start_kernel(spec)
    k.execute("let kept = 7\nfunction spin(): number { let i = 0; for (;;) { i++ } }")
    msg_id = k.kc.execute("let n = 0\nconsole.log('started')\nwhile (true) { n++ }")
    k.wait_started(msg_id)
    k.km.interrupt_kernel()
    reply = k.reply(msg_id, timeout=20)["content"]
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    # The traceback is where the interrupt hit, the cell's loop (line 3), not the SDK's
    # own frames (the SDK answered it itself before the kernel said answersInterrupts).
    trace = "\n".join(reply["traceback"])
    assert ":3:" in trace and "<cell" in trace and "kernelkit.js" not in trace, trace
    assert plain(k, "[kept, n > 0]") == "[ 7, true ]"
    # A loop in a function from an earlier cell, too.
    msg_id = k.kc.execute("console.log('started'); spin()")
    k.wait_started(msg_id)
    k.km.interrupt_kernel()
    assert k.reply(msg_id, timeout=20)["content"]["ename"] == "KeyboardInterrupt"
    assert plain(k, "kept + 1") == "8"


def test_a_loop_without_checkpoints_restarts_the_session_and_says_so(k: Any) -> None:
    k.execute("let kept = 7")
    msg_id = k.kc.execute("console.log('started'); new Function('while (true) {}')()")
    k.wait_started(msg_id)
    k.km.interrupt_kernel()
    assert k.reply(msg_id, timeout=20)["content"]["ename"] == "KeyboardInterrupt"
    _, msgs = k.execute("typeof kept")
    assert "the TypeScript session was restarted" in streams(msgs, "stderr")
    assert results(msgs) == [{"text/plain": '"undefined"'}]
    assert plain(k, "1 + 1") == "2"  # and the new session works; the notice came once
    _, msgs = k.execute("2")
    assert streams(msgs, "stderr") == ""


# -- output in the right cell -------------------------------------------------------------------


def test_late_timer_output_never_lands_in_the_next_cell(k: Any) -> None:
    reply, first = k.execute("setTimeout(() => console.log('late!'), 300)\n"
                             "Promise.resolve().then(() => console.log('soon'))\n'a'")
    assert reply["content"]["status"] == "ok"
    reply, second = k.execute("await new Promise(r => setTimeout(r, 1000)); console.log('b')")
    assert streams(second) == "b\n"
    assert "late!" not in streams(first) + streams(second)
    assert "soon" in streams(first)  # (a promise job before the reply is the cell's own)
    # It was not lost either: the host logged it (docs/bridge-protocol.md, Output order).


# -- stdin ----------------------------------------------------------------------------------------


def test_prompt_confirm_alert_and_input(k: Any) -> None:
    msg_id = k.kc.execute("const who = prompt('Name?')\nconst sure = confirm('Sure?')\n"
                          "alert('Done')\nconst again = await input('Again? ');\n"
                          "[who, sure, again]", allow_stdin=True)
    prompts = []
    for answer in ("Polly", "y", "", "twice"):
        request = k.kc.stdin_channel.get_msg(timeout=20)
        prompts.append(request["content"]["prompt"])
        k.kc.input(answer)
    assert prompts == ["Name? ", "Sure? [y/N] ", "Done [Enter] ", "Again? "]
    assert k.reply(msg_id)["content"]["status"] == "ok"
    assert results(k.iopub_until_idle(msg_id)) == [{"text/plain": '[ "Polly", true, "twice" ]'}]
    err = error_of(k, "prompt('x')", allow_stdin=False)  # no input allowed: the error says so
    assert "StdinNotImplementedError" in err["ename"] + err["evalue"]


# -- introspection ------------------------------------------------------------------------------


def test_complete_inspect_is_complete_and_history(k: Any) -> None:
    k.execute("/** Say hello to someone. */\nfunction greet(name: string, punct = '!'): string {\n"
              "  return name + punct\n}\nconst kept = { alpha: 1, beta: 2 }")

    def complete(code: str) -> Msg:
        k.kc.complete(code, len(code))
        return k.kc.get_shell_msg(timeout=20)["content"]  # type: ignore[no-any-return]

    got = complete("gre")
    assert "greet" in got["matches"] and got["cursor_start"] == 0
    got = complete("kept.al")
    assert got["matches"] == ["alpha"] and got["cursor_start"] == 5
    assert "display" in complete("Deno.jupyter.di")["matches"]
    assert "node:fs" in complete('import fs from "node:f')["matches"]

    k.kc.inspect("greet(", 3)
    found = k.kc.get_shell_msg(timeout=20)["content"]
    assert found["found"]
    text = found["data"]["text/plain"]
    assert "function greet(name: string, punct = '!'): string" in text
    assert "Say hello to someone." in text

    k.kc.is_complete("function f() {")
    assert k.kc.get_shell_msg(timeout=20)["content"]["status"] == "incomplete"
    k.kc.is_complete("const x: number = 1")
    assert k.kc.get_shell_msg(timeout=20)["content"]["status"] == "complete"

    k.kc.history(hist_access_type="tail", n=1)
    (entry,) = k.kc.get_shell_msg(timeout=20)["content"]["history"]
    assert entry[2].startswith("/** Say hello")


def test_user_expressions(k: Any) -> None:
    k.execute("const base: number = 40")
    reply, _ = k.execute("1", user_expressions={"t": "base + 2", "bad": "nope.x"})
    exprs = reply["content"]["user_expressions"]
    assert exprs["t"] == {"status": "ok", "data": {"text/plain": "42"}, "metadata": {}}
    assert exprs["bad"]["status"] == "error" and exprs["bad"]["ename"] == "ReferenceError"


@pytest.fixture(autouse=True, scope="module")
def _no_stray_backend(prepared: Path) -> Iterator[None]:
    yield
    # Every kernel of this module has been shut down: none of its backends may linger.
    entry = str(typescript.backend_dir(prepared) / "kernel.js")

    def strays() -> list[str]:
        return subprocess.run(["pgrep", "-f", entry], capture_output=True, text=True,
                              check=False).stdout.split()

    # A backend ends a moment after its kernel's shutdown reply: give it 5 s to go.
    deadline = time.monotonic() + 5
    while strays() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert strays() == []


# -- kernelkit install typescript -------------------------------------------------------------


def test_kernelkit_install_typescript(installed: list[str], scratch: Path,
                                      start_kernel: Any) -> None:
    """The command users run: Deno's flags after `typescript` go to the cells; a kernelspec
    under a prefix keeps the fetched parsers under that prefix (readable by its users)."""
    prefix = Path(os.environ["JUPYTER_PATH"]).parents[1]  # conftest's test prefix
    done = kernelkit("install", "typescript", "--name", "kk-typescript-cli", "--prefix",
                     str(prefix), f"--allow-read={scratch}", "--deno", DENO, timeout=600)
    assert done.returncode == 0, done.stderr
    spec = json.loads((prefix / "share/jupyter/kernels/kk-typescript-cli/kernel.json")
                      .read_text())
    assert spec["display_name"] == "TypeScript (Deno, kernelkit)"
    assert spec["language"] == "typescript"
    assert f"--allow-read={scratch}" in spec["argv"]
    entry = next(a for a in spec["argv"] if a.endswith("kernel.js"))
    assert Path(entry).is_relative_to(prefix / "share" / "kernelkit")
    k = start_kernel("kk-typescript-cli")
    assert plain(k, "const n: number = 20; n + 1") == "21"
    assert plain(k, f"Deno.readTextFileSync({json.dumps(str(scratch / 'helper.ts'))})"
                    ".length > 0") == "true"


def test_deno_flags_are_only_for_typescript() -> None:
    done = kernelkit("install", "echo", "--allow-net")
    assert done.returncode == 2 and "unrecognized arguments: --allow-net" in done.stderr
    done = kernelkit("install", "typescript", "--deno", "/no/such/deno")
    assert done.returncode != 0 and "no such program" in done.stderr
