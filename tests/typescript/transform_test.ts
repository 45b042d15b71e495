// Unit tests of the TypeScript kernel's cell compiler (src/kernelkit/typescript/transform.ts),
// with the real sucrase and acorn from the bundle prepare() made (KK_TS_DEPS names it).
// Compiled cells run here, in this isolate, against stand-ins for the worker's hooks.
//   KK_TS_DEPS=…/deps.js deno test --allow-read --allow-env=KK_TS_DEPS tests/typescript/
import { assert, assertEquals, assertMatch, assertThrows } from "./asserts.ts";
import { cellPosition, CellSyntaxError, compileCell, needsTypeScript, patternNames } from "../../src/kernelkit/typescript/transform.ts";

import { deps, fullDeps } from "./deps.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const flag = new Int32Array(1);
g.__kk$f = flag;
g.__kk$g = globalThis;
g.__kk$i = () => {
  throw Object.assign(new Error("interrupted"), { name: "KeyboardInterrupt" });
};
g.__kk$a = (v: unknown) => v;
g.__kk$import = async (spec: string, _options: unknown, names: string[]) => {
  const mod = await import(spec);
  for (const n of names) if (!(n in mod)) throw new SyntaxError(`no export named '${n}'`);
  return mod;
};
g.__kk$meta = { url: "file:///cells/" };

let n = 0;
/** Compile and run a cell as the worker does; its result (boxed: a promise stays one). */
async function result(code: string, with_ = deps): Promise<{ value: unknown } | undefined> {
  const c = compileCell(code, ++n, with_);
  for (const name of c.declared) if (!(name in g)) g[name] = undefined;
  const ret = await (0, eval)(c.script);
  return c.hasResult ? ret : undefined;
}

async function run(code: string, with_ = deps): Promise<unknown> {
  return (await result(code, with_))?.value;
}

Deno.test("declarations persist across cells and may be declared again", async () => {
  await run("const t1: number = 1\nlet t2 = t1 + 1");
  await run("function t3(a: number): number { return a * 10 }\nclass T4 { constructor(public n: number) {} }");
  assertEquals(await run("[t1, t2, t3(2), new T4(3).n]"), [1, 2, 20, 3]);
  await run("const t1 = 'again'; class T4 { m() { return 'new' } }");
  assertEquals(await run("[t1, new T4().m()]"), ["again", "new"]);
});

Deno.test("destructuring, several declarators, var in blocks and for heads persist", async () => {
  await run("const { d1, d2: [d3, ...d4] } = { d1: 1, d2: [2, 3, 4] }, d5 = 5\nlet d6;");
  assertEquals(await run("[d1, d3, d4, d5, d6]"), [1, 2, [3, 4], 5, undefined]);
  await run("if (true) { var d7 = 7 }\nfor (var d8 = 0; d8 < 3; d8++) {}");
  assertEquals(await run("[d7, d8]"), [7, 3]);
});

Deno.test("a declaration after a line without a semicolon does not call it", async () => {
  assertEquals(await run("const a1 = 1\nconst a2 = (a1)\na2"), 1);
  assertEquals(await run("let a3 = [1]\nconst [a4] = a3\na4"), 1);
});

Deno.test("the last expression is the result; a declaration has none", async () => {
  assertEquals(await run("1 + 1"), 2);
  assertEquals(await run("const r1 = 5"), undefined);
  assertEquals(await run("const r2 = 5;\nr2 * 2;"), 10);
  // A promise is the value, not awaited for you (top-level await is there for that).
  assert((await result("Promise.resolve(3)"))?.value instanceof Promise);
  assertEquals(await run("await Promise.resolve(3)"), 3);
});

Deno.test("types, interfaces, enums and generics are stripped; lines are kept", async () => {
  const code = "interface P {\n  a: string\n}\ntype Q = number\nenum E { A, B }\nconst e1 = <Q>(E.B as number)\nfunction id<T>(v: T): T { return v! }\nid(e1) satisfies Q";
  assertEquals(await run(code), 1);
  const c = compileCell(code, 99, deps);
  assertEquals(c.script.split("\n").length, code.split("\n").length + 3); // header, footer, sourceURL
});

Deno.test("imports become assignments from the runtime's import, with names checked", async () => {
  const c = compileCell('import def, { a as b, "c-d" as e } from "./m.ts"\nimport * as ns from "node:path"', 1, deps);
  assertMatch(c.script, /__kk\$import\("\.\/m\.ts", undefined, \["default","a","c-d"\]\)/);
  assertEquals(c.declared.sort(), ["b", "def", "e", "ns"]);
  assertEquals(await run('import * as p1 from "node:path"\nimport { join as j1 } from "node:path"\nj1("a", "b") === p1.join("a", "b")'), true);
  let error: unknown;
  try {
    await run('import { noSuchThing } from "node:path"');
  } catch (err) {
    error = err;
  }
  assert(error instanceof SyntaxError, String(error));
});

Deno.test("every loop checks the interrupt flag; awaits check the run", () => {
  for (const loop of ["while (true) {}", "for (;;) x()", "do {} while (true)", "for (const k in o) {}", "for (const v of xs) y()"]) {
    const c = compileCell(loop, 1, deps);
    assert(c.script.includes("if(__kk$f[0]!==0)__kk$i();"), `${loop} → ${c.script}`);
  }
  const c = compileCell("async function f() { await g() }\nawait f()", 1, deps);
  assertEquals(c.script.match(/__kk\$a\(await/g)?.length, 2);
});

Deno.test("a set flag stops a running loop (also one in a function from an earlier cell)", async () => {
  await run("function spin() { let i = 0; while (true) { i++; if (i === 1000) __kk$f[0] = 1 } }");
  let error: Error | undefined;
  try {
    await run("spin()");
  } catch (err) {
    error = err as Error;
  } finally {
    flag[0] = 0;
  }
  assertEquals(error?.name, "KeyboardInterrupt");
});

Deno.test("syntax errors name the cell's line and column", () => {
  const err = assertThrows(() => compileCell("const ok = 1\nlet x y", 1, deps), CellSyntaxError) as CellSyntaxError;
  assertEquals(err.line, 2);
  assertEquals(err.column, 6);
  assertThrows(() => compileCell("function f(a: number {", 1, deps), CellSyntaxError);
});

/** Run a compiled cell that throws: the stack of what it threw. */
async function stackOf(c: ReturnType<typeof compileCell>): Promise<string> {
  try {
    for (const name of c.declared) if (!(name in g)) g[name] = undefined;
    await (0, eval)(c.script);
  } catch (err) {
    return (err as Error).stack ?? "";
  }
  throw new Error("the cell did not throw");
}

Deno.test("positions of the script map back to the cell's line and column (types removed)", async () => {
  const code = "let q1: number = 1\nfunction bad(a: { x: number }): number {\n  return (null as any).x + a.x\n}\nbad({ x: 1 })";
  const c = compileCell(code, "map", deps);
  const stack = await stackOf(c);
  const frame = /<cell-map>, <anonymous>:(\d+):(\d+)/.exec(stack);
  assert(frame, stack);
  const pos = cellPosition(c.map, Number(frame[1]), Number(frame[2]));
  assertEquals(pos.line, 3);
  assertEquals(code.split("\n")[2][pos.column - 1], "x"); // where V8 points: the property read
});

Deno.test("declarations are described with their TypeScript head and doc comment", () => {
  const c = compileCell("/** Say hello. */\nfunction greet(name: string, punct = \"!\"): string {\n  return name\n}\nconst n1: number = 3", 7, deps);
  assertEquals(c.declarations.greet.signature, 'function greet(name: string, punct = "!"): string');
  assertEquals(c.declarations.greet.doc, "Say hello.");
  assertEquals(c.declarations.greet.line, 2);
  assertEquals(c.declarations.n1.kind, "const");
});

Deno.test("patternNames finds every bound name", () => {
  const ast = deps.parse("const {a, b: [c, {d}], ...e} = o", { ecmaVersion: "latest" });
  assertEquals(patternNames(ast.body[0].declarations[0].id), ["a", "c", "d", "e"]);
});

// -- cells that need the TypeScript compiler ------------------------------------------------

Deno.test("decorators and namespaces need the TypeScript compiler; other cells do not", () => {
  for (const code of ["@sealed class A {}", "class A {\n  @log m() {}\n}", "namespace N { export const x = 1 }",
    "export namespace N.M {\n}", "module Legacy { }"]) assert(needsTypeScript(code), code);
  for (const code of ["const email = 'a@b.com'", "let namespace = 1; namespace + 1", "const module = {}",
    "x = y @ z".replace(" @ ", "@"), "class A { m() {} }"]) assert(!needsTypeScript(code), code);
});

Deno.test("namespaces with values are compiled, not dropped, and persist", async () => {
  assertEquals(await run("namespace Ns1 {\n  export const pi: number = 3\n  export function area(r: number) { return pi * r * r }\n}\nNs1.area(2)", fullDeps), 12);
  assertEquals(await run("namespace Ns1 { export const e = 2 }\n[Ns1.e, Ns1.pi]", fullDeps), [2, 3]);
});

Deno.test("TC39 decorators run, as in deno jupyter", async () => {
  const seen: string[] = [];
  g.seen = seen;
  assertEquals(await run(
    "function logged(v: any, ctx: ClassMethodDecoratorContext) {\n" +
      "  return function (this: any, ...a: any[]) { seen.push(String(ctx.name)); return v.apply(this, a) }\n}\n" +
      "@((c: any) => { seen.push('class'); return c }) class Dec1 {\n  @logged twice(n: number): number { return 2 * n }\n}\n" +
      "new Dec1().twice(21)", fullDeps), 42);
  assertEquals(seen, ["class", "twice"]);
  assertEquals(await run("new Dec1().twice(1)", fullDeps), 2); // the class persists
});

Deno.test("with the compiler, positions still map to the cell's own lines", async () => {
  const code = "function boom(v: any, ctx: any) {\n  return function () {\n    throw new Error('x')\n  }\n}\n" +
    "class Dec2 {\n  @boom m() {}\n}\nnew Dec2().m()";
  const c = compileCell(code, "ts-map", fullDeps);
  assert(c.map.moved);
  const stack = await stackOf(c);
  const frames = [...stack.matchAll(/<cell-ts-map>, <anonymous>:(\d+):(\d+)/g)];
  assert(frames.length >= 2, stack);
  const throwAt = cellPosition(c.map, Number(frames[0][1]), Number(frames[0][2]));
  assertEquals(throwAt.line, 3);
  assertEquals(code.split("\n")[2].slice(throwAt.column - 1, throwAt.column + 4), "new E"); // (where V8 points)
  assertEquals(cellPosition(c.map, Number(frames[1][1]), Number(frames[1][2])).line, 9);
});

Deno.test("the compiler's syntax errors name the cell's line and column", () => {
  const err = assertThrows(() => compileCell("namespace Bad {\n  export const = 1\n}", 1, fullDeps), CellSyntaxError) as CellSyntaxError;
  assertEquals([err.line, err.column], [2, 15]);
  assertMatch(err.message, /declaration expected/i);
});

Deno.test("a cell is wrapped in an async function only when it awaits at its top level", async () => {
  const wrapper = (code: string) => compileCell(code, "w", deps).script.split("\n")[0].replace(/__kk\$g\..*$/, "");
  for (const code of ["1 + 1", "const w1 = async () => await 1", "async function w2() { for await (const x of []) {} }",
    "class W3 { async m() { await 0 } }", "const w4 = import('node:path')"]) {
    assertEquals(wrapper(code), "(() => {", code);
  }
  for (const code of ["await 1", "if (true) { await 1 }", "for await (const x of []) {}",
    'import { join } from "node:path"', "const w5 = [await 1]"]) {
    assertEquals(wrapper(code), "(async () => {", code);
  }
  // Both kinds run as cells: a plain one's value and error, and an async one's.
  assertEquals(await run("const w6 = 6\nw6 * 7"), 42);
  assertEquals(await run("const w7 = await Promise.resolve(7)\nw7 * 6"), 42);
  let thrown: unknown;
  try {
    await run("null.x");
  } catch (err) {
    thrown = err;
  }
  assert(thrown instanceof TypeError);
});
