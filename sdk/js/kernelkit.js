// @ts-self-types="./kernelkit.d.ts"
/**
 * kernelkit backend SDK for JavaScript and TypeScript: one dependency-free ES module
 * that runs unchanged on Deno and Node.js. It speaks the kernelkit bridge protocol
 * (docs/bridge-protocol.md): JSON-RPC 2.0, one JSON object per line on stdin/stdout.
 *
 *   import { serve } from "./kernelkit.js";
 *   serve({ info: {...}, execute({ code, silent }, ctx) { if (!silent) ctx.stream("stdout", code); } });
 */

export const BRIDGE_PROTOCOL_VERSION = "1.1";

const isDeno = typeof globalThis.Deno !== "undefined";
const encoder = new TextEncoder();

/** Write one protocol message as a line on stdout, whole and in order. */
function send(obj) {
  const line = JSON.stringify(obj) + "\n";
  if (isDeno) {
    const bytes = encoder.encode(line);
    let written = 0;
    while (written < bytes.length) {
      written += globalThis.Deno.stdout.writeSync(bytes.subarray(written));
    }
  } else {
    // On Linux, writes to a pipe are synchronous in Node, so order is kept.
    globalThis.process.stdout.write(line);
  }
}

function exit(code) {
  if (isDeno) globalThis.Deno.exit(code);
  else globalThis.process.exit(code);
}

/** Call onLine for each line of stdin; onEnd when stdin closes. */
async function readLines(onLine, onEnd) {
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
    const buf = new Uint8Array(1 << 16);
    for (;;) {
      const n = await globalThis.Deno.stdin.read(buf);
      if (n === null) break;
      feed(decoder.decode(buf.subarray(0, n), { stream: true }));
    }
    onEnd();
  } else {
    const stdin = globalThis.process.stdin;
    stdin.setEncoding("utf8");
    stdin.on("data", feed);
    stdin.on("end", onEnd);
  }
}

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

/**
 * Serve a backend: answer the host's requests with the backend's methods until the
 * host says shutdown or closes stdin.
 */
export function serve(backend) {
  let nextId = 0;
  const waiting = new Map(); // our requests to the host (input) by id
  // Executes running now, by request id: { abort: AbortController, done: boolean }. More
  // than one only for a backend whose info says subshells: true (protocol 1.1).
  const running = new Map();

  const finish = (id, result) => {
    const run = running.get(id);
    if (run) {
      if (run.done) return; // already answered (interrupted)
      running.delete(id);
    }
    send({ jsonrpc: "2.0", id, result });
  };

  // An interrupt is for the whole kernel: every running execute ends.
  const interrupt = () => {
    if (running.size === 0) return;
    for (const [id, run] of running) {
      run.abort.abort();
      run.done = true;
      send({ jsonrpc: "2.0", id, result: errorContent(new Interrupted()) });
    }
    running.clear();
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
      stream: (name, text) => notify("stream", { name, text: String(text) }),
      print: (text) => notify("stream", { name: "stdout", text: String(text) + "\n" }),
      display: (data, metadata = {}, transient = {}) =>
        notify("display_data", { data, metadata, transient }),
      updateDisplay: (data, displayId, metadata = {}) =>
        notify("update_display_data", { data, metadata, transient: { display_id: displayId } }),
      clearOutput: (wait = false) => notify("clear_output", { wait }),
      result: (data, metadata = {}) => notify("execute_result", { data, metadata }),
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
    const handler = handlers[msg.method];
    if (!handler) {
      send({ jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: `unknown method ${msg.method}` } });
      return;
    }
    const abort = new AbortController();
    if (msg.method === "execute") running.set(msg.id, { abort, done: false });
    let result;
    try {
      result = await handler(msg.params ?? {}, abort, msg.id);
      if (msg.method !== "execute" && msg.method !== "initialize" && msg.method !== "shutdown") {
        result = { status: "ok", ...result };
      }
    } catch (err) {
      result = errorContent(err);
    }
    finish(msg.id, result);
    if (msg.method === "shutdown") exit(0);
  };

  readLines(
    (line) => {
      let msg;
      try {
        msg = JSON.parse(line);
      } catch (err) {
        send({ jsonrpc: "2.0", id: null, error: { code: -32700, message: `parse error: ${err.message}` } });
        return;
      }
      onMessage(msg).catch((err) => {
        send({ jsonrpc: "2.0", id: msg.id ?? null, error: { code: -32603, message: String(err) } });
      });
    },
    () => exit(0),
  );
}
