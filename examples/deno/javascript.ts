// A JavaScript kernel in TypeScript on Deno, through the kernelkit bridge:
//   kernelkit bridge -- deno run examples/deno/javascript.ts
// Code runs in the global scope (var and function declarations persist between cells);
// the value of the last expression is the cell's result; `await input("prompt")` and
// `console.log` work; errors come back with their stack trace.
import { type Context, serve } from "../../src/kernelkit/sdk/js/kernelkit.js";

const g = globalThis as Record<string, unknown>;
let ctx: Context | null = null;

// Output of console.log/console.error goes to the running cell.
const format = (args: unknown[]) =>
  args.map((a) => (typeof a === "string" ? a : Deno.inspect(a))).join(" ") + "\n";
console.log = (...args: unknown[]) => ctx?.stream("stdout", format(args));
console.info = console.log;
console.error = (...args: unknown[]) => ctx?.stream("stderr", format(args));
console.warn = console.error;
g.input = (prompt = "") => ctx ? ctx.input(String(prompt)) : Promise.reject(new Error("no cell is running"));
g.display = (value: unknown) => ctx?.display({ "text/plain": Deno.inspect(value) });

// Indirect eval runs in the global scope, so declarations outlive the cell.
const globalEval = eval;

// user_expressions: each evaluated after the cell, each with its own result or error.
function evaluateAll(expressions: Record<string, string>) {
  const out: Record<string, unknown> = {};
  for (const [name, expr] of Object.entries(expressions)) {
    try {
      const value = globalEval(String(expr));
      out[name] = { status: "ok", data: { "text/plain": Deno.inspect(value, { colors: false }) }, metadata: {} };
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      out[name] = { status: "error", ename: e.name, evalue: e.message, traceback: [`${e.name}: ${e.message}`] };
    }
  }
  return out;
}

serve({
  info: {
    implementation: "kernelkit-deno-javascript",
    implementation_version: "0.1.0",
    language_version: Deno.version.v8,
    language_info: {
      name: "javascript",
      version: Deno.version.v8,
      mimetype: "text/javascript",
      file_extension: ".js",
      codemirror_mode: "javascript",
    },
    banner: `JavaScript on Deno ${Deno.version.deno}, through kernelkit`,
  },

  async execute({ code, silent, user_expressions }, context) {
    ctx = context;
    try {
      let value = globalEval(code);
      if (value instanceof Promise) value = await value;
      if (value !== undefined && !silent) {
        context.result({ "text/plain": Deno.inspect(value, { colors: false }) });
      }
      return { user_expressions: evaluateAll(user_expressions ?? {}) };
    } catch (err) {
      // Keep the user's frames, named after the cell; drop this file's and the SDK's.
      if (err instanceof Error && err.stack) {
        err.stack = err.stack.split("\n").flatMap((line) => {
          if (line.includes("eval at ")) return [line.replace(/\(eval at .*<anonymous>:(\d+:\d+)\)/, "(<cell>:$1)")];
          const ours = line.includes(import.meta.url) || line.includes("kernelkit.js") || line.includes("at eval (<anonymous>)");
          return ours ? [] : [line];
        }).join("\n");
      }
      throw err;
    } finally {
      ctx = null;
    }
  },

  complete({ code, cursor_pos }) {
    const before = code.slice(0, cursor_pos);
    const m = /[A-Za-z_$][\w$]*$/.exec(before);
    const prefix = m ? m[0] : "";
    const names = new Set<string>();
    for (let o: object | null = globalThis; o; o = Object.getPrototypeOf(o)) {
      for (const name of Object.getOwnPropertyNames(o)) names.add(name);
    }
    const matches = [...names].filter((n) => n.startsWith(prefix)).sort();
    return { matches, cursor_start: cursor_pos - prefix.length, cursor_end: cursor_pos, metadata: {} };
  },

  is_complete({ code }) {
    try {
      new Function(code);
      return { status: "complete" };
    } catch {
      return opensMoreThanItCloses(code) ? { status: "incomplete", indent: "  " } : { status: "invalid" };
    }
  },
});

/** Whether brackets, strings or comments are left open (outside strings and comments). */
function opensMoreThanItCloses(code: string): boolean {
  let depth = 0;
  let quote: string | null = null;
  for (let i = 0; i < code.length; i++) {
    const c = code[i];
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = null;
    } else if (c === "/" && code[i + 1] === "/") {
      const end = code.indexOf("\n", i);
      if (end < 0) break;
      i = end;
    } else if (c === "/" && code[i + 1] === "*") {
      const end = code.indexOf("*/", i + 2);
      if (end < 0) return true;
      i = end + 1;
    } else if (c === "'" || c === '"' || c === "`") quote = c;
    else if ("([{".includes(c)) depth++;
    else if (")]}".includes(c)) depth--;
  }
  return depth > 0 || quote === "`";
}
