/**
 * A cell's TypeScript → a script the worker evaluates (runs in the supervisor).
 *
 * Two passes, both line-preserving so that line N of the cell is line N of what runs:
 * sucrase strips the types (it keeps line numbers by design), then acorn parses the
 * JavaScript and a handful of text edits make it a REPL cell:
 *
 * - top-level declarations (`const`, `let`, `var`, `class`, `import`, and `var` in blocks)
 *   become assignments to globals that the worker declares first, so they persist and a
 *   later cell may declare them again; functions stay declarations (hoisted) and are
 *   copied to the global object when the cell starts;
 * - the whole cell runs in an arrow function, on line 2 of the script (the header has a line
 *   of its own, so columns of the cell's first line are kept): an `async` one when the cell
 *   awaits at its top level (an `await`, `for await`, `await using` or a static `import`),
 *   else a plain one, which V8 compiles in half the time (measured: 11 µs against 24 µs for
 *   a one-line cell, and three times that right after an idle pause, as between cells);
 * - the last expression statement's value is returned (the cell's result);
 * - every loop body starts with an interrupt checkpoint (a read of the shared interrupt
 *   flag), and every `await` is followed by a check that the cell was not interrupted
 *   meanwhile, so that an interrupt stops code the event loop cannot reach;
 * - `import(...)` and `import.meta` go through the runtime, which resolves relative
 *   specifiers against the kernel's working directory (not the worker's blob URL).
 *
 * Positions map back for tracebacks: our edits' anchors map a column of the script to the
 * column in sucrase's output, and sucrase's source map takes it to the cell's own column.
 */

/** The two parsers, loaded from the deps bundle (see deps.ts). */
export interface Deps {
  // deno-lint-ignore no-explicit-any
  transform: (code: string, options: Record<string, unknown>) => { code: string; sourceMap?: any };
  // deno-lint-ignore no-explicit-any
  parse: (code: string, options: Record<string, unknown>) => any;
  /** The TypeScript compiler (deps_typescript.ts), once loaded: for cells that needTypeScript. */
  typescript?: Transpiler;
}

/** deps_typescript.ts: a cell → ES2022, with its source map's mappings and its syntax errors. */
export interface Transpiler {
  transpile(code: string): { code: string; map: string; diagnostics: { message: string; start: number }[] };
}

/**
 * A module kept packed by prepare() (__init__.py, PACKED): its default export is the
 * module's text, gzipped, in base64. Imported from a blob URL, which needs no permission;
 * `deno bundle` makes the bundle's `require` with createRequire(import.meta.url), which wants
 * a file URL, so it gets one (that require is never called for a file here).
 */
// deno-lint-ignore no-explicit-any
export async function unpackModule(packed: string): Promise<any> {
  const bytes = Uint8Array.from(atob(packed), (c) => c.charCodeAt(0));
  const text = (await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).text())
    .replaceAll("createRequire(import.meta.url)", 'createRequire("file:///kernelkit/typescript.js")');
  const url = URL.createObjectURL(new Blob([text], { type: "application/javascript" }));
  try {
    return await import(url);
  } finally {
    URL.revokeObjectURL(url);
  }
}

/**
 * Whether a cell needs the TypeScript compiler rather than sucrase: decorators (V8 does not
 * run them; sucrase leaves them as they are) and namespaces with values (sucrase drops them
 * without a word). A `@word` in a comment or a string says yes too: such a cell only takes
 * the slower path, which is as correct.
 */
export function needsTypeScript(code: string): boolean {
  return /(^|[\s(,;{}=!&|?:[])@[A-Za-z_$(]/.test(code) ||
    /(^|[\s;{}])(namespace|module)\s+[A-Za-z_$][\w$.]*\s*\{/.test(code);
}

/** What the inspector shows for a top-level declaration: the cell's own text of it. */
export interface Declaration {
  kind: "function" | "class" | "const" | "let" | "var" | "import";
  cell: string | number;
  line: number;
  /** The declaration's source in the cell (TypeScript, as typed), a few lines at most. */
  source: string;
  /** For functions and classes: the head, up to the body. */
  signature?: string;
  /** A JSDoc or line comment right above the declaration. */
  doc?: string;
}

export interface Compiled {
  /** The script for indirect eval: its completion value is the cell's promise. */
  script: string;
  /** Names the cell declares at top level: the worker makes each a global first. */
  declared: string[];
  /** The value of the last expression statement is the cell's result. */
  hasResult: boolean;
  declarations: Record<string, Declaration>;
  /** Maps positions of the script back to the cell. */
  map: PositionMap;
}

/** A syntax error in a cell, at a line and column of the cell (1-based line, 0-based column). */
export class CellSyntaxError extends Error {
  constructor(message: string, readonly line: number, readonly column: number) {
    super(message);
    this.name = "SyntaxError";
  }
}

// Names the runtime defines on the worker's global object (see runtime.ts).
const CHECK = "if(__kk$f[0]!==0)__kk$i();";
const HEADER_LINES = 1;

type Node = {
  type: string;
  start: number;
  end: number;
  loc?: { start: { line: number; column: number }; end: { line: number; column: number } };
  // deno-lint-ignore no-explicit-any
  [key: string]: any;
};

interface Edit {
  start: number;
  end: number;
  text: string;
  /** Order of insertions at one position: lower first. */
  order: number;
}

const SUCRASE_OPTIONS = {
  transforms: ["typescript"],
  disableESTransforms: true,
  // A cell's import may be used only by a later cell: never drop one as unused.
  keepUnusedImports: true,
  // `enum` and parameter properties need no helpers in this mode.
};

/** Strip types from a TypeScript cell (or expression); syntax errors name the cell's line. */
export function stripTypes(code: string, deps: Deps, sourceMap = false): { code: string; mappings?: string } {
  try {
    const out = deps.transform(code, sourceMap
      ? { ...SUCRASE_OPTIONS, filePath: "cell.ts", sourceMapOptions: { compiledFilename: "cell.js" } }
      : SUCRASE_OPTIONS);
    return { code: out.code, mappings: out.sourceMap?.mappings };
  } catch (err) {
    throw asCellSyntaxError(err, code);
  }
}

function asCellSyntaxError(err: unknown, code: string): Error {
  const e = err as { message?: string; loc?: { line: number; column: number }; pos?: number };
  if (e && typeof e.message === "string") e.message = e.message.replace(/^Error transforming [^:]*: /, "");
  if (e && typeof e.message === "string" && e.loc && typeof e.loc.line === "number") {
    const message = e.message.replace(/\s*\(\d+:\d+\)$/, "");
    return new CellSyntaxError(message, e.loc.line, Math.max(0, e.loc.column - 1)); // (sucrase's are 1-based)
  }
  if (e && typeof e.message === "string" && typeof e.pos === "number") {
    const before = code.slice(0, e.pos).split("\n");
    return new CellSyntaxError(e.message.replace(/\s*\(\d+:\d+\)$/, ""), before.length, before[before.length - 1].length);
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** Compile one cell. `cell` names it in tracebacks (`<cell N>`). */
export function compileCell(code: string, cell: string | number, deps: Deps): Compiled {
  // sucrase keeps the cell's lines; its source map (columns of the stripped text → the
  // cell's) is made only when a position is asked for, for a traceback or a syntax error:
  // most cells never need it, and making it is a third of a small cell's compile time.
  // The TypeScript compiler (the few cells that need it) moves lines: its map says where.
  const full = deps.typescript && needsTypeScript(code) ? deps.typescript.transpile(code) : null;
  if (full && full.diagnostics.length > 0) {
    const { message, start } = full.diagnostics[0];
    const before = code.slice(0, start).split("\n");
    throw new CellSyntaxError(message, before.length, before[before.length - 1].length);
  }
  const js = full ? full.code : stripTypes(code, deps).code;
  let decoded: number[][] | null = null;
  const mappings = () => (decoded ??= decodeMappings(full ? full.map : stripTypes(code, deps, true).mappings ?? ""));
  const cellLine = full ? (line: number) => Math.max(1, sourcePosition(mappings(), line, 0, true).line) : (line: number) => line;
  let ast: Node;
  const comments: Node[] = [];
  try {
    ast = deps.parse(js, {
      ecmaVersion: "latest",
      sourceType: "script",
      allowAwaitOutsideFunction: true,
      allowImportExportEverywhere: true,
      allowHashBang: true,
      locations: true,
      onComment: comments,
    });
  } catch (err) {
    // acorn's position is of the stripped text: the source map takes it to the cell's.
    const e = err as { message?: string; loc?: { line: number; column: number } };
    if (e?.loc) {
      const at = sourcePosition(mappings(), e.loc.line, e.loc.column, !!full);
      throw new CellSyntaxError(String(e.message).replace(/\s*\(\d+:\d+\)$/, ""), at.line, at.column);
    }
    throw err;
  }

  const edits: Edit[] = [];
  const done = new Set<Node>(); // declarations already turned into assignments
  const declared = new Set<string>();
  const functions: string[] = [];
  const declarations: Record<string, Declaration> = {};
  const tsLines = code.split("\n");
  const note = (name: string, kind: Declaration["kind"], node: Node, body?: Node) => {
    declarations[name] = describeDeclaration(kind, node, body, cell, tsLines, comments, js, cellLine);
  };
  const insert = (at: number, text: string, order = 0) => edits.push({ start: at, end: at, text, order });
  const replace = (start: number, end: number, text: string) => edits.push({ start, end, text, order: 0 });

  /** `let a = 1, {b} = o;` → `void (a = 1, {b} = o);` (a, b: globals). */
  const declarationToAssignment = (decl: Node, statement: boolean) => {
    const kind = decl.kind as string;
    const first = decl.declarations[0];
    done.add(decl);
    // `void (…)`: an expression statement that no preceding line can continue (no ASI trap),
    // and valid where a statement is, also as the body of an `if`.
    replace(decl.start, first.start, statement ? "void (" : "");
    for (const d of decl.declarations) {
      for (const name of patternNames(d.id)) {
        declared.add(name);
        note(name, kind as Declaration["kind"], decl);
      }
      if (d.init === null && statement && kind !== "var") insert(d.id.end, " = undefined", -2);
    }
    if (statement) {
      const last = decl.declarations[decl.declarations.length - 1];
      insert(last.end, ")", -1);
      if (js[decl.end - 1] !== ";") insert(last.end, ";", -1);
    }
  };

  const body: Node[] = ast.body;
  let resultStatement: Node | null = null;
  const last = body[body.length - 1];
  if (last && last.type === "ExpressionStatement" && !last.directive) resultStatement = last;
  if (last && last.type === "ExportDefaultDeclaration" && !isNamedDeclaration(last.declaration)) {
    replace(last.start, last.declaration.start, "");
    resultStatement = { ...last, expression: last.declaration } as Node;
  }

  let awaits = false; // at the cell's top level, outside any function: the wrapper must be async
  const topLevel = (node: Node) => {
    switch (node.type) {
      case "VariableDeclaration":
        if (node.kind === "var" || node.kind === "let" || node.kind === "const") declarationToAssignment(node, true);
        break;
      case "FunctionDeclaration":
        declared.add(node.id.name);
        functions.push(node.id.name);
        note(node.id.name, "function", node, node.body);
        break;
      case "ClassDeclaration":
        declared.add(node.id.name);
        note(node.id.name, "class", node, node.body);
        insert(node.start, `;${node.id.name} = `, -1);
        insert(node.end, ";", 1);
        break;
      case "ImportDeclaration":
        awaits = true;
        replace(node.start, node.end, importToAssignment(node, js, declared, (name) => note(name, "import", node)));
        break;
      case "ExportNamedDeclaration":
        if (node.declaration) {
          replace(node.start, node.declaration.start, "");
          topLevel(node.declaration);
        } else {
          replace(node.start, node.end, ""); // export {a} / export … from: nothing to export to
        }
        break;
      case "ExportAllDeclaration":
        replace(node.start, node.end, "");
        break;
      case "ExportDefaultDeclaration":
        if (isNamedDeclaration(node.declaration)) {
          replace(node.start, node.declaration.start, "");
          topLevel(node.declaration);
        }
        break;
    }
  };
  for (const node of body) topLevel(node);

  if (resultStatement) {
    // Around the statement, not its expression: in `({ a: 1 })` acorn's expression starts
    // inside the parentheses (it gave `(return {value: ({ a: 1 })};)`). Its `;` stays out.
    const expr = resultStatement.expression;
    const whole = resultStatement.type === "ExpressionStatement";
    const start = whole ? resultStatement.start : expr.start;
    const end = !whole ? expr.end : js[resultStatement.end - 1] === ";" ? resultStatement.end - 1 : resultStatement.end;
    insert(start, "return {value: (", -2);
    insert(end, ")};", 2);
  }

  // Everything else, at any depth: loops, awaits, import(), import.meta, and `var` outside
  // functions (a `var` in a block belongs to the cell's scope, so it persists too).
  walk(ast, null, 0, false, (node, parent, depth, inFunction) => {
    switch (node.type) {
      case "ForStatement":
      case "ForInStatement":
      case "ForOfStatement":
      case "WhileStatement":
      case "DoWhileStatement": {
        const b = node.body as Node;
        const check = node.type === "ForOfStatement" && node.await ? CHECK + "__kk$a();" : CHECK;
        if (node.type === "ForOfStatement" && node.await && !inFunction) awaits = true;
        if (b.type === "BlockStatement") insert(b.start + 1, check, depth);
        else {
          insert(b.start, "{" + check, depth);
          insert(b.end, "}", -depth);
        }
        break;
      }
      case "AwaitExpression":
        if (!inFunction) awaits = true;
        insert(node.start, "__kk$a(", depth);
        insert(node.end, ")", -depth);
        break;
      case "ImportExpression":
        replace(node.start, node.start + "import".length, "__kk$import");
        break;
      case "MetaProperty":
        if (node.meta?.name === "import") replace(node.start, node.end, "__kk$meta");
        break;
      case "VariableDeclaration":
        if (!inFunction && String(node.kind).startsWith("await")) awaits = true; // `await using`
        if (!inFunction && node.kind === "var" && !done.has(node)) {
          const inHead = parent && (parent.type === "ForStatement" && parent.init === node ||
            (parent.type === "ForInStatement" || parent.type === "ForOfStatement") && parent.left === node);
          declarationToAssignment(node, !inHead);
        }
        break;
    }
  });

  const hoist = functions.map((f) => `__kk$g.${f}=${f};`).join("");
  const header = `(${awaits ? "async " : ""}() => {${hoist}\n`;
  const { text, anchors } = applyEdits(js, edits);
  const script = `${header}${text}\n})()\n//# sourceURL=<cell-${cell}>`;
  return {
    script,
    declared: [...declared],
    hasResult: resultStatement !== null,
    declarations,
    map: { header: HEADER_LINES, anchors, lineStarts: lineStarts(text), jsLineStarts: lineStarts(js), mappings, moved: !!full },
  };
}

function isNamedDeclaration(node: Node): boolean {
  return (node.type === "FunctionDeclaration" || node.type === "ClassDeclaration") && !!node.id;
}

/** The names a binding pattern binds. */
export function patternNames(p: Node | null): string[] {
  if (!p) return [];
  switch (p.type) {
    case "Identifier":
      return [p.name];
    case "ObjectPattern":
      return p.properties.flatMap((q: Node) => patternNames(q.type === "RestElement" ? q.argument : q.value));
    case "ArrayPattern":
      return p.elements.flatMap((q: Node | null) => patternNames(q));
    case "RestElement":
      return patternNames(p.argument);
    case "AssignmentPattern":
      return patternNames(p.left);
    default:
      return [];
  }
}

/** `import d, {a as b} from "m"` → one line of assignments from `await __kk$import(…)`, lines kept. */
function importToAssignment(node: Node, js: string, declared: Set<string>, note: (name: string) => void): string {
  const source = js.slice(node.source.start, node.source.end);
  const attrs = node.attributes?.length
    ? `, {with: {${node.attributes.map((a: Node) => `${js.slice(a.key.start, a.key.end)}: ${js.slice(a.value.start, a.value.end)}`).join(", ")}}}`
    : "";
  const parts: string[] = [];
  const names: string[] = [];
  let namespace: string | null = null;
  let defaultName: string | null = null;
  for (const s of node.specifiers as Node[]) {
    declared.add(s.local.name);
    note(s.local.name);
    if (s.type === "ImportNamespaceSpecifier") namespace = s.local.name;
    else if (s.type === "ImportDefaultSpecifier") defaultName = s.local.name;
    else {
      const imported = s.imported.type === "Identifier" ? s.imported.name : String(s.imported.value);
      parts.push(`${JSON.stringify(imported)}: ${s.local.name}`);
      names.push(imported);
    }
  }
  if (defaultName) names.unshift("default");
  const load = `await __kk$import(${source}${attrs || ", undefined"}, ${JSON.stringify(names)})`;
  let text: string;
  if (namespace) {
    text = `;(${namespace} = ${load});`;
    if (defaultName) text += `(${defaultName} = ${namespace}.default);`;
    if (parts.length) text += `({${parts.join(", ")}} = ${namespace});`;
  } else if (defaultName || parts.length) {
    const all = defaultName ? [`default: ${defaultName}`, ...parts] : parts;
    text = `;({${all.join(", ")}} = ${load});`;
  } else {
    text = `;${load};`;
  }
  const newlines = js.slice(node.start, node.end).split("\n").length - 1;
  return text + "\n".repeat(newlines);
}

function walk(node: Node, parent: Node | null, depth: number, inFunction: boolean,
  visit: (node: Node, parent: Node | null, depth: number, inFunction: boolean) => void): void {
  visit(node, parent, depth, inFunction);
  const fn = inFunction || node.type === "FunctionDeclaration" || node.type === "FunctionExpression" ||
    node.type === "ArrowFunctionExpression" || node.type === "StaticBlock" ||
    node.type === "PropertyDefinition";
  for (const key in node) {
    if (key === "loc" || key === "start" || key === "end" || key === "type") continue;
    const value = node[key];
    if (Array.isArray(value)) {
      for (const child of value) if (child && typeof child.type === "string") walk(child, node, depth + 1, fn, visit);
    } else if (value && typeof value === "object" && typeof value.type === "string") {
      walk(value, node, depth + 1, fn, visit);
    }
  }
}

/**
 * Apply edits, keeping the original's newlines. Anchors map output offsets back: triples
 * [outOffset, srcOffset, copied], copied 1 for a run of source text, 0 for inserted text
 * (which maps to where it was inserted).
 */
export function applyEdits(src: string, edits: Edit[]): { text: string; anchors: number[] } {
  const sorted = edits.map((e, i) => ({ ...e, i })).sort((a, b) =>
    a.start - b.start || (a.end - a.start) - (b.end - b.start) || a.order - b.order || a.i - b.i
  );
  let out = "";
  let pos = 0;
  const anchors: number[] = [];
  for (const e of sorted) {
    if (e.start < pos) continue; // overlapping (inside a replaced range): the replacement wins
    if (e.start > pos) {
      anchors.push(out.length, pos, 1);
      out += src.slice(pos, e.start);
    }
    anchors.push(out.length, e.start, 0);
    out += e.text;
    if (e.end > e.start) {
      const removed = src.slice(e.start, e.end);
      const keep = removed.split("\n").length - 1 - (e.text.split("\n").length - 1);
      if (keep > 0) out += "\n".repeat(keep);
    }
    pos = e.end;
  }
  anchors.push(out.length, pos, 1);
  out += src.slice(pos);
  return { text: out, anchors };
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) starts.push(i + 1);
  return starts;
}

// -- positions back to the cell ---------------------------------------------------------------

export interface PositionMap {
  header: number;
  anchors: number[];
  lineStarts: number[];
  jsLineStarts: number[];
  /** The source map, per line: [generatedColumn, sourceLine, sourceColumn] triples (made when first asked). */
  mappings: () => number[][];
  /** The TypeScript compiler made the script: its lines are not the cell's. */
  moved: boolean;
}

/**
 * (line, column) in the evaluated script (1-based line, 1-based column as V8 prints them) →
 * the cell's; line 0 for the wrapper's own lines.
 */
export function cellPosition(map: PositionMap, line: number, column: number): { line: number; column: number } {
  const outLine = line - map.header; // 1-based line of the edited text
  // The header and footer lines are the wrapper's own: no line of the cell (line 0).
  if (outLine < 1 || outLine > map.lineStarts.length) return { line: 0, column };
  const outOffset = map.lineStarts[outLine - 1] + (column - 1);
  // The last anchor at or before outOffset (the last of several at one offset: empty ones first).
  let lo = 0;
  let hi = map.anchors.length / 3 - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (map.anchors[mid * 3] <= outOffset) lo = mid;
    else hi = mid - 1;
  }
  const [out, src, copied] = [map.anchors[lo * 3], map.anchors[lo * 3 + 1], map.anchors[lo * 3 + 2]];
  // Inside text we inserted: its source position is where it was inserted.
  const jsOffset = copied ? src + (outOffset - out) : src;
  // The stripped JS has the cell's lines; find the line of jsOffset.
  let l = 0;
  let h = map.jsLineStarts.length - 1;
  while (l < h) {
    const mid = (l + h + 1) >> 1;
    if (map.jsLineStarts[mid] <= jsOffset) l = mid;
    else h = mid - 1;
  }
  const jsColumn = jsOffset - map.jsLineStarts[l];
  const at = sourcePosition(map.mappings(), l + 1, jsColumn, map.moved);
  return { line: at.line, column: at.column + 1 };
}

/**
 * (1-based line, 0-based column) of the stripped JavaScript → the cell's, by the source map:
 * the last segment at or before the column, on that line. A line with none keeps its line
 * and column (sucrase's lines are the cell's), or, when the compiler moved lines, is no
 * line of the cell (0: a helper it added).
 */
function sourcePosition(mappings: number[][], line: number, column: number, moved = false): { line: number; column: number } {
  const segs = mappings[line - 1];
  if (!segs || segs.length === 0) return { line: moved ? 0 : line, column }; // (moved: a helper's line)
  let best = -1;
  for (let i = 0; i < segs.length; i += 3) if (segs[i] <= column || best < 0) best = i;
  const offset = Math.max(0, column - segs[best]);
  return { line: segs[best + 1] + 1, column: segs[best + 2] + offset };
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Decode a source map's `mappings` into [generatedColumn, sourceLine, sourceColumn] triples per line (0-based). */
export function decodeMappings(mappings: string): number[][] {
  const lines: number[][] = [];
  let srcLine = 0;
  let srcColumn = 0;
  for (const line of mappings.split(";")) {
    const segs: number[] = [];
    let genColumn = 0;
    for (const seg of line.split(",")) {
      if (!seg) continue;
      const fields: number[] = [];
      let value = 0;
      let shift = 0;
      for (const ch of seg) {
        const digit = B64.indexOf(ch);
        value += (digit & 31) << shift;
        if (digit & 32) shift += 5;
        else {
          fields.push(value & 1 ? -(value >>> 1) : value >>> 1);
          value = 0;
          shift = 0;
        }
      }
      genColumn += fields[0];
      if (fields.length >= 4) {
        srcLine += fields[2];
        srcColumn += fields[3];
        segs.push(genColumn, srcLine, srcColumn);
      }
    }
    lines.push(segs);
  }
  return lines;
}

// -- what the inspector shows ---------------------------------------------------------------

function describeDeclaration(kind: Declaration["kind"], node: Node, body: Node | undefined, cell: string | number,
  tsLines: string[], comments: Node[], js: string, cellLine: (line: number) => number): Declaration {
  const first = cellLine(node.loc!.start.line);
  const lastLine = Math.min(Math.max(first, cellLine(node.loc!.end.line)), first + 19);
  const source = tsLines.slice(first - 1, lastLine).join("\n");
  const decl: Declaration = { kind, cell, line: first, source };
  if (body) {
    // The head: the cell's lines up to the body's line, cut before the body's brace there.
    const bodyLine = cellLine(body.loc!.start.line);
    const head = tsLines.slice(first - 1, bodyLine).join("\n");
    const jsHeadEnd = js.slice(node.start, body.start).trimEnd();
    const cut = head.lastIndexOf("{");
    decl.signature = (cut > 0 && bodyLine - first < 10 ? head.slice(0, cut) : jsHeadEnd).trim();
  }
  const above = comments.filter((c) => c.end <= node.start && /^\s*$/.test(js.slice(c.end, node.start)));
  const doc = above[above.length - 1];
  if (doc) {
    decl.doc = doc.type === "Block"
      ? String(doc.value).replace(/^\*?\s*/, "").split("\n").map((l: string) => l.replace(/^\s*\*\s?/, "")).join("\n").trim()
      : String(doc.value).trim();
  }
  return decl;
}
