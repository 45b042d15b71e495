// Unit tests of the display protocol and console formatting (display.ts, runtime.ts), and of
// the text-level introspection (introspect.ts).
import { assert, assertEquals } from "./asserts.ts";
import { base64, displayable, formatValue, imageDisplayable, isJpg, isPng, taggedTemplate } from "../../src/kernelkit/typescript/display.ts";
import { formatArgs, formatTable, memberNames } from "../../src/kernelkit/typescript/runtime.ts";
import { completionContext, historyReply, isComplete, nameAt, toCodePoints, toUtf16 } from "../../src/kernelkit/typescript/introspect.ts";
import { deps } from "./deps.ts";

const PNG = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10, 0, 0]);

Deno.test("Symbol.for('Jupyter.display') gives the bundle, also from a promise", async () => {
  const own = { [Symbol.for("Jupyter.display")]: () => ({ "text/html": "<b>own</b>" }) };
  assertEquals(formatValue(own), { "text/html": "<b>own</b>" });
  const later = { [Symbol.for("Jupyter.display")]: () => Promise.resolve({ "text/markdown": "*x*" }) };
  assertEquals(await formatValue(later), { "text/markdown": "*x*" });
  let error = "";
  try {
    formatValue({ [Symbol.for("Jupyter.display")]: () => 42 });
  } catch (err) {
    error = String(err);
  }
  assert(error.includes("MIME bundle"), error);
});

Deno.test("tagged templates, images and plain values", () => {
  assertEquals(formatValue(taggedTemplate("text/html")`<i>${1 + 1}</i>${undefined}`), { "text/html": "<i>2</i>" });
  assert(isPng(PNG) && !isJpg(PNG));
  assertEquals(formatValue(imageDisplayable(PNG)), { "image/png": base64(PNG) });
  assertEquals((formatValue(PNG) as Record<string, unknown>)["image/png"], base64(PNG));
  let error = "";
  try {
    imageDisplayable(new Uint8Array([1, 2, 3]));
  } catch (err) {
    error = String(err);
  }
  assert(error.includes("PNG or JPEG"), error);
  assertEquals(formatValue("hi"), { "text/plain": '"hi"' });
  assertEquals(formatValue({ a: [1, 2] }), { "text/plain": "{ a: [ 1, 2 ] }" });
  assertEquals(formatValue(displayable({ "text/plain": "raw" })), { "text/plain": "raw" });
});

Deno.test("a DataFrame-like value is an HTML table and a data resource", () => {
  const rows = [{ a: 1, b: "<x>" }, { a: 2, b: "y" }];
  const df = {
    schema: { a: { toJSON: () => ({ DataType: "Int64" }) }, b: { toJSON: () => ({ DataType: "Utf8" }) } },
    head: () => ({ toRecords: () => rows }),
    toRecords: () => rows,
    toString: () => "shape: (2, 2)",
  };
  // deno-lint-ignore no-explicit-any
  const bundle = formatValue(df) as Record<string, any>;
  assert(String(bundle["text/html"]).startsWith("<table><thead><tr><th>a</th><th>b</th>"));
  assert(String(bundle["text/html"]).includes("<td>&lt;x&gt;</td>"));
  assertEquals(bundle["application/vnd.dataresource+json"].schema.fields, [{ name: "a", type: "integer" }, { name: "b", type: "string" }]);
  assertEquals(bundle["text/plain"], "shape: (2, 2)");
});

Deno.test("console formatting: printf specifiers, then inspected values", () => {
  assertEquals(formatArgs(["%s is %d years and %o", "Ann", 42.9, { x: 1 }, "extra"]), "Ann is 42.9 years and { x: 1 } extra");
  assertEquals(formatArgs(["%i%%", 3.7]), "3%");
  assertEquals(formatArgs(["%c styled", "color: red"]), " styled");
  assertEquals(formatArgs(["a", 1, [2], null]), "a 1 [ 2 ] null");
  const table = formatTable([{ a: 1 }, { a: 2, b: "x" }]).split("\n");
  assertEquals(table[1], "│ (idx) │ a │ b │");
  assertEquals(table[4], "│ 1     │ 2 │ x │");
});

Deno.test("member names follow the prototype chain and say what they are", () => {
  class K {
    m() {}
  }
  const names = new Map(memberNames(Object.assign(new K(), { v: 1, o: {} })));
  assertEquals([names.get("v"), names.get("o"), names.get("m"), names.get("toString")], ["instance", "instance", "function", "function"]);
  assert(!names.has("0"));
});

Deno.test("completion context: members, globals, import specifiers", () => {
  assertEquals(completionContext("foo.bar.ba"), { kind: "member", path: ["foo", "bar"], prefix: "ba" });
  assertEquals(completionContext("x = foo?.b"), { kind: "member", path: ["foo"], prefix: "b" });
  assertEquals(completionContext("let q = wor"), { kind: "global", prefix: "wor" });
  assertEquals(completionContext('import { a } from "npm:'), { kind: "specifier", prefix: "npm:" });
  assertEquals(completionContext('await import("./'), { kind: "specifier", prefix: "./" });
  assertEquals(completionContext("1.5"), { kind: "global", prefix: "" });
});

Deno.test("the name under the cursor, or the function whose call the cursor is in", () => {
  assertEquals(nameAt("Deno.inspect(x)", 7), ["Deno", "inspect"]);
  assertEquals(nameAt("greet(1, ", 9), ["greet"]);
  assertEquals(nameAt("  ", 1), null);
});

Deno.test("code points and UTF-16 offsets", () => {
  const s = "😀ab";
  assertEquals(toUtf16(s, 2), 3);
  assertEquals(toCodePoints(s, 3), 2);
});

Deno.test("is_complete: open blocks and strings are incomplete, bad syntax invalid", () => {
  assertEquals(isComplete("function f() {", deps), { status: "incomplete", indent: "  " });
  assertEquals(isComplete("const s = `a", deps).status, "incomplete");
  assertEquals(isComplete("foo(1,", deps).status, "incomplete");
  assertEquals(isComplete("let x: number = 1", deps), { status: "complete" });
  assertEquals(isComplete("1 +* 2", deps), { status: "invalid" });
});

Deno.test("history: tail, range, search", () => {
  const h = [1, 2, 3].map((line) => ({ line, input: `x${line}`, output: null }));
  assertEquals(historyReply(h, { hist_access_type: "tail", n: 2 }).history, [[0, 2, "x2"], [0, 3, "x3"]]);
  assertEquals(historyReply(h, { hist_access_type: "range", start: 2, stop: 3 }).history, [[0, 2, "x2"]]);
  assertEquals(historyReply(h, { hist_access_type: "search", pattern: "x*3" }).history, [[0, 3, "x3"]]);
});
