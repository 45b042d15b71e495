// @ts-self-types="./kernelkit.d.ts"
/**
 * kernelkit backend SDK for JavaScript and TypeScript: one dependency-free ES module
 * that runs unchanged on Deno and Node.js. It speaks the kernelkit bridge protocol
 * (docs/bridge-protocol.md): JSON-RPC 2.0, one JSON object per line on stdin/stdout.
 *
 *   import { serve } from "./kernelkit.js";
 *   serve({ info: {...}, execute({ code, silent }, ctx) { if (!silent) ctx.stream("stdout", code); } });
 *
 * Comms (protocol 1.2) are the module-level `comms` (also `ctx.comms`); the Jupyter widget
 * helper built on them is widgets.js.
 *
 * (Why ~660 lines in one file: a backend copies it and imports it with no bundler, on Deno
 * and on Node, so the line I/O, the request loop and the comms stay one module.)
 */

export const BRIDGE_PROTOCOL_VERSION = "1.2";

const isDeno = typeof globalThis.Deno !== "undefined";
const encoder = new TextEncoder();

/** Write one protocol message as a line on stdout, whole and in order. */
function send(obj) {
  writeLine(JSON.stringify(obj));
}

// Deno: a line is UTF-8-encoded into slices of one kept buffer and written slice by slice
// (TextEncoder.encodeInto), so a line of many MB is never a second copy of itself as a
// Uint8Array (nor a third, with its newline appended as a string): 10 MB of stream output
// is encoded and written in about two thirds of the time, with little left for the GC.
const OUT_SLICE = 1 << 20;
let outBuf; // made at the first line that needs it

function writeAllSync(bytes) {
  let written = 0;
  while (written < bytes.length) written += globalThis.Deno.stdout.writeSync(bytes.subarray(written));
}

/** Write `text` (one JSON message, no newline) and a newline. */
function writeLine(text) {
  if (!isDeno) {
    // On Linux, writes to a pipe are synchronous in Node, so order is kept.
    globalThis.process.stdout.write(text + "\n");
    return;
  }
  if (text.length < 4096) {
    writeAllSync(encoder.encode(text + "\n")); // small: one encode is cheapest
    return;
  }
  outBuf ??= new Uint8Array(OUT_SLICE);
  let rest = text;
  for (;;) {
    // encodeInto stops before a character that does not fit (never splits a surrogate pair)
    // and reads only what it writes, so the slices of `text` cost nothing to take.
    const { read, written } = encoder.encodeInto(rest, outBuf.subarray(0, OUT_SLICE - 1));
    if (read === rest.length) {
      outBuf[written] = 0x0a; // the newline rides in the last slice
      writeAllSync(outBuf.subarray(0, written + 1));
      return;
    }
    writeAllSync(outBuf.subarray(0, written));
    rest = rest.slice(read);
  }
}

function exit(code) {
  if (isDeno) globalThis.Deno.exit(code);
  else globalThis.process.exit(code);
}

/**
 * Call onLine for each line of stdin; onEnd when stdin closes.
 *
 * `settle` (Deno, `serve({ syncStdin: true })`): after each chunk, readLines awaits
 * `settle()`, which resolves true once every request it started has been answered without
 * waiting for I/O, false if one still waits. The next read is then a synchronous
 * `Deno.stdin.readSync`, which blocks the thread until the host writes, instead of an
 * asynchronous read, whose wake-up goes through the event loop; while a request waits for
 * I/O (input, a timer, an interrupt message) reads stay asynchronous.
 */
async function readLines(onLine, onEnd, settle) {
  const decoder = new TextDecoder();
  let buffer = "";
  const feed = (text) => {
    // Look for newlines in the new text only: a long line arrives in many chunks.
    let i = text.indexOf("\n");
    if (i < 0) {
      buffer += text;
      return;
    }
    let start = 0;
    let head = buffer;
    buffer = "";
    while (i >= 0) {
      const line = head + text.slice(start, i);
      head = "";
      if (line.trim()) onLine(line);
      start = i + 1;
      i = text.indexOf("\n", start);
    }
    buffer = text.slice(start);
  };
  if (isDeno) {
    // Deno.stdin.read straight into one buffer: lighter per line than the stream API.
    const stdin = globalThis.Deno.stdin;
    const buf = new Uint8Array(IN_CHUNK);
    let sync = settle !== undefined;
    // (Not blocking inside serve() itself: the code after the serve() call runs first.)
    if (sync) await null;
    for (;;) {
      let n;
      if (sync) {
        try {
          n = stdin.readSync(buf);
        } catch (err) {
          // (e.g. stdin is non-blocking: WouldBlock) then asynchronous reads, as without it
          if (err?.name !== "WouldBlock" && err?.name !== "Interrupted") throw err;
          settle = undefined;
          n = await stdin.read(buf);
        }
      } else {
        n = await stdin.read(buf);
      }
      if (n === null) break;
      feed(decoder.decode(buf.subarray(0, n), { stream: true }));
      if (settle !== undefined) sync = await settle();
    }
    onEnd();
  } else {
    const stdin = globalThis.process.stdin;
    stdin.setEncoding("utf8");
    stdin.on("data", feed);
    stdin.on("end", onEnd);
  }
}

// Bytes read from stdin at a time (Deno): a 10 MB request line comes in 10 reads, not 160.
const IN_CHUNK = 1 << 20;

function onSigint(handler) {
  if (isDeno) globalThis.Deno.addSignalListener("SIGINT", handler);
  else globalThis.process.on("SIGINT", handler);
}

/** The error triple of a Jupyter error reply, from anything thrown. */
export function errorContent(err) {
  if (err instanceof Error) {
    const stack = typeof err.stack === "string" ? err.stack.split("\n") : [];
    return {
      status: "error",
      ename: err.name || "Error",
      evalue: err.message ?? "",
      traceback: stack.length ? stack : [`${err.name}: ${err.message}`],
    };
  }
  return { status: "error", ename: "Error", evalue: String(err), traceback: [String(err)] };
}

class Interrupted extends Error {
  constructor() {
    super("interrupted");
    this.name = "KeyboardInterrupt";
  }
}

// -- comms (bridge protocol 1.2) ---------------------------------------------------------

/**
 * The host request whose handler is running synchronously right now, if any. Comm
 * notifications name it, so that the host gives them that request's parent even when
 * several requests are in flight (subshells); a widget's echo must have the parent of the
 * frontend message it answers. Code that runs after an `await` (or in a timer) finds none
 * here and its notifications go untagged: the host then uses the request that is running.
 */
let currentRequest;

function withRequest(id, fn) {
  const saved = currentRequest;
  currentRequest = id;
  try {
    return fn();
  } finally {
    currentRequest = saved;
  }
}

function describe(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? `a ${value.constructor?.name ?? "object"}` : `the ${typeof value} ${String(value)}`;
}

function toBase64(bytes) {
  if (typeof bytes.toBase64 === "function") return bytes.toBase64();
  if (typeof globalThis.Buffer === "function") {
    return globalThis.Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  }
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

function fromBase64(text, i) {
  if (typeof text !== "string") throw new TypeError(`buffers[${i}] must be a base64 string, not ${describe(text)}`);
  if (typeof Uint8Array.fromBase64 === "function") return Uint8Array.fromBase64(text);
  if (typeof globalThis.Buffer === "function") {
    const b = globalThis.Buffer.from(text, "base64");
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

function bytesOf(buffer, i) {
  if (buffer instanceof Uint8Array) return buffer;
  if (buffer instanceof ArrayBuffer || (typeof SharedArrayBuffer === "function" && buffer instanceof SharedArrayBuffer)) {
    return new Uint8Array(buffer);
  }
  if (ArrayBuffer.isView(buffer)) return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  throw new TypeError(`buffers[${i}] must be a Uint8Array, ArrayBuffer or ArrayBufferView, not ${describe(buffer)}`);
}

function encodeBuffers(buffers) {
  if (buffers === undefined || buffers === null) return [];
  if (!Array.isArray(buffers)) throw new TypeError(`buffers must be an array, not ${describe(buffers)}`);
  return buffers.map((b, i) => toBase64(bytesOf(b, i)));
}

function objectArg(value, what) {
  if (value === undefined) return {};
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new TypeError(`${what} must be an object, not ${describe(value)}`);
  }
  return value;
}

function stringArg(value, what) {
  if (typeof value !== "string" || value === "") throw new TypeError(`${what} must be a non-empty string, not ${describe(value)}`);
  return value;
}

const targets = new Map(); // target name -> handler
const openComms = new Map(); // comm id -> Comm
const commListeners = new WeakMap(); // Comm -> { msg: [], close: [], closed: boolean }
// Until the host has our initialize result, targets go into it and comm notifications wait
// here (a comm opened at start-up, before serve()), so the host hears of them in order.
let announced = false;
const early = []; // lines, serialized at once: a value JSON cannot take fails the caller

function notifyComm(method, params) {
  const message = { jsonrpc: "2.0", method, params: currentRequest === undefined ? params : { ...params, request: currentRequest } };
  if (announced) send(message);
  else early.push(JSON.stringify(message));
}

/** A random UUID (version 4) as 32 hex digits, as ipykernel makes comm ids. */
function newCommId() {
  if (typeof globalThis.crypto?.randomUUID === "function") return globalThis.crypto.randomUUID().replaceAll("-", "");
  const bytes = new Uint8Array(16).map(() => Math.floor(Math.random() * 256)); // (no Web Crypto)
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function forget(comm) {
  commListeners.get(comm).closed = true;
  if (openComms.get(comm.commId) === comm) openComms.delete(comm.commId);
}

/** A comm: one end of a channel between the backend and the frontend (Jupyter comms). */
export class Comm {
  constructor(commId, targetName) {
    this.commId = commId;
    this.targetName = targetName;
    commListeners.set(this, { msg: [], close: [], closed: false });
  }

  /** True once either side has closed it; it cannot be used again. */
  get closed() {
    return commListeners.get(this).closed;
  }

  send(data = {}, { metadata, buffers } = {}) {
    if (this.closed) throw new Error(`comm ${this.commId} (target '${this.targetName}') is closed`);
    notifyComm("comm_msg", {
      comm_id: this.commId, data: objectArg(data, "data"), metadata: objectArg(metadata, "metadata"),
      buffers: encodeBuffers(buffers),
    });
  }

  /** Close it from the backend's side (the frontend gets comm_close). Closing twice does nothing. */
  close(data = {}, { metadata, buffers } = {}) {
    if (this.closed) return;
    const params = {
      comm_id: this.commId, data: objectArg(data, "data"), metadata: objectArg(metadata, "metadata"),
      buffers: encodeBuffers(buffers),
    };
    forget(this);
    notifyComm("comm_close", params);
  }

  /** Call cb(msg, ctx) for each message from the frontend; returns a function that removes it. */
  onMsg(cb) {
    return listen(this, "msg", cb);
  }

  /** Call cb(msg, ctx) when the frontend closes the comm (or refuses it). */
  onClose(cb) {
    return listen(this, "close", cb);
  }
}

function listen(comm, kind, cb) {
  if (typeof cb !== "function") throw new TypeError(`the callback must be a function, not ${describe(cb)}`);
  const list = commListeners.get(comm)[kind];
  list.push(cb);
  return () => {
    const i = list.indexOf(cb);
    if (i >= 0) list.splice(i, 1);
  };
}

/** The backend's comms and comm targets: one per process, as the backend is. */
class CommManager {
  /** Accept frontend comms to `name`: handler(comm, msg, ctx) runs on each comm_open. */
  registerTarget(name, handler) {
    stringArg(name, "the target name");
    if (typeof handler !== "function") throw new TypeError(`the handler of target '${name}' must be a function, not ${describe(handler)}`);
    const known = targets.has(name);
    targets.set(name, handler);
    if (announced && !known) send({ jsonrpc: "2.0", method: "comm_register_target", params: { target_name: name } });
  }

  unregisterTarget(name) {
    if (targets.delete(name) && announced) {
      send({ jsonrpc: "2.0", method: "comm_unregister_target", params: { target_name: name } });
    }
  }

  /** Open a comm from the backend to the frontend's target `targetName`. */
  open(targetName, data = {}, { metadata, buffers, commId, targetModule } = {}) {
    stringArg(targetName, "the target name");
    const id = commId === undefined ? newCommId() : stringArg(commId, "commId");
    if (openComms.has(id)) throw new Error(`comm ${id} is already open`);
    const params = {
      comm_id: id, target_name: targetName, data: objectArg(data, "data"),
      metadata: objectArg(metadata, "metadata"), buffers: encodeBuffers(buffers),
    };
    if (targetModule !== undefined && targetModule !== null) params.target_module = stringArg(targetModule, "targetModule");
    const comm = new Comm(id, targetName);
    openComms.set(id, comm);
    notifyComm("comm_open", params);
    return comm;
  }

  get(commId) {
    return openComms.get(commId);
  }

  /** The comms open now. */
  list() {
    return [...openComms.values()];
  }
}

/** The backend's comms (also `ctx.comms`). */
export const comms = new CommManager();

/** Call each callback in turn, tagged with the request; every one runs, the first error is thrown. */
async function callEach(callbacks, request, args) {
  let failed = false;
  let first;
  for (const cb of [...callbacks]) {
    try {
      await withRequest(request, () => cb(...args));
    } catch (err) {
      if (!failed) [failed, first] = [true, err];
    }
  }
  if (failed) throw first;
}

function commMessage(params) {
  const buffers = params.buffers ?? [];
  if (!Array.isArray(buffers)) throw new TypeError(`buffers must be an array, not ${describe(buffers)}`);
  return {
    commId: params.comm_id,
    data: objectArg(params.data ?? {}, "data"),
    metadata: objectArg(params.metadata ?? {}, "metadata"),
    buffers: buffers.map(fromBase64),
  };
}

function openComm(params) {
  const id = stringArg(params.comm_id, "comm_id");
  const comm = openComms.get(id);
  if (!comm) throw new Error(`no comm ${id} is open`);
  return comm;
}

// The host's comm requests: the frontend's comm messages. What they throw becomes an error
// response, which the host logs (and, for comm_open, answers by closing the comm).
const hostComm = {
  comm_open: async (params, ctx, request) => {
    const id = stringArg(params.comm_id, "comm_id");
    const name = stringArg(params.target_name, "target_name");
    const handler = targets.get(name);
    if (!handler) throw new Error(`no comm target '${name}' is registered`);
    if (openComms.has(id)) throw new Error(`comm ${id} is already open`);
    const msg = commMessage(params);
    const comm = new Comm(id, name);
    openComms.set(id, comm);
    try {
      await callEach([handler], request, [comm, msg, ctx]);
    } catch (err) {
      forget(comm); // refused: the host closes it on the frontend's side
      throw err;
    }
    return {};
  },
  comm_msg: async (params, ctx, request) => {
    const comm = openComm(params);
    await callEach(commListeners.get(comm).msg, request, [commMessage(params), ctx]);
    return {};
  },
  comm_close: async (params, ctx, request) => {
    const comm = openComm(params);
    forget(comm); // closed on both sides now, whatever follows
    const msg = commMessage(params);
    await callEach(commListeners.get(comm).close, request, [msg, ctx]);
    return {};
  },
};

/** A widget (or anything with a mimebundle() method) shown as its MIME bundle. */
function bundleOf(data) {
  return data !== null && typeof data === "object" && typeof data.mimebundle === "function" ? data.mimebundle() : data;
}

/** serve({ syncStdin: true }) is refused where it cannot keep interrupts working. */
function checkSyncStdin(backend) {
  if (!isDeno) {
    throw new Error("serve({ syncStdin: true }) works on Deno only (it reads stdin with Deno.stdin.readSync); leave it out on Node.js");
  }
  const mode = backend.info?.interrupt_mode ?? "signal";
  if (mode !== "message") {
    throw new Error(`serve({ syncStdin: true }) needs info.interrupt_mode "message", not ${JSON.stringify(mode)}: a SIGINT that arrives while the backend blocks in a synchronous read of stdin would be seen only once the next request had started`);
  }
}

/**
 * Serve a backend: answer the host's requests with the backend's methods until the
 * host says shutdown or closes stdin.
 */
export function serve(backend) {
  if (backend.syncStdin) checkSyncStdin(backend);
  let track = (_promise) => {}; // syncStdin: counts the requests in flight (below)
  for (const [name, handler] of Object.entries(backend.commTargets ?? {})) comms.registerTarget(name, handler);
  let nextId = 0;
  const waiting = new Map(); // our requests to the host (input) by id
  // Executes running now, by request id: { abort: AbortController, done: boolean }. More
  // than one only for a backend whose info says subshells: true (protocol 1.1).
  const running = new Map();

  const finish = (id, result) => {
    const run = running.get(id);
    if (run) {
      running.delete(id);
      if (run.done) return; // already answered (interrupted)
    }
    send({ jsonrpc: "2.0", id, result });
  };

  // An interrupt is for the whole kernel: every running execute ends. The SDK answers
  // each with KeyboardInterrupt at once (its code may never look at ctx.signal), and
  // drops the answer the execute gives later (a run stays in `running`, done, until
  // then). A backend whose `answersInterrupts` is true answers them itself, e.g. with the
  // traceback of where the interrupt hit: then the SDK only aborts ctx.signal.
  const interrupt = () => {
    if (running.size === 0) return;
    for (const [id, run] of running) {
      if (run.done) continue;
      run.abort.abort();
      if (backend.answersInterrupts) continue;
      run.done = true;
      send({ jsonrpc: "2.0", id, result: errorContent(new Interrupted()) });
    }
    for (const [rid, w] of waiting) {
      w.reject(new Interrupted());
      waiting.delete(rid);
    }
  };
  onSigint(interrupt);

  const requestHost = (method, params) =>
    new Promise((resolve, reject) => {
      const id = `b${++nextId}`;
      waiting.set(id, { resolve, reject });
      send({ jsonrpc: "2.0", id, method, params });
    });

  // Output and input name the request they belong to, so that the host can tell
  // concurrent requests apart.
  const context = (abort, request) => {
    const notify = (method, params) => send({ jsonrpc: "2.0", method, params: { ...params, request } });
    return {
      signal: abort.signal,
      comms,
      within: (fn) => withRequest(request, fn),
      stream: (name, text) => notify("stream", { name, text: String(text) }),
      print: (text) => notify("stream", { name: "stdout", text: String(text) + "\n" }),
      display: (data, metadata = {}, transient = {}) =>
        notify("display_data", { data: bundleOf(data), metadata, transient }),
      updateDisplay: (data, displayId, metadata = {}) =>
        notify("update_display_data", { data: bundleOf(data), metadata, transient: { display_id: displayId } }),
      clearOutput: (wait = false) => notify("clear_output", { wait }),
      result: (data, metadata = {}) => notify("execute_result", { data: bundleOf(data), metadata }),
      input: (prompt = "") =>
        requestHost("input", { prompt: String(prompt), password: false, request }).then((r) => r.value),
      getpass: (prompt = "") =>
        requestHost("input", { prompt: String(prompt), password: true, request }).then((r) => r.value),
    };
  };

  const defaults = {
    complete: ({ cursor_pos }) => ({ matches: [], cursor_start: cursor_pos, cursor_end: cursor_pos, metadata: {} }),
    inspect: () => ({ found: false, data: {}, metadata: {} }),
    is_complete: () => ({ status: "unknown" }),
    history: () => ({ history: [] }),
  };

  const handlers = {
    initialize: () => ({
      implementation: "kernelkit-js",
      implementation_version: "0.0",
      banner: "",
      help_links: [],
      interrupt_mode: "signal",
      ...backend.info,
    }),
    execute: async (params, abort, id) => {
      const reply = await backend.execute(params, context(abort, id));
      return { status: "ok", user_expressions: {}, payload: [], ...(reply ?? {}) };
    },
    complete: (p) => (backend.complete ?? defaults.complete)(p),
    inspect: (p) => (backend.inspect ?? defaults.inspect)(p),
    is_complete: (p) => (backend.is_complete ?? defaults.is_complete)(p),
    history: (p) => (backend.history ?? defaults.history)(p),
    shutdown: async (p) => {
      if (backend.shutdown) await backend.shutdown(p);
      return { status: "ok", restart: !!p.restart };
    },
  };
  for (const [method, handle] of Object.entries(hostComm)) {
    handlers[method] = (params, abort, id) => handle(params, context(abort, id), id);
  }

  const onMessage = async (msg) => {
    if (msg.method === undefined) {
      // A response to one of our requests (input).
      const w = waiting.get(msg.id);
      if (!w) return;
      waiting.delete(msg.id);
      if (msg.error) w.reject(Object.assign(new Error(msg.error.message), { name: msg.error.data?.ename ?? "InputError" }));
      else w.resolve(msg.result);
      return;
    }
    if (msg.id === undefined) {
      if (msg.method === "interrupt") interrupt();
      return; // other notifications are ignored
    }
    const handler = Object.hasOwn(handlers, msg.method) ? handlers[msg.method] : undefined;
    if (!handler) {
      send({ jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: `unknown method ${msg.method}` } });
      return;
    }
    const abort = new AbortController();
    if (msg.method === "execute") running.set(msg.id, { abort, done: false });
    const isComm = Object.hasOwn(hostComm, msg.method); // answered as is: {} is "accepted"
    let result;
    try {
      // The handler's synchronous part runs tagged with this request (see currentRequest).
      result = await withRequest(msg.id, () => handler(msg.params ?? {}, abort, msg.id));
      if (!isComm && msg.method !== "execute" && msg.method !== "initialize" && msg.method !== "shutdown") {
        result = { status: "ok", ...result };
      }
    } catch (err) {
      if (isComm) {
        // An error response: the host logs it (and closes a refused comm_open).
        const content = errorContent(err);
        const where = msg.params?.comm_id === undefined ? "" : ` (comm ${msg.params.comm_id})`;
        send({ jsonrpc: "2.0", id: msg.id, error: { code: -32000, message: `${msg.method}${where}: ${content.ename}: ${content.evalue}`, data: content } });
        return;
      }
      result = errorContent(err);
    }
    if (msg.method === "initialize") {
      // Our targets as they are at this moment; later ones are announced by notification.
      const names = new Set([...(Array.isArray(result.comm_targets) ? result.comm_targets : []), ...targets.keys()]);
      result = { ...result, comm_targets: [...names] };
      finish(msg.id, result);
      announced = true;
      for (const line of early.splice(0)) writeLine(line);
      return;
    }
    finish(msg.id, result);
    if (msg.method === "shutdown") exit(0);
  };

  // syncStdin (Deno, opt-in): requests read with a blocking read of stdin when none is
  // waiting for I/O (see readLines). Then nothing runs between requests: a timer, an interval
  // or a SIGINT listener waits until the next line comes. Interrupts must therefore come as
  // messages, read in order with the requests; a SIGINT that came while the backend was
  // blocked would be seen only after the next request had started, and interrupt it.
  let settle;
  if (backend.syncStdin) {
    let inFlight = 0;
    let onSettled;
    const settled = () => {
      if (--inFlight === 0 && onSettled !== undefined) onSettled(true);
    };
    track = (promise) => {
      inFlight += 1;
      promise.then(settled, settled);
    };
    // True once every request read so far has been answered by promise jobs alone; false
    // as soon as the event loop has to turn (one has to wait for I/O or a timer).
    settle = () => {
      if (inFlight === 0) return true;
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          onSettled = undefined;
          resolve(false);
        }, 0);
        onSettled = (value) => {
          onSettled = undefined;
          clearTimeout(timer);
          resolve(value);
        };
      });
    };
  }

  readLines(
    (line) => {
      let msg;
      try {
        msg = JSON.parse(line);
      } catch (err) {
        send({ jsonrpc: "2.0", id: null, error: { code: -32700, message: `parse error: ${err.message}` } });
        return;
      }
      track(onMessage(msg).catch((err) => {
        send({ jsonrpc: "2.0", id: msg.id ?? null, error: { code: -32603, message: String(err) } });
      }));
    },
    () => exit(0),
    settle,
  );
}
