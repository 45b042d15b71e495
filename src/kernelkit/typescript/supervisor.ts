/**
 * (Why ~750 lines: most of it is one class, Session, whose methods share the queues, the
 * worker and its runs; the compiler is transform.ts and the worker runtime.ts already.)
 *
 * The TypeScript kernel's supervisor: the main thread of the backend process. It speaks the
 * bridge protocol (through the JS SDK's serve()), compiles cells (transform.ts), and runs
 * them in a worker (runtime.ts) that it can interrupt without losing the session.
 *
 * Interrupts: the kernel says `interrupt_mode: "message"`, so the host interrupts with a
 * notification on stdin, read by the SDK on this thread whatever the worker does. The SDK
 * aborts ctx.signal (we answer interrupted executes ourselves: `answersInterrupts`); we then
 * set the shared flag that the cell's loops check and post an `interrupt` message that ends
 * an awaiting cell, whose KeyboardInterrupt then has the cell's own line in its traceback.
 * The worker acknowledges when it is back in its event loop. If it does not within GRACE_MS
 * (it is in a loop without checkpoints: a library's, or code made by `new Function`), the
 * worker is ended and a fresh one started, the cell is answered that the session was
 * restarted, and the next cell says so too. GRACE_MS is below the host's 2 s grace.
 * Cells wait in a queue, so the next one runs only once the worker is ready again.
 * Messages to and from the worker go through channel.ts (a shared ring, for speed).
 *
 * Subshells (JEP 91, bridge protocol 1.1): the kernel claims them, so the host may send a
 * subshell's cell, and JupyterLab its widget messages, while a cell of the main shell runs.
 * Each shell keeps its own queue; all cells run in the one worker, so they share every
 * variable, and they interleave as async code does: a subshell's cell runs while the main
 * cell awaits (a timer, a fetch, input()), not during a synchronous loop, which holds the
 * worker's only thread until it ends or is interrupted (an interrupt is for the whole
 * kernel: every running cell ends). Their output goes to each one's own request.
 */

// deno-lint-ignore-file no-explicit-any
import { type Context, serve } from "./sdk.ts";
import { CellSyntaxError, type Compiled, compileCell, type Declaration, type Deps, cellPosition,
  needsTypeScript, type PositionMap, stripTypes, type Transpiler, unpackModule } from "./transform.ts";
import * as display from "./display.ts";
import * as runtime from "./runtime.ts";
import * as channels from "./channel.ts";
import * as widgetsRuntime from "./widgets_runtime.ts";
import { type Comm, comms as sdkComms, widgetsSource } from "./widgets_host.ts";
import { completionContext, historyReply, type HistoryEntry, isComplete, KEYWORDS, nameAt,
  NODE_BUILTINS, toCodePoints, toUtf16 } from "./introspect.ts";

export const VERSION = "0.1.0";
/** How long an interrupted worker has to get back to its event loop before it is replaced. */
export const GRACE_MS = 1500;
/** How long completion and inspection wait for a busy worker. */
const LOOKUP_MS = 500;
/** Finished runs whose late output can still be sent as theirs (the host then logs it). */
const RETAINED_RUNS = 64;
const MAX_INPUT_BYTES = 64 << 20;

/** The worker's source: the text of the functions of runtime.ts, display.ts, widgets_runtime.ts and channel.ts (see runtime.ts). */
export function workerSource(): string {
  const functions = [...Object.values(display), ...Object.values(widgetsRuntime), ...Object.values(channels), ...Object.values(runtime)]
    .filter((v) => typeof v === "function");
  return `import { AsyncLocalStorage } from "node:async_hooks";\n${functions.map(String).join("\n\n")}\nworkerMain();\n`;
}

/** The supervisor's end of a new worker's channel (channel.ts), and the rings its `init`
 * message must carry. `handle` gets every message of the worker's, in order. */
export function connectWorker(worker: Worker, handle: (msg: any) => void): {
  channel: ReturnType<typeof channels.messageChannel>;
  rings: { toWorker: SharedArrayBuffer; toSupervisor: SharedArrayBuffer; ringBytes: number };
} {
  const toWorker = new SharedArrayBuffer(channels.RING_HEADER + channels.RING_BYTES);
  const toSupervisor = new SharedArrayBuffer(channels.RING_HEADER + channels.RING_BYTES);
  const channel = channels.messageChannel(toWorker, toSupervisor, (data) => worker.postMessage(data), handle,
    channels.RING_BYTES);
  // (a message with no sequence number is one the worker sent before it had the channel)
  worker.onmessage = (e) => (e.data?.seq === undefined ? handle(e.data) : channel.posted(e.data));
  return { channel, rings: { toWorker, toSupervisor, ringBytes: channels.RING_BYTES } };
}

interface Run {
  id: number;
  ctx: Context;
  finished: boolean;
  resolve: (reply: Record<string, unknown>) => void;
  /** A silent execute: the spec asks for no output on IOPub at all, so it is dropped. */
  silent?: boolean;
}

type Reply = Record<string, unknown>;

/** The traceback of an error the worker reported: cell frames mapped back, ours dropped. */
export function formatError(e: Record<string, any>, maps: Map<string, PositionMap>): Reply {
  const name = String(e.name ?? "Error");
  const message = String(e.message ?? "");
  const lines = String(e.stack ?? "").split("\n");
  const first = lines.findIndex((l) => /^\s+at /.test(l));
  const head = first < 0 ? [`${name}${message ? ": " + message : ""}`] : lines.slice(0, first);
  const raw = first < 0 ? [] : lines.slice(first);
  // Below the outermost cell frame is only our machinery calling the cell: drop Deno's frames there.
  let lastCell = -1;
  raw.forEach((l, i) => {
    if (l.includes("<cell-")) lastCell = i;
  });
  const frames = raw.filter((l, i) => lastCell < 0 || i <= lastCell || !l.includes("(ext:")).flatMap((l) => {
    if (l.includes("blob:") || /^\s+at (async )?eval \(<anonymous>\)$/.test(l)) return [];
    const m = /^(\s+at )(.*?)\(?<cell-([\d.]+)>, <anonymous>:(\d+):(\d+)\)?$/.exec(l);
    if (!m) return [l];
    const cell = m[3];
    const map = maps.get(cell);
    const pos = map ? cellPosition(map, Number(m[4]), Number(m[5])) : { line: Number(m[4]) - 1, column: Number(m[5]) };
    if (pos.line < 1) return []; // the wrapper calling the cell
    let fn = m[2].trim();
    if (fn === "eval" || fn === "async eval") fn = fn.replace("eval", "").trim();
    const where = `<cell ${cell}>:${pos.line}:${pos.column}`;
    return [`${m[1]}${fn === "async" ? `async ${where}` : fn ? `${fn} (${where})` : where}`];
  });
  const traceback = [...head, ...frames];
  for (let c = e.cause; c; c = c.cause) {
    const inner = formatError(c, maps);
    traceback.push(`Caused by: ${(inner.traceback as string[]).join("\n")}`);
  }
  return { status: "error", ename: e.interrupted ? "KeyboardInterrupt" : name, evalue: message, traceback };
}

/** A syntax error, shown at its line of the cell with a caret, as Python shows one. */
export function syntaxErrorReply(err: CellSyntaxError, code: string, cell: string): Reply {
  const line = code.split("\n")[err.line - 1] ?? "";
  return {
    status: "error",
    ename: "SyntaxError",
    evalue: err.message,
    traceback: [`<cell ${cell}>:${err.line}:${err.column + 1}`, `  ${line}`, `  ${" ".repeat(err.column)}^`, `SyntaxError: ${err.message}`],
  };
}

class Session {
  worker!: Worker;
  /** To and from the current worker (channel.ts): a new one with each worker. */
  private channel!: ReturnType<typeof channels.messageChannel>;
  flag!: Int32Array;
  io!: SharedArrayBuffer;
  ioState!: Int32Array;
  ready!: Promise<void>;
  private markReady!: () => void;
  private runs = new Map<number, Run>();
  private retained: number[] = [];
  private lastCtx: Context | null = null;
  private nextRun = 0;
  /** The last cell of each shell, by subshell id ("" for the main shell): the next waits for it. */
  private queues = new Map<string, Promise<void>>();
  private watchdog: ReturnType<typeof setTimeout> | null = null;
  private notice: string | null = null;
  private lookups = new Map<number, (value: unknown) => void>();
  private nextLookup = 0;
  maps = new Map<string, PositionMap>();
  declarations = new Map<string, Declaration>();
  specifiers = new Set<string>();
  history: HistoryEntry[] = [];
  private names = new Map<string, number>();
  /** The worker's comms, as the SDK's Comm on this thread (opened by either side). */
  private commsOpen = new Map<string, Comm>();
  /** Comm targets the worker registered (with the SDK, which tells the host). */
  private commTargets = new Set<string>();
  /** Frontend comm messages the worker is handling, by their run id. */
  private commWaits = new Map<number, (error: Record<string, any> | null) => void>();

  /** The TypeScript compiler, imported by the first cell that needs it (needsTypeScript). */
  private typescript: Promise<Transpiler> | null = null;

  constructor(readonly deps: Promise<Deps>, readonly widgets: Promise<string | null> = Promise.resolve(null),
    readonly loadTypeScript: () => Promise<{ default: string }> = () => Promise.reject(new Error("not available"))) {}

  /** deps with the TypeScript compiler in it, loaded now if this is the first cell to need it. */
  async withTypeScript(deps: Deps): Promise<Deps> {
    if (deps.typescript) return deps;
    this.typescript ??= (async () => {
      // Its module looks for Node's `process` to pick a file system it does not need here
      // (it only transpiles), and would then ask for Node's CommonJS globals: it is told it
      // runs in a browser while it loads.
      const proc = (globalThis as any).process;
      const before = proc?.browser;
      if (proc) proc.browser = true;
      try {
        return await unpackModule((await this.loadTypeScript()).default) as Transpiler;
      } finally {
        if (proc) proc.browser = before;
      }
    })();
    const ts = await this.typescript.catch((err) => {
      this.typescript = null; // (the next such cell tries again)
      throw err;
    });
    deps.typescript = ts;
    return deps;
  }

  start(): void {
    this.flag = new Int32Array(new SharedArrayBuffer(16));
    this.io = new (SharedArrayBuffer as any)(4096, { maxByteLength: MAX_INPUT_BYTES + 8 });
    this.ioState = new Int32Array(this.io, 0, 2);
    this.ready = new Promise((resolve) => (this.markReady = resolve));
    const url = URL.createObjectURL(new Blob([workerSource()], { type: "application/javascript" }));
    const worker = new Worker(url, { type: "module" });
    this.worker = worker;
    const { channel, rings } = connectWorker(worker, (msg) => this.onMessage(msg));
    this.channel = channel;
    this.worker.onerror = (e) => {
      e.preventDefault();
      console.error(`kernelkit-typescript: worker error: ${e.message}`);
    };
    this.widgets.then((text) => {
      if (this.worker === worker) {
        worker.postMessage({ type: "init", flag: this.flag.buffer, io: this.io, widgets: text, ...rings });
      }
    });
  }

  /** End the worker and start a fresh one: every variable is lost, which the next cell says;
   * the runs in flight are answered `ename` (after an interrupt: KeyboardInterrupt). */
  restart(reason: string, ename = "KernelRestart"): void {
    this.worker.terminate();
    this.channel.close();
    if (this.watchdog !== null) clearTimeout(this.watchdog);
    this.watchdog = null;
    for (const run of this.runs.values()) {
      if (!run.finished) {
        run.finished = true;
        run.resolve({ status: "error", ename, evalue: reason, traceback: [`${ename}: ${reason}`] });
      }
    }
    this.runs.clear();
    this.retained = [];
    for (const resolve of this.lookups.values()) resolve(null);
    this.lookups.clear();
    this.closeComms(reason);
    this.notice = reason;
    this.start();
  }

  interrupt(): void {
    if (this.watchdog !== null) return; // one at a time
    Atomics.or(this.flag, 0, 1); // (bit 2 is the worker's: output waiting)
    this.channel.send({ type: "interrupt" });
    this.watchdog = setTimeout(() => {
      this.watchdog = null;
      this.restart(
        `the interrupted cell did not stop within ${GRACE_MS / 1000} s (it was running code without ` +
          "interrupt checkpoints, such as a library's loop), so the TypeScript session was restarted: " +
          "variables, functions and imports from earlier cells are gone",
        "KeyboardInterrupt",
      );
    }, GRACE_MS);
  }

  private onMessage(msg: Record<string, any>): void {
    switch (msg.type) {
      case "ready":
        this.markReady();
        return;
      case "out":
        this.output(msg.run, msg.method, msg.params);
        return;
      case "done": {
        const run = this.runs.get(msg.run);
        if (msg.out) this.output(msg.run, "stream", msg.out);
        if (!run || run.finished) return;
        run.finished = true;
        this.lastCtx = run.ctx;
        this.retained.push(run.id);
        while (this.retained.length > RETAINED_RUNS) this.runs.delete(this.retained.shift()!);
        if (msg.status === "ok") run.resolve({ status: "ok", user_expressions: msg.user_expressions ?? {} });
        else run.resolve(formatError(msg.error, this.maps));
        return;
      }
      case "interrupted":
        if (this.watchdog !== null) clearTimeout(this.watchdog);
        this.watchdog = null;
        return;
      case "uncaught": {
        const reply = formatError(msg.error, this.maps);
        const ctx = this.contextOf(msg.run);
        ctx?.stream("stderr", `Uncaught ${(reply.traceback as string[]).join("\n")}\n`);
        return;
      }
      case "input":
        this.input(msg);
        return;
      case "answer": {
        const resolve = this.lookups.get(msg.rid);
        this.lookups.delete(msg.rid);
        resolve?.(msg.value);
        return;
      }
      case "comm": {
        // As the run that did it (a cell, or a frontend comm message's callbacks): with
        // subshells, a widget's echo must go to the message it answers, not the cell running.
        const ctx = msg.run === null ? undefined : this.runs.get(msg.run)?.ctx;
        if (ctx) ctx.within(() => this.commOut(msg.op, msg.params));
        else this.commOut(msg.op, msg.params);
        return;
      }
      case "comm-done": {
        const run = this.runs.get(msg.run);
        if (run && !run.finished) {
          run.finished = true;
          this.retained.push(run.id);
          while (this.retained.length > RETAINED_RUNS) this.runs.delete(this.retained.shift()!);
        }
        const wait = this.commWaits.get(msg.run);
        this.commWaits.delete(msg.run);
        wait?.(msg.error ?? null);
        return;
      }
      case "exit":
        // Deno.exit() in a cell ends the kernel's process, as it does in `deno jupyter`.
        Deno.exit(msg.code);
    }
  }

  /** The context output of a run goes to: its own, even when finished (the host logs it then). */
  private contextOf(id: number | null): Context | null {
    const run = id === null ? undefined : this.runs.get(id);
    return run ? run.ctx : this.lastCtx;
  }

  private output(id: number | null, method: string, p: any): void {
    if (id !== null && this.runs.get(id)?.silent) return;
    const ctx = this.contextOf(id);
    if (!ctx) return; // output before any cell ran, from no cell: nowhere to show it
    switch (method) {
      case "stream":
        ctx.stream(p.name, p.text);
        break;
      case "display_data":
        ctx.display(p.data, p.metadata, p.transient);
        break;
      case "update_display_data":
        ctx.updateDisplay(p.data, p.transient?.display_id, p.metadata);
        break;
      case "clear_output":
        ctx.clearOutput(!!p.wait);
        break;
      case "execute_result":
        ctx.result(p.data, p.metadata);
        break;
    }
  }

  // -- comms: the worker's go out through the SDK's comms; the frontend's come back to it ----

  /** What the worker's comm manager did (widgets_runtime.ts), done with the SDK's comms. */
  private commOut(op: string, p: Record<string, any>): void {
    try {
      switch (op) {
        case "register": {
          const name = String(p.target_name);
          if (this.commTargets.has(name)) return;
          this.commTargets.add(name);
          sdkComms.registerTarget(name, async (comm, m, ctx) => {
            this.attach(comm);
            try {
              await this.commIn("open", comm, m, ctx);
            } catch (err) {
              this.commsOpen.delete(comm.commId); // refused: the SDK and the host close it
              throw err;
            }
          });
          return;
        }
        case "unregister":
          this.commTargets.delete(String(p.target_name));
          sdkComms.unregisterTarget(String(p.target_name));
          return;
        case "open":
          this.attach(sdkComms.open(p.target_name, p.data, {
            metadata: p.metadata, buffers: p.buffers, commId: p.comm_id, targetModule: p.target_module,
          }));
          return;
        case "msg": {
          // (one the frontend closed meanwhile: the worker hears of that next; dropped, as the host would)
          const comm = this.commsOpen.get(p.comm_id);
          if (comm && !comm.closed) comm.send(p.data, { metadata: p.metadata, buffers: p.buffers });
          return;
        }
        case "close": {
          const comm = this.commsOpen.get(p.comm_id);
          this.commsOpen.delete(p.comm_id);
          comm?.close(p.data, { metadata: p.metadata, buffers: p.buffers });
          return;
        }
      }
    } catch (err) {
      console.error(`kernelkit-typescript: comm ${op}: ${err}`);
    }
  }

  private attach(comm: Comm): void {
    this.commsOpen.set(comm.commId, comm);
    comm.onMsg((m, ctx) => this.commIn("msg", comm, m, ctx));
    comm.onClose((m, ctx) => {
      this.commsOpen.delete(comm.commId);
      return this.commIn("close", comm, m, ctx);
    });
  }

  /**
   * A frontend comm message, handled in the worker; resolves when its callbacks are done (so
   * that what they print is the comm message's output) and throws what they threw (the host
   * logs it). Without subshells the host sends these between cells, so they do not wait for
   * one; a callback that never returns holds the kernel as a cell would.
   */
  private async commIn(op: string, comm: Comm, m: Record<string, any>, ctx: Context): Promise<void> {
    await this.ready;
    const id = ++this.nextRun;
    const done = new Promise<Record<string, any> | null>((resolve) => this.commWaits.set(id, resolve));
    this.runs.set(id, { id, ctx, finished: false, resolve: () => {} });
    this.channel.send({
      type: "comm-in", run: id, op,
      params: { comm_id: comm.commId, target_name: comm.targetName, data: m.data, metadata: m.metadata, buffers: m.buffers },
    }, true); // (by postMessage: its buffers are bytes)
    const error = await done;
    if (error) {
      const reply = formatError(error, this.maps);
      throw Object.assign(new Error(String(reply.evalue)), { name: String(reply.ename), stack: (reply.traceback as string[]).join("\n") });
    }
  }

  /** The worker is gone: its comms are closed (the frontend's views disconnect), its targets dropped. */
  private closeComms(reason: string): void {
    for (const wait of this.commWaits.values()) wait({ name: "KernelRestart", message: reason, stack: "" });
    this.commWaits.clear();
    for (const comm of this.commsOpen.values()) {
      try {
        comm.close();
      } catch {
        // (closed meanwhile)
      }
    }
    this.commsOpen.clear();
    for (const name of this.commTargets) sdkComms.unregisterTarget(name);
    this.commTargets.clear();
  }

  private input(msg: any): void {
    const run = this.runs.get(msg.run);
    const answer = (ok: boolean, value: string | { name: string; message: string }) => {
      if (msg.sync) {
        let bytes = new TextEncoder().encode(ok ? String(value) : JSON.stringify(value));
        if (bytes.length > MAX_INPUT_BYTES) {
          ok = false;
          bytes = new TextEncoder().encode(JSON.stringify({ name: "ValueError", message: "the input is too long" }));
        }
            const io = this.io as any;
        if (io.byteLength < bytes.length + 8) io.grow(bytes.length + 8);
        new Uint8Array(this.io, 8, bytes.length).set(bytes);
        this.ioState[1] = bytes.length;
        Atomics.store(this.ioState, 0, ok ? 1 : 2);
        Atomics.notify(this.ioState, 0);
      } else {
        this.channel.send({ type: "input-reply", rid: msg.rid, ok, value, error: value });
      }
    };
    if (!run || run.finished) {
      answer(false, { name: "StdinNotImplementedError", message: "input(), prompt(), confirm() and alert() work only while their cell runs" });
      return;
    }
    const ask = msg.password ? run.ctx.getpass(msg.prompt) : run.ctx.input(msg.prompt);
    ask.then((value) => answer(true, value), (err: Error) => answer(false, { name: err?.name ?? "Error", message: err?.message ?? String(err) }));
  }

  /** Ask the worker; null if it does not answer soon (a cell in a loop) or cannot. */
  lookup(msg: Record<string, unknown>): Promise<unknown> {
    const rid = ++this.nextLookup;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.lookups.delete(rid);
        resolve(null);
      }, LOOKUP_MS);
      this.lookups.set(rid, (v) => {
        clearTimeout(timer);
        resolve(v);
      });
      this.channel.send({ ...msg, rid });
    });
  }

  /** The name a cell has in tracebacks: its execution count (silent ones get a suffix). */
  private cellName(count: number): string {
    const used = this.names.get(String(count)) ?? 0;
    this.names.set(String(count), used + 1);
    return used === 0 ? String(count) : `${count}.${used}`;
  }

  /** Executes in progress (the warm-up steps aside for them). */
  private executing = 0;
  get busy(): boolean {
    return this.executing > 0;
  }

  async execute(req: Record<string, any>, ctx: Context): Promise<Reply> {
    this.executing++;
    try {
      return await this.executeNow(req, ctx);
    } finally {
      this.executing--;
    }
  }

  private async executeNow(req: Record<string, any>, ctx: Context): Promise<Reply> {
    const shell = typeof req.subshell_id === "string" ? req.subshell_id : "";
    const previous = this.queues.get(shell) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    this.queues.set(shell, mine);
    try {
      await previous;
      let deps: Deps;
      try {
        deps = await this.deps;
      } catch (err) {
        return {
          status: "error", ename: "KernelSetupError", evalue: String(err),
          traceback: [`KernelSetupError: the TypeScript parser could not be loaded (${err}); run \`kernelkit install typescript\` again`],
        };
      }
      await this.ready;
      if (ctx.signal.aborted) return { status: "error", ename: "KeyboardInterrupt", evalue: "interrupted", traceback: [] };
      if (this.notice) {
        ctx.stream("stderr", `KernelRestart: ${this.notice}\n`);
        this.notice = null;
      }
      const code = String(req.code ?? "");
      const name = this.cellName(Number(req.execution_count ?? 0));
      if (req.store_history !== false && !req.silent) {
        this.history.push({ line: Number(req.execution_count), input: code, output: null });
      }
      if (needsTypeScript(code)) {
        try {
          deps = await this.withTypeScript(deps);
        } catch (err) {
          return {
            status: "error", ename: "KernelSetupError", evalue: String(err),
            traceback: [`KernelSetupError: this cell has decorators or a namespace, which need the TypeScript compiler, and it could not be loaded (${err}); run \`kernelkit install typescript\` again`],
          };
        }
      }
      let compiled: Compiled;
      try {
        compiled = compileCell(code, name, deps);
      } catch (err) {
        if (err instanceof CellSyntaxError) return syntaxErrorReply(err, code, name);
        throw err;
      }
      this.maps.set(name, compiled.map);
      for (const [n, d] of Object.entries(compiled.declarations)) this.declarations.set(n, d);
      for (const m of code.matchAll(/\bfrom\s*["']([^"'\n]+)["']|\bimport\s*\(\s*["']([^"'\n]+)["']/g)) {
        this.specifiers.add(m[1] ?? m[2]);
      }
      const userExpressions: Record<string, string> = {};
      for (const [k, expr] of Object.entries((req.user_expressions ?? {}) as Record<string, string>)) {
        try {
          userExpressions[k] = `(${stripTypes(String(expr), deps).code.replace(/;\s*$/, "")}\n)`;
        } catch {
          userExpressions[k] = JSON.stringify(String(expr)) + "; throw new SyntaxError('invalid expression')";
        }
      }
      const id = ++this.nextRun;
      const silent = !!req.silent;
      const done = new Promise<Reply>((resolve) => this.runs.set(id, { id, ctx, finished: false, resolve, silent }));
      const onAbort = () => this.interrupt();
      ctx.signal.addEventListener("abort", onAbort);
      this.channel.send({
        type: "run", run: id, script: compiled.script, declared: compiled.declared, hasResult: compiled.hasResult,
        silent: !!req.silent, userExpressions,
      });
      try {
        return await done;
      } finally {
        ctx.signal.removeEventListener("abort", onAbort);
      }
    } finally {
      release();
      if (this.queues.get(shell) === mine) this.queues.delete(shell); // (a deleted subshell's too)
    }
  }

  async complete(p: Record<string, any>): Promise<any> {
    const code = String(p.code ?? "");
    const cursor = toUtf16(code, Number(p.cursor_pos ?? code.length));
    const context = completionContext(code.slice(0, cursor));
    let names: [string, string][] = [];
    if (context.kind === "specifier") {
      names = this.specifierNames(context.prefix).map((n) => [n, "module"]);
    } else {
      const found = await this.lookup({ type: "complete", path: context.kind === "member" ? context.path : null });
      if (Array.isArray(found)) names = found as [string, string][];
      if (context.kind === "global") {
        const known = new Set(names.map(([n]) => n));
        for (const n of this.declarations.keys()) if (!known.has(n)) names.push([n, "instance"]);
        for (const k of KEYWORDS) if (!known.has(k)) names.push([k, "keyword"]);
      }
    }
    const prefix = context.prefix;
    const matches = names.filter(([n]) => n.startsWith(prefix)).sort(([a], [b]) => rank(a, prefix) - rank(b, prefix) || (a < b ? -1 : a > b ? 1 : 0));
    const start = cursor - prefix.length;
    const startCp = toCodePoints(code, start);
    const endCp = toCodePoints(code, cursor);
    return {
      matches: matches.map(([n]) => n),
      cursor_start: startCp,
      cursor_end: endCp,
      metadata: {
        _jupyter_types_experimental: matches.map(([text, type]) => ({ start: startCp, end: endCp, text, type })),
      },
    };
  }

  private specifierNames(prefix: string): string[] {
    const out = new Set<string>(["npm:", "jsr:", "node:", "kernelkit:widgets", "kernelkit:comms", ...NODE_BUILTINS.map((n) => `node:${n}`), ...this.specifiers]);
    if (/^\.{1,2}\//.test(prefix)) {
      const slash = prefix.lastIndexOf("/");
      const dir = prefix.slice(0, slash + 1);
      try {
        for (const entry of Deno.readDirSync(dir)) {
          if (entry.isDirectory) out.add(`${dir}${entry.name}/`);
          else if (/\.(m?[jt]sx?|json)$/.test(entry.name)) out.add(`${dir}${entry.name}`);
        }
      } catch {
        // (no read permission, or no such directory: nothing to add)
      }
    }
    return [...out];
  }

  async inspect(p: Record<string, any>): Promise<any> {
    const code = String(p.code ?? "");
    const cursor = toUtf16(code, Number(p.cursor_pos ?? code.length));
    const path = nameAt(code, cursor);
    if (!path) return { found: false, data: {}, metadata: {} };
    const decl = path.length === 1 ? this.declarations.get(path[0]) : undefined;
    const value = await this.lookup({ type: "inspect", path }) as Record<string, any> | null;
    if (!decl && !value) return { found: false, data: {}, metadata: {} };
    const lines: string[] = [];
    const type = value
      ? value.type === "function" ? (value.isClass ? "class" : "function") : value.constructor ? `${value.type} (${value.constructor})` : value.type
      : decl!.kind;
    if (decl?.signature) lines.push(`Signature: ${decl.signature}`);
    else if (value?.type === "function" && value.head) lines.push(`Signature: ${value.head}`);
    if (decl?.doc) lines.push(`Docstring: ${decl.doc}`);
    lines.push(`Type:      ${type}`);
    if (decl) lines.push(`Defined:   <cell ${decl.cell}>, line ${decl.line}`);
    if (value?.preview !== undefined && value.type !== "function") lines.push(`Value:     ${value.preview}`);
    if (Number(p.detail_level ?? 0) > 0 && decl) lines.push("Source:", decl.source);
    return { found: true, data: { "text/plain": lines.join("\n") }, metadata: {} };
  }

  shutdown(): void {
    this.worker?.terminate();
  }
}

/** Exact matches first, then names without a leading underscore. */
function rank(name: string, prefix: string): number {
  if (name === prefix) return 0;
  return name.startsWith("_") && !prefix.startsWith("_") ? 2 : 1;
}

/** The permission flags given to Deno, as passed by the kernelspec (for the banner). */
function denoFlags(): string {
  const arg = Deno.args.find((a) => a.startsWith("--deno-flags="));
  return arg ? arg.slice("--deno-flags=".length) : "";
}

/**
 * Cells the compiler is run on while the kernel is idle after it starts: V8 optimizes sucrase
 * and acorn only after many calls, and until then a small cell takes three to five times
 * as long to compile (measured here: 0.15 ms, then 0.05 ms after some hundreds of cells).
 * They are compiled, never run.
 */
const WARM_UP_CELLS = [
  'console.log("hello")',
  "const xs: number[] = [1, 2, 3];\nxs.map((x) => x * 2)",
  "function add(a: number, b: number): number {\n  return a + b;\n}\nadd(1, 2)",
  "interface P { x: number }\nclass Q implements P {\n  constructor(public x: number) {}\n}\nnew Q(1)",
  'import { join } from "node:path";\nlet s = `${join("a", "b")}`;\nfor (let i = 0; i < 3; i++) s += i;\nawait Promise.resolve(s)',
];
const WARM_UP_ROUNDS = 60;

/**
 * Compile the warm-up cells in slices while no cell runs; it ends for good once one does
 * (that cell and the next warm the compiler up themselves, and a long cell is not polled).
 */
function warmUp(deps: Deps, busy: () => boolean, round = 0): void {
  if (round >= WARM_UP_ROUNDS || busy()) return;
  for (const code of WARM_UP_CELLS) {
    try {
      compileCell(code, "warm-up", deps);
    } catch {
      return; // (a parser that fails here fails the first cell too, which says why)
    }
  }
  setTimeout(() => warmUp(deps, busy, round + 1), 0);
}

/** Start the kernel: `loadDeps` imports the bundle of sucrase and acorn (kernel.js passes it). */
export function main(loadDeps: () => Promise<Deps>, loadTypeScript?: () => Promise<{ default: string }>): void {
  // The parsers and the worker are loaded once `initialize` is answered, not before: the
  // host waits for that answer to start the kernel (start-up time), and they are needed only
  // by the first request after it. A cell that comes first waits for them.
  let start!: () => void;
  const started = new Promise<void>((resolve) => (start = resolve));
  // (a plain object, not the module: the TypeScript compiler is added to it when loaded)
  const deps = started.then(loadDeps).then((m): Deps => ({ transform: m.transform, parse: m.parse }));
  deps.catch(() => {}); // (reported by the first execute)
  const widgets = started.then(widgetsSource);
  const session = new Session(deps, widgets, loadTypeScript);
  started.then(() => session.start());
  deps.then((d) => warmUp(d, () => session.busy), () => {});
  const flags = denoFlags();
  let answered = false;
  const info = {
    implementation: "kernelkit-typescript",
    implementation_version: VERSION,
    language_version: Deno.version.typescript,
    language_info: {
      name: "typescript",
      version: Deno.version.typescript,
      mimetype: "text/typescript",
      file_extension: ".ts",
      codemirror_mode: "typescript",
      pygments_lexer: "typescript",
      nbconvert_exporter: "script",
    },
    banner: `TypeScript on Deno ${Deno.version.deno} (V8 ${Deno.version.v8}), through kernelkit; ` +
      `types are stripped, not checked.\nDeno flags: ${flags || "(none: no permissions)"}\n` +
      'Widgets: import { IntSlider, Button, Text, Output, AnyWidget } from "kernelkit:widgets"',
    help_links: [
      { text: "Deno manual", url: "https://docs.deno.com/runtime/" },
      { text: "TypeScript handbook", url: "https://www.typescriptlang.org/docs/handbook/" },
    ],
    interrupt_mode: "message" as const,
    subshells: true,
  };
  serve({
    answersInterrupts: true,
    get info() {
      // Read by the SDK to answer initialize: the heavy part starts just after that reply.
      if (!answered) {
        answered = true;
        setTimeout(start, 0);
      }
      return info;
    },
    execute: async (req: any, ctx: Context) => {
      start();
      await started;
      return session.execute(req, ctx);
    },
    complete: async (p: any) => {
      start();
      await started;
      return session.complete(p);
    },
    inspect: async (p: any) => {
      start();
      await started;
      return session.inspect(p);
    },
    is_complete: async (p: any) => {
      const code = String(p.code ?? "");
      const parsers = await deps;
      // (a decorated class is complete, not invalid: the compiler that runs it judges it)
      const judge = needsTypeScript(code) ? await session.withTypeScript(parsers).catch(() => parsers) : parsers;
      return isComplete(code, judge);
    },
    history: (p: any) => historyReply(session.history, p),
    shutdown: () => session.shutdown(),
  });
}
