/**
 * The worker: where the user's cells run, in a Web Worker of the backend process.
 *
 * (Why ~700 lines in one module: the worker is built from this module's function text, see
 * below; another module would be one more file for the supervisor to stitch into the blob.)
 *
 * Why a worker: a cell stuck in `while (true) {}` never lets its thread run a signal
 * handler or read a message, so the code that answers the host (supervisor.ts, on the
 * main thread) must be elsewhere. The supervisor sets a flag in a SharedArrayBuffer; the
 * loops of every cell check it (transform.ts puts the check there) and throw
 * `KeyboardInterrupt`; the worker and its globals live on. An awaiting cell is ended by an
 * `interrupt` message, which the worker reads as soon as the cell awaits.
 *
 * Why its source is built from function text: Deno needs read permission to load a worker's
 * module from a file, even our own, and the kernel must run with only the permissions the
 * user gave it. So the supervisor makes the worker from a blob: the text of the functions in
 * this module and display.ts. Each is therefore a self-contained function declaration that
 * uses only globals, `AsyncLocalStorage` (imported by the blob too) and the other functions
 * of these two modules.
 *
 * Output is tagged with the cell (run) it belongs to through an AsyncLocalStorage: a timer
 * or promise continuation started by cell 3 is cell 3's output even while cell 4 runs, and
 * the supervisor sends it as output of cell 3's request, which the host logs as late
 * (docs/bridge-protocol.md, Output order): it never lands in the next cell.
 *
 * Comms and widgets (widgets_runtime.ts): the worker's comm manager posts each operation to
 * the supervisor, which does it with the SDK's comms; a frontend comm message comes back as a
 * `comm-in` "run" of its own, so what its callbacks print is that message's output.
 * `import … from "kernelkit:widgets"` is sdk/js/widgets.js on that manager.
 */

// deno-lint-ignore-file no-explicit-any
import { AsyncLocalStorage } from "node:async_hooks";
import { bundleFor, displayable, formatValue, imageDisplayable, inspectValue, taggedTemplate } from "./display.ts";
import { denoComms, widgetsModuleUrl, workerComms } from "./widgets_runtime.ts";
import { messageChannel } from "./channel.ts";

/** console.log's formatting: printf-style specifiers in a first string, then inspect. */
export function formatArgs(args: unknown[]): string {
  const show = (v: unknown) => (typeof v === "string" ? v : inspectValue(v));
  if (args.length === 0) return "";
  let rest = args;
  let out = "";
  if (typeof args[0] === "string" && args[0].includes("%")) {
    const fmt = args[0];
    rest = args.slice(1);
    let i = 0;
    for (let p = 0; p < fmt.length; p++) {
      const c = fmt[p];
      if (c !== "%" || p + 1 >= fmt.length) {
        out += c;
        continue;
      }
      const s = fmt[p + 1];
      if (s === "%") {
        out += "%";
        p++;
        continue;
      }
      if (!"sdifoOjc".includes(s)) {
        out += c;
        continue;
      }
      p++;
      if (s === "c") {
        i++; // CSS: nothing to show in a notebook's text
        continue;
      }
      if (i >= rest.length) {
        out += "%" + s;
        continue;
      }
      const v = rest[i++];
      if (s === "s") out += typeof v === "string" ? v : inspectValue(v);
      else if (s === "d" || s === "i") {
        const n = typeof v === "bigint" ? v : Number(v);
        out += typeof n === "bigint" ? `${n}n` : String(s === "i" ? Math.trunc(n) : n);
      } else if (s === "f") out += String(Number(v));
      else if (s === "j") {
        try {
          out += JSON.stringify(v);
        } catch {
          out += "[Circular]";
        }
      } else out += inspectValue(v);
    }
    rest = rest.slice(i);
    if (rest.length) out += " ";
  }
  return out + rest.map(show).join(" ");
}

/** console.table, plainly: a box of rows and columns. */
export function formatTable(data: any, columns?: string[]): string {
  if (data === null || typeof data !== "object") return formatArgs([data]);
  const rows = Object.entries(data);
  const keys: string[] = columns ? [...columns] : [];
  let hasValues = false;
  if (!columns) {
    for (const [, row] of rows) {
      if (row !== null && typeof row === "object") {
        for (const k of Object.keys(row)) if (!keys.includes(k)) keys.push(k);
      } else hasValues = true;
    }
  }
  const header = ["(idx)", ...keys, ...(hasValues ? ["Values"] : [])];
  const cell = (v: unknown) => (v === undefined ? "" : typeof v === "string" ? v : inspectValue(v));
  const body = rows.map(([idx, row]) => [
    idx,
    ...keys.map((k) => (row !== null && typeof row === "object" ? cell((row as any)[k]) : "")),
    ...(hasValues ? [row !== null && typeof row === "object" ? "" : cell(row)] : []),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => String(r[i]).length)));
  const line = (l: string, m: string, r: string) => l + widths.map((w) => "─".repeat(w + 2)).join(m) + r;
  const fmt = (r: string[]) => "│" + r.map((v, i) => ` ${String(v).padEnd(widths[i])} `).join("│") + "│";
  return [line("┌", "┬", "┐"), fmt(header), line("├", "┼", "┤"), ...body.map(fmt), line("└", "┴", "┘")].join("\n");
}

/** An error as plain data for the supervisor, which formats the traceback. */
export function serializeError(err: any): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  try {
    if (err instanceof Error) {
      out.name = String(err.name || "Error");
      out.message = String(err.message ?? "");
      out.stack = typeof err.stack === "string" ? err.stack : "";
      if (err.cause !== undefined) out.cause = serializeError(err.cause);
    } else {
      out.name = "Uncaught";
      out.message = inspectValue(err);
      out.stack = "";
    }
    out.interrupted = (globalThis as any).KeyboardInterrupt !== undefined && err instanceof (globalThis as any).KeyboardInterrupt;
  } catch (inner) {
    out.name = "Error";
    out.message = `(an error that cannot be shown: ${String(inner)})`;
    out.stack = "";
  }
  return out;
}

/** Names of an object's properties along its prototype chain, each with a kind for the frontend. */
export function memberNames(value: any): [string, string][] {
  const out = new Map<string, string>();
  if (value === null || value === undefined) return [];
  let o = typeof value === "object" || typeof value === "function" ? value : Object(value);
  for (let depth = 0; o && depth < 30 && out.size < 5000; depth++) {
    for (const k of Object.getOwnPropertyNames(o)) {
      if (out.has(k) || /^\d+$/.test(k) || k.startsWith("__kk$")) continue;
      let kind = "property";
      try {
        const d = Object.getOwnPropertyDescriptor(o, k);
        if (d && "value" in d) {
          const v = d.value;
          if (typeof v === "function") kind = /^class[\s{]/.test(Function.prototype.toString.call(v)) ? "class" : "function";
          else if (v !== null && typeof v === "object") kind = "instance";
          else kind = typeof v === "undefined" ? "property" : "instance";
        }
      } catch {
        // (an exotic object: listed without a kind)
      }
      out.set(k, kind);
    }
    o = Object.getPrototypeOf(o);
  }
  return [...out.entries()];
}

/** The value at a dotted path from the global object (getters run, as a REPL's do). */
export function valueAt(path: string[]): { found: boolean; value?: unknown } {
  let v: any = globalThis;
  for (const name of path) {
    if (v === null || v === undefined) return { found: false };
    try {
      if (!(name in Object(v))) return { found: false };
      v = v[name];
    } catch {
      return { found: false };
    }
  }
  return { found: true, value: v };
}

/** What inspect shows of a value found at runtime. */
export function describeValue(value: any): Record<string, unknown> {
  const out: Record<string, unknown> = { type: value === null ? "null" : typeof value };
  try {
    if (value !== null && (typeof value === "object" || typeof value === "function")) {
      out.constructor = Object.getPrototypeOf(value)?.constructor?.name ?? null;
    }
    if (typeof value === "function") {
      const text = Function.prototype.toString.call(value);
      out.isClass = /^class[\s{]/.test(text);
      const brace = text.search(/\{|=>/);
      out.head = (brace > 0 ? text.slice(0, brace) : text).replace(/\s+/g, " ").trim().slice(0, 500);
      out.native = text.includes("[native code]");
      out.name = value.name;
      out.length = value.length;
    }
    const preview = inspectValue(value);
    out.preview = preview.length > 3000 ? preview.slice(0, 3000) + "…" : preview;
  } catch (err) {
    out.preview = `(cannot be shown: ${String(err)})`;
  }
  return out;
}

/** The worker's entry point: sets up the globals cells see, then serves the supervisor. */
export function workerMain(): void {
  const scope = globalThis as any;
  const postRaw = scope.postMessage.bind(scope);
  // To the supervisor (channel.ts); comm messages by postMessage, as they carry bytes. (Before
  // `init` there is no channel: nothing is sent then but an error report, posted plainly.)
  let channel: ReturnType<typeof messageChannel> | null = null;
  const early: any[] = []; // the supervisor's posted messages that came before init
  const post = (msg: any) => (channel ? channel.send(msg, msg.type === "comm") : postRaw(msg));
  const addListener = scope.addEventListener.bind(scope);
  const als = new AsyncLocalStorage<any>();
  const decoder = new TextDecoder();
  const realExit = Deno.exit;
  const realSetTimeout = setTimeout;
  const realSetInterval = setInterval;
  const now = () => performance.now();
  let flag: Int32Array = new Int32Array(4);
  let ioState: Int32Array = new Int32Array(2);
  let ioBuffer: SharedArrayBuffer | null = null;
  let cwdUrl: string | null = null;
  let widgetsSource: string | null = null; // sdk/js/widgets.js, from the supervisor
  const active = new Map<number, any>(); // runs that have not finished
  const waiting = new Map<number, any>(); // async input() requests
  let nextRequest = 0;

  class KeyboardInterrupt extends Error {
    constructor(message = "interrupted") {
      super(message);
      this.name = "KeyboardInterrupt";
    }
  }

  const currentRun = (): number | null => als.getStore()?.id ?? null;

  // -- output: buffered stream text per run, flushed before anything else goes out -----------
  let pending: { run: number | null; name: string; text: string; since: number } | null = null;
  let flushTimer: ReturnType<typeof setTimeout> | null = null;
  let lastFlush = 0;
  // Bit 2 of the flag says "output is waiting": the next loop checkpoint calls __kk$i, which
  // flushes it once it is old enough, so a print before a long loop shows during the loop.
  const flush = () => {
    Atomics.and(flag, 0, ~2);
    if (flushTimer !== null) {
      clearTimeout(flushTimer);
      flushTimer = null;
    }
    if (pending && pending.text) {
      post({ type: "out", run: pending.run, method: "stream", params: { name: pending.name, text: pending.text } });
      lastFlush = now();
    }
    pending = null;
  };
  const write = (name: string, text: string, run = currentRun()) => {
    if (!text) return;
    if (pending && (pending.run !== run || pending.name !== name)) flush();
    if (!pending && now() - lastFlush > 20) {
      // The first write after a pause goes out at once (a print before a loop that has no
      // checkpoints, in a library, shows before the loop); only bursts are batched.
      lastFlush = now();
      post({ type: "out", run, method: "stream", params: { name, text } });
      return;
    }
    if (!pending) pending = { run, name, text: "", since: now() };
    pending.text += text;
    // A cell in a long synchronous loop never lets a timer run: flush by time and size here.
    if (pending.text.length > 65536 || now() - pending.since > 50) flush();
    else if (flushTimer === null) {
      flushTimer = realSetTimeout(flush, 0);
      Atomics.or(flag, 0, 2);
    }
  };
  const emit = (method: string, params: Record<string, unknown>, run = currentRun()) => {
    flush();
    post({ type: "out", run, method, params });
  };

  // -- comms and widgets (widgets_runtime.ts): through the supervisor's SDK comms -------------
  const commsApi = workerComms(post, flush, currentRun);
  const denoComm = denoComms(commsApi.manager);
  let widgetsModule: Promise<any> | null = null;
  /** `import … from "kernelkit:widgets"`: sdk/js/widgets.js over the worker's comms, loaded once. */
  const loadWidgets = (): Promise<any> => {
    if (widgetsModule === null) {
      widgetsModule = (async () => {
        if (widgetsSource === null) {
          throw new Error("kernelkit:widgets is not available: this Deno cannot import the widget module as text " +
            '(`with { type: "text" }`: stable in Deno 2.9; older ones need --unstable-raw-imports in the kernelspec)');
        }
        const mod = await import(widgetsModuleUrl(widgetsSource, commsApi.manager));
        return Object.freeze({ ...mod, comms: commsApi.manager });
      })();
      widgetsModule.catch(() => (widgetsModule = null));
    }
    return widgetsModule;
  };
  const builtinModules: Record<string, () => Promise<any>> = {
    "kernelkit:widgets": loadWidgets,
    "kernelkit:comms": () => Promise.resolve(Object.freeze({ comms: commsApi.manager })),
  };

  // -- console, Deno.stdout/stderr: to the run's output, never to the process's stdout -------
  const groupIndent = { n: 0 };
  const line = (name: string) => (...args: unknown[]) => {
    const text = formatArgs(args);
    const pad = "  ".repeat(groupIndent.n);
    write(name, (pad ? text.split("\n").map((l) => pad + l).join("\n") : text) + "\n");
  };
  const counts = new Map<string, number>();
  const timers = new Map<string, number>();
  const console_ = {
    log: line("stdout"),
    info: line("stdout"),
    debug: line("stdout"),
    warn: line("stderr"),
    error: line("stderr"),
    trace: (...args: unknown[]) => {
      const stack = (new Error().stack ?? "").split("\n").slice(2).filter((l) => !l.includes("blob:")).join("\n");
      line("stderr")(formatArgs(["Trace:", ...args]) + (stack ? "\n" + stack : ""));
    },
    dir: (v: unknown) => write("stdout", inspectValue(v) + "\n"),
    dirxml: (...args: unknown[]) => line("stdout")(...args),
    table: (data: unknown, columns?: string[]) => write("stdout", formatTable(data, columns) + "\n"),
    assert: (cond: unknown, ...args: unknown[]) => {
      if (!cond) line("stderr")(args.length ? formatArgs(["Assertion failed:", ...args]) : "Assertion failed");
    },
    count: (label = "default") => {
      const n = (counts.get(label) ?? 0) + 1;
      counts.set(label, n);
      line("stdout")(`${label}: ${n}`);
    },
    countReset: (label = "default") => counts.delete(label),
    time: (label = "default") => timers.set(label, now()),
    timeLog: (label = "default", ...args: unknown[]) => {
      const t = timers.get(label);
      line("stdout")(t === undefined ? `Timer '${label}' does not exist` : formatArgs([`${label}: ${Math.round(now() - t)}ms`, ...args]));
    },
    timeEnd: (label = "default") => {
      const t = timers.get(label);
      timers.delete(label);
      line("stdout")(t === undefined ? `Timer '${label}' does not exist` : `${label}: ${Math.round(now() - t)}ms`);
    },
    group: (...args: unknown[]) => {
      if (args.length) line("stdout")(...args);
      groupIndent.n++;
    },
    groupCollapsed: (...args: unknown[]) => console_.group(...args),
    groupEnd: () => {
      groupIndent.n = Math.max(0, groupIndent.n - 1);
    },
    clear: () => emit("clear_output", { wait: false }),
  };
  Object.defineProperty(scope, "console", { value: console_, writable: true, configurable: true, enumerable: false });
  const writer = (name: string) => {
    const dec = new TextDecoder();
    const writeSync = (p: Uint8Array) => {
      write(name, dec.decode(p, { stream: true }));
      return p.byteLength;
    };
    return {
      writeSync,
      write: (p: Uint8Array) => Promise.resolve(writeSync(p)),
      writable: new WritableStream<Uint8Array>({ write: (chunk) => void writeSync(chunk) }),
      isTerminal: () => false,
      close: () => {},
      [Symbol.dispose]: () => {},
    };
  };
  for (const name of ["stdout", "stderr"]) {
    try {
      Object.defineProperty(Deno, name, { value: writer(name), writable: true, configurable: true });
    } catch {
      // (kept Deno's own: output then goes by arrival)
    }
  }
  try {
    Object.defineProperty(Deno, "exit", {
      value: (code = 0) => {
        flush();
        post({ type: "exit", code: Number(code) || 0 });
        realExit(code);
      },
      writable: true,
      configurable: true,
    });
  } catch {
    // (Deno.exit then ends the worker only; the supervisor does not hear of it)
  }
  Object.defineProperty(scope, "close", {
    value: () => {
      throw new Error("close() would end the kernel's worker: use Deno.exit() to end the kernel");
    },
    writable: true,
    configurable: true,
  });

  // -- timers keep the run that started them, and their errors go to it ---------------------
  const report = (err: unknown, run: number | null) => {
    if (err instanceof KeyboardInterrupt && (run === null || !active.has(run))) return; // an interrupted run's leftovers
    flush();
    post({ type: "uncaught", run, error: serializeError(err) });
  };
  const wrap = (fn: any) => {
    if (typeof fn !== "function") return fn;
    const run = currentRun();
    return function (this: unknown, ...a: unknown[]) {
      try {
        return fn.apply(this, a);
      } catch (err) {
        report(err, run);
      }
    };
  };
  const timer = (real: any) => (fn: any, ms?: number, ...args: unknown[]) => real(wrap(fn), ms, ...args);
  Object.defineProperty(scope, "setTimeout", { value: timer(realSetTimeout), writable: true, configurable: true });
  Object.defineProperty(scope, "setInterval", { value: timer(realSetInterval), writable: true, configurable: true });
  addListener("error", (e: any) => {
    e.preventDefault();
    report(e.error ?? e.message, currentRun());
  });
  addListener("unhandledrejection", (e: any) => {
    e.preventDefault();
    report(e.reason, currentRun());
  });

  // -- what the transformed cells call (transform.ts) ---------------------------------------
  const fixed = (name: string, value: unknown) =>
    Object.defineProperty(scope, name, { value, writable: false, enumerable: false, configurable: false });
  fixed("__kk$g", scope);
  // A loop checkpoint found the flag non-zero: bit 1 is the supervisor's interrupt.
  fixed("__kk$i", () => {
    const f = Atomics.load(flag, 0);
    if (f & 1) throw new KeyboardInterrupt();
    if (f & 2 && (!pending || now() - pending.since > 50)) flush();
  });
  fixed("__kk$a", (v: unknown) => {
    if ((Atomics.load(flag, 0) & 1) !== 0 || als.getStore()?.cancelled) throw new KeyboardInterrupt();
    return v;
  });
  const resolveSpecifier = (spec: string) => {
    if (!/^\.{0,2}\//.test(spec)) return spec;
    if (cwdUrl === null) {
      throw new TypeError(`cannot import ${JSON.stringify(spec)}: relative imports need read permission (--allow-read)`);
    }
    return new URL(spec, cwdUrl).href;
  };
  fixed("__kk$import", async (spec: unknown, options?: unknown, names?: string[]) => {
    const builtin = Object.hasOwn(builtinModules, String(spec)) ? builtinModules[String(spec)] : undefined;
    const mod = builtin ? await builtin() : await import(resolveSpecifier(String(spec)), options as any);
    for (const n of names ?? []) {
      if (!(n in mod)) throw new SyntaxError(`The requested module '${String(spec)}' does not provide an export named '${n}'`);
    }
    return mod;
  });
  const meta = {
    get url() {
      return cwdUrl ?? "file:///";
    },
    main: false,
    resolve: (spec: string) => resolveSpecifier(spec),
    get filename() {
      return cwdUrl ? decodeURIComponent(new URL(cwdUrl).pathname) + "<cell>" : undefined;
    },
    get dirname() {
      return cwdUrl ? decodeURIComponent(new URL(cwdUrl).pathname).replace(/\/$/, "") : undefined;
    },
  };
  fixed("__kk$meta", meta);

  /** Make each name a writable global before a cell assigns it (its "declaration"). */
  const declare = (names: string[]) => {
    for (const name of names) {
      const d = Object.getOwnPropertyDescriptor(scope, name);
      if (d === undefined) {
        Object.defineProperty(scope, name, { value: undefined, writable: true, enumerable: true, configurable: true });
      } else if (!("value" in d) || !d.writable) {
        if (!d.configurable) throw new TypeError(`Cannot declare '${name}': the global '${name}' is read-only`);
        Object.defineProperty(scope, name, { value: undefined, writable: true, enumerable: true, configurable: true });
      }
    }
  };

  // -- display ----------------------------------------------------------------------------
  const send = (bundle: any, options: any = {}) => {
    const transient = options.display_id !== undefined ? { display_id: String(options.display_id) } : {};
    const params = { data: bundle, metadata: options.metadata ?? {}, transient };
    emit(options.update ? "update_display_data" : "display_data", params);
  };
  const newDisplayId = () => crypto.randomUUID().replaceAll("-", "");
  /** display(value, {display_id, update, raw, metadata}): a handle back when it has an id. */
  const display = (value: unknown, options: any = {}) => {
    const opts = { ...options };
    if (opts.display_id === true) opts.display_id = newDisplayId();
    const handle = opts.display_id === undefined ? undefined : {
      display_id: opts.display_id,
      display: (v: unknown, o: any = {}) => display(v, { ...o, display_id: opts.display_id }),
      update: (v: unknown, o: any = {}) => display(v, { ...o, display_id: opts.display_id, update: true }),
    };
    const bundle = bundleFor(value, !!opts.raw);
    if (bundle instanceof Promise) return bundle.then((b) => (send(b, opts), handle));
    send(bundle, opts);
    return handle;
  };
  const html = taggedTemplate("text/html");
  const md = taggedTemplate("text/markdown");
  const svg = taggedTemplate("image/svg+xml");
  /** Deno.jupyter.broadcast(msgType, content, {metadata, buffers}): the message types we carry. */
  // deno-lint-ignore require-await
  const broadcast = async (msgType: string, content: any = {}, extra: any = {}) => {
    // (async as in Deno: a message type we cannot carry rejects the promise)
    switch (msgType) {
      case "display_data":
      case "update_display_data":
        emit(msgType, { data: content.data ?? {}, metadata: content.metadata ?? extra.metadata ?? {}, transient: content.transient ?? {} });
        return;
      case "stream":
        write(content.name === "stderr" ? "stderr" : "stdout", String(content.text ?? ""));
        return;
      case "clear_output":
        emit("clear_output", { wait: !!content.wait });
        return;
      case "comm_open":
      case "comm_msg":
      case "comm_close":
        denoComm.broadcast(msgType, content, extra);
        return;
      default:
        throw new TypeError(`Deno.jupyter.broadcast: unsupported message type '${msgType}'`);
    }
  };
  const jupyter = {
    display: async (value: unknown, options: any = {}) => {
      const opts = { ...options };
      const bundle = await bundleFor(value, !!opts.raw);
      send(bundle, opts);
    },
    broadcast,
    comm: denoComm.comm,
    format: async (value: unknown) => await formatValue(value),
    html,
    md,
    svg,
    image: imageDisplayable,
    $display: Symbol.for("Jupyter.display"),
  };
  Object.defineProperty(Deno, "jupyter", { value: jupyter, writable: true, configurable: true, enumerable: true });

  // -- stdin ----------------------------------------------------------------------------------
  /** prompt(), confirm(), alert(): synchronous, as in a browser: the worker waits for the answer. */
  const askSync = (text: string, password: boolean): string => {
    flush();
    if (ioBuffer === null) throw new Error("input is not available");
    Atomics.store(ioState, 0, 0);
    post({ type: "input", run: currentRun(), sync: true, prompt: text, password });
    Atomics.wait(ioState, 0, 0);
    const state = Atomics.load(ioState, 0);
    const bytes = new Uint8Array(ioBuffer, 8, ioState[1]).slice();
    const answer = decoder.decode(bytes);
    if (state === 1) return answer;
    const e = JSON.parse(answer);
    if (e.name === "KeyboardInterrupt") throw new KeyboardInterrupt();
    throw Object.assign(new Error(e.message), { name: e.name });
  };
  const askAsync = (text: string, password: boolean): Promise<string> => {
    flush();
    const rid = ++nextRequest;
    post({ type: "input", run: currentRun(), sync: false, rid, prompt: text, password });
    return new Promise((resolve, reject) => waiting.set(rid, { resolve, reject }));
  };
  const globals: Record<string, unknown> = {
    display,
    html,
    md,
    svg,
    image: imageDisplayable,
    displayable,
    KeyboardInterrupt,
    /** await input("Name? "): a line from the user, over Jupyter's stdin channel. */
    input: (text = "", options: any = {}) => askAsync(String(text), !!options.password),
    prompt: (message = "Prompt", defaultValue = "", options: any = {}) => {
      const answer = askSync(defaultValue ? `${message} [${defaultValue}] ` : `${message} `, !!options.password);
      return answer === "" ? (defaultValue || "") : answer;
    },
    confirm: (message = "Confirm") => /^y(es)?$/i.test(askSync(`${message} [y/N] `, false).trim()),
    alert: (message = "Alert") => {
      askSync(`${message} [Enter] `, false);
    },
  };
  for (const [name, value] of Object.entries(globals)) {
    Object.defineProperty(scope, name, { value, writable: true, configurable: true, enumerable: false });
  }

  // -- running cells ----------------------------------------------------------------------------
  const runCell = async (msg: any) => {
    const token: any = { id: msg.run, cancelled: false };
    const interrupted = new Promise((_, reject) => (token.reject = reject));
    interrupted.catch(() => {});
    active.set(msg.run, token);
    let done: Record<string, unknown>;
    try {
      declare(msg.declared);
      const promise = als.run(token, () => (0, eval)(msg.script));
      const ret: any = await Promise.race([promise, interrupted]);
      if (msg.hasResult && !msg.silent && ret && ret.value !== undefined) {
        const bundle = await als.run(token, () => formatValue(ret.value));
        emit("execute_result", { data: bundle, metadata: {} }, msg.run);
      }
      done = { status: "ok", user_expressions: evaluateAll(msg.userExpressions ?? {}) };
    } catch (err) {
      done = { status: "error", error: serializeError(err) };
    } finally {
      active.delete(msg.run);
    }
    // The run's own waiting text rides in its "done" (one message, not two: the supervisor
    // sends it just before the reply); anyone else's goes out first, as ever.
    let out: { name: string; text: string } | undefined;
    if (pending && pending.run === msg.run && pending.text) {
      out = { name: pending.name, text: pending.text };
      pending = null;
      lastFlush = now();
    }
    flush();
    post({ type: "done", run: msg.run, out, ...done });
  };
  const evaluateAll = (expressions: Record<string, string>) => {
    const out: Record<string, unknown> = {};
    for (const [name, js] of Object.entries(expressions)) {
      try {
        const value = (0, eval)(js);
        const bundle = formatValue(value);
        out[name] = { status: "ok", data: bundle instanceof Promise ? { "text/plain": inspectValue(value) } : bundle, metadata: {} };
      } catch (err) {
        const e = serializeError(err);
        out[name] = { status: "error", ename: e.name, evalue: e.message, traceback: [`${e.name}: ${e.message}`] };
      }
    }
    return out;
  };

  const onMessage = (msg: any) => {
    switch (msg.type) {
      case "run":
        runCell(msg);
        return;
      case "comm-in": {
        // A frontend comm message (a click, a slider moved): its callbacks run as that
        // message's own "run", so what they print is output of the comm message.
        const token = { id: msg.run, cancelled: false };
        const finish = (error?: unknown) => {
          flush();
          post({ type: "comm-done", run: msg.run, ...(error === undefined ? {} : { error: serializeError(error) }) });
        };
        als.run(token, () => commsApi.receive(msg.op, msg.params)).then(() => finish(), finish);
        return;
      }
      case "interrupt":
        // We are here, so no cell is in a synchronous loop: the interrupt is delivered.
        Atomics.and(flag, 0, ~1);
        for (const token of active.values()) {
          token.cancelled = true;
          token.reject(new KeyboardInterrupt());
        }
        for (const [rid, w] of waiting) {
          waiting.delete(rid);
          w.reject(new KeyboardInterrupt());
        }
        post({ type: "interrupted" });
        return;
      case "input-reply": {
        const w = waiting.get(msg.rid);
        if (!w) return;
        waiting.delete(msg.rid);
        if (msg.ok) w.resolve(msg.value);
        else if (msg.error.name === "KeyboardInterrupt") w.reject(new KeyboardInterrupt());
        else w.reject(Object.assign(new Error(msg.error.message), { name: msg.error.name }));
        return;
      }
      case "complete": {
        let names: [string, string][] = [];
        if (msg.path === null) names = memberNames(scope);
        else {
          const found = valueAt(msg.path);
          if (found.found) names = memberNames(found.value);
        }
        post({ type: "answer", rid: msg.rid, value: names });
        return;
      }
      case "inspect": {
        const found = valueAt(msg.path);
        post({ type: "answer", rid: msg.rid, value: found.found ? describeValue(found.value) : null });
        return;
      }
    }
  };

  addListener("message", (event: any) => {
    const msg = event.data;
    if (msg.type !== "init") {
      if (channel) channel.posted(msg);
      else early.push(msg);
      return;
    }
    flag = new Int32Array(msg.flag);
    fixed("__kk$f", flag);
    ioBuffer = msg.io;
    ioState = new Int32Array(msg.io, 0, 2);
    widgetsSource = typeof msg.widgets === "string" ? msg.widgets : null;
    try {
      cwdUrl = "file://" + Deno.cwd().split("/").map(encodeURIComponent).join("/").replace(/\/?$/, "/");
    } catch {
      cwdUrl = null; // no read permission: relative imports cannot work anyway
    }
    channel = messageChannel(msg.toSupervisor, msg.toWorker, postRaw, onMessage, msg.ringBytes);
    for (const m of early.splice(0)) channel.posted(m);
    post({ type: "ready" });
  });
}
