/**
 * Text-level introspection in the supervisor: what is under the cursor, whether a cell is
 * complete, history. Values themselves are looked up in the worker (runtime.ts), with a
 * short timeout: a cell in a synchronous loop must not hang a completion request.
 */

import { CellSyntaxError, compileCell, type Deps } from "./transform.ts";

export const KEYWORDS = [
  "abstract", "as", "async", "await", "break", "case", "catch", "class", "const", "continue",
  "debugger", "declare", "default", "delete", "do", "else", "enum", "export", "extends", "false",
  "finally", "for", "function", "if", "implements", "import", "in", "instanceof", "interface",
  "keyof", "let", "new", "null", "private", "protected", "public", "readonly", "return",
  "satisfies", "static", "super", "switch", "this", "throw", "true", "try", "type", "typeof",
  "undefined", "var", "void", "while", "yield",
];

export const NODE_BUILTINS = [
  "assert", "async_hooks", "buffer", "child_process", "console", "crypto", "dns", "events", "fs",
  "fs/promises", "http", "https", "module", "net", "os", "path", "perf_hooks", "process",
  "querystring", "readline", "stream", "string_decoder", "timers", "tls", "url", "util", "v8",
  "vm", "worker_threads", "zlib",
];

/** Jupyter counts the cursor in code points; JavaScript strings in UTF-16 units. */
export function toUtf16(text: string, codePoints: number): number {
  let units = 0;
  let n = 0;
  for (const ch of text) {
    if (n >= codePoints) break;
    units += ch.length;
    n++;
  }
  return units;
}

export function toCodePoints(text: string, units: number): number {
  return [...text.slice(0, units)].length;
}

export type Context =
  | { kind: "specifier"; prefix: string }
  | { kind: "member"; path: string[]; prefix: string }
  | { kind: "global"; prefix: string };

/** What a completion at the end of `before` completes. */
export function completionContext(before: string): Context {
  const spec = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)(["'])([^"'\n]*)$/m.exec(before);
  if (spec) return { kind: "specifier", prefix: spec[2] };
  const member = /([A-Za-z_$][\w$]*(?:\s*\??\.\s*[A-Za-z_$][\w$]*)*)\s*\??\.\s*([A-Za-z_$][\w$]*)?$/.exec(before);
  if (member) {
    const path = member[1].split(/\s*\??\.\s*/);
    // A number ("1.5") or something right after a dot that is not a name: nothing to complete.
    if (!/\d$/.test(before.slice(0, member.index).trimEnd()) || member.index === 0) {
      return { kind: "member", path, prefix: member[2] ?? "" };
    }
  }
  const word = /[A-Za-z_$][\w$]*$/.exec(before);
  return { kind: "global", prefix: word ? word[0] : "" };
}

/** The dotted name under the cursor, or of the call whose parentheses the cursor is in. */
export function nameAt(code: string, cursor: number): string[] | null {
  const before = code.slice(0, cursor);
  const after = code.slice(cursor);
  const left = /([A-Za-z_$][\w$]*(?:\s*\??\.\s*[A-Za-z_$][\w$]*)*)$/.exec(before);
  const right = /^[\w$]*/.exec(after)![0];
  if (left || right) {
    const text = (left ? left[1] : "") + right;
    if (text && /^[A-Za-z_$]/.test(text)) return text.split(/\s*\??\.\s*/);
  }
  // Inside a call's parentheses: the function.
  let depth = 0;
  for (let i = before.length - 1; i >= 0; i--) {
    const c = before[i];
    if (c === ")") depth++;
    else if (c === "(") {
      if (depth === 0) {
        const fn = /([A-Za-z_$][\w$]*(?:\s*\??\.\s*[A-Za-z_$][\w$]*)*)\s*$/.exec(before.slice(0, i));
        return fn ? fn[1].split(/\s*\??\.\s*/) : null;
      }
      depth--;
    } else if (c === "\n" && depth === 0 && i < before.length - 200) break;
  }
  return null;
}

/** A last token after which the statement must go on (an operator, `=>`, an opening bracket…). */
const CONTINUES = /(?:=>|[-+*/%&|^<>=!?:,.([{~]|\b(?:return|typeof|await|new|in|of|instanceof|extends|yield|delete|void|throw|case))\s*$/;

/**
 * is_complete: complete when it compiles. Incomplete when it does not and more input could
 * mend it: the parser stopped at the end of the input, a string, template or comment is open,
 * a bracket is open, or the last token needs an operand. Invalid otherwise, and always when a
 * bracket closes that was never opened (no continuation can mend `x)`).
 */
export function isComplete(code: string, deps: Deps): { status: "complete" | "incomplete" | "invalid" | "unknown"; indent?: string } {
  if (!code.trim()) return { status: "complete" };
  try {
    compileCell(code, 0, deps);
    return { status: "complete" };
  } catch (err) {
    if (!(err instanceof CellSyntaxError)) return { status: "unknown" };
    const brackets = scanBrackets(code);
    if (brackets.closedUnopened) return { status: "invalid" };
    const lines = code.trimEnd().split("\n");
    const last = lines[lines.length - 1];
    // Positions are 1-based lines and 0-based columns: a column at the last line's length is
    // the end of the input.
    const atEnd = err.line > lines.length ||
      (err.line === lines.length && err.column >= last.length);
    if (atEnd || /Unterminated/.test(err.message) || brackets.open || CONTINUES.test(code.trimEnd())) {
      const indent = /^\s*/.exec(last)![0] + (/[{([]\s*$/.test(last) ? "  " : "");
      return { status: "incomplete", indent };
    }
    return { status: "invalid" };
  }
}

/** Whether brackets, a template string or a block comment are left open. */
export function opensMoreThanItCloses(code: string): boolean {
  return scanBrackets(code).open;
}

/**
 * Brackets outside strings and comments: `open` when some are left open (or a template string
 * or block comment is), `closedUnopened` when one closes below depth zero.
 */
export function scanBrackets(code: string): { open: boolean; closedUnopened: boolean } {
  let depth = 0;
  let quote: string | null = null;
  for (let i = 0; i < code.length; i++) {
    const c = code[i];
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = null;
      else if (c === "\n" && quote !== "`") quote = null;
    } else if (c === "/" && code[i + 1] === "/") {
      const end = code.indexOf("\n", i);
      if (end < 0) break;
      i = end;
    } else if (c === "/" && code[i + 1] === "*") {
      const end = code.indexOf("*/", i + 2);
      if (end < 0) return { open: true, closedUnopened: false };
      i = end + 1;
    } else if (c === "'" || c === '"' || c === "`") quote = c;
    else if ("([{".includes(c)) depth++;
    else if (")]}".includes(c)) {
      depth--;
      if (depth < 0) return { open: false, closedUnopened: true };
    }
  }
  return { open: depth > 0 || quote === "`", closedUnopened: false };
}

export interface HistoryEntry {
  line: number;
  input: string;
  output: string | null;
}

/** The history request over this session's cells (in memory: the session is the process). */
export function historyReply(entries: HistoryEntry[], p: Record<string, unknown>): { history: unknown[] } {
  const withOutput = !!p.output;
  const item = (e: HistoryEntry) => [0, e.line, withOutput ? [e.input, e.output] : e.input];
  let chosen: HistoryEntry[];
  switch (p.hist_access_type) {
    case "range": {
      const start = Number(p.start ?? 0);
      const stop = p.stop === undefined || p.stop === null ? Infinity : Number(p.stop);
      chosen = entries.filter((e) => e.line >= start && e.line < stop);
      break;
    }
    case "search": {
      const pattern = String(p.pattern ?? "*");
      const re = new RegExp("^" + pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[\\s\\S]*").replace(/\?/g, "[\\s\\S]") + "$");
      chosen = entries.filter((e) => re.test(e.input));
      if (p.unique) {
        const seen = new Set<string>();
        chosen = chosen.reverse().filter((e) => (seen.has(e.input) ? false : (seen.add(e.input), true))).reverse();
      }
      if (p.n !== undefined && p.n !== null) chosen = chosen.slice(-Number(p.n));
      break;
    }
    default: // tail
      chosen = entries.slice(-Number(p.n ?? 10));
  }
  return { history: chosen.map(item) };
}
