/**
 * Comms and widgets in the worker (the cells' side).
 *
 * The worker has a comm manager with the JS SDK's API (kernelkit.js `comms`: registerTarget,
 * unregisterTarget, open, get, list; Comm send/close/onMsg/onClose). It does not write the
 * bridge protocol itself: every comm operation is posted to the supervisor, which does it with
 * the SDK's own `comms` on the main thread, and the frontend's comm messages come back here as
 * `comm-in` messages. So the SDK's widget helper, sdk/js/widgets.js, runs here unchanged: the
 * worker loads its text (which the supervisor passes in) as a blob module whose
 * `import { comms } from "./kernelkit.js"` is pointed at a shim module re-exporting this
 * manager. A cell gets it with `import { IntSlider } from "kernelkit:widgets"`.
 *
 * Like runtime.ts, every function here is copied into the worker's source by its text: each is
 * a self-contained function declaration using only globals and its arguments.
 */

// deno-lint-ignore-file no-explicit-any

/** The worker's comm manager: `post` goes to the supervisor, `flush` sends waiting stream text. */
export function workerComms(post: (msg: any) => void, flush: () => void, currentRun: () => number | null): any {
  const targets = new Map<string, (comm: any, msg: any) => unknown>();
  const open = new Map<string, any>();
  const listeners = new WeakMap<any, { msg: any[]; close: any[]; closed: boolean }>();
  const describe = (v: unknown) =>
    v === null ? "null" : Array.isArray(v) ? "an array" : typeof v === "object" ? `a ${(v as any).constructor?.name ?? "object"}` : `the ${typeof v} ${String(v)}`;
  const objectArg = (v: unknown, what: string) => {
    if (v === undefined) return {};
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new TypeError(`${what} must be an object, not ${describe(v)}`);
    return v;
  };
  const stringArg = (v: unknown, what: string) => {
    if (typeof v !== "string" || v === "") throw new TypeError(`${what} must be a non-empty string, not ${describe(v)}`);
    return v;
  };
  const bytes = (buffers: unknown) => {
    if (buffers === undefined || buffers === null) return [];
    if (!Array.isArray(buffers)) throw new TypeError(`buffers must be an array, not ${describe(buffers)}`);
    return buffers.map((b, i) => {
      if (b instanceof ArrayBuffer) return new Uint8Array(b.slice(0));
      if (ArrayBuffer.isView(b)) return new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice();
      throw new TypeError(`buffers[${i}] must be a Uint8Array, ArrayBuffer or ArrayBufferView, not ${describe(b)}`);
    });
  };
  // Posted in order with the cell's output (waiting stream text goes first); structured
  // cloning checks the data here, so a value that cannot be sent fails in the caller.
  const out = (op: string, params: Record<string, unknown>) => {
    flush();
    post({ type: "comm", op, run: currentRun(), params });
  };
  const forget = (comm: any) => {
    listeners.get(comm)!.closed = true;
    if (open.get(comm.commId) === comm) open.delete(comm.commId);
  };
  const listen = (comm: any, kind: "msg" | "close", cb: unknown) => {
    if (typeof cb !== "function") throw new TypeError(`the callback must be a function, not ${describe(cb)}`);
    const list = listeners.get(comm)![kind];
    list.push(cb);
    return () => {
      const i = list.indexOf(cb);
      if (i >= 0) list.splice(i, 1);
    };
  };

  class Comm {
    commId: string;
    targetName: string;
    constructor(commId: string, targetName: string) {
      this.commId = commId;
      this.targetName = targetName;
      listeners.set(this, { msg: [], close: [], closed: false });
    }
    get closed(): boolean {
      return listeners.get(this)!.closed;
    }
    send(data: unknown = {}, { metadata, buffers }: any = {}): void {
      if (this.closed) throw new Error(`comm ${this.commId} (target '${this.targetName}') is closed`);
      out("msg", { comm_id: this.commId, data: objectArg(data, "data"), metadata: objectArg(metadata, "metadata"), buffers: bytes(buffers) });
    }
    close(data: unknown = {}, { metadata, buffers }: any = {}): void {
      if (this.closed) return;
      const params = { comm_id: this.commId, data: objectArg(data, "data"), metadata: objectArg(metadata, "metadata"), buffers: bytes(buffers) };
      forget(this);
      out("close", params);
    }
    onMsg(cb: unknown): () => void {
      return listen(this, "msg", cb);
    }
    onClose(cb: unknown): () => void {
      return listen(this, "close", cb);
    }
  }

  const manager = {
    registerTarget(name: unknown, handler: unknown): void {
      stringArg(name, "the target name");
      if (typeof handler !== "function") throw new TypeError(`the handler of target '${name}' must be a function, not ${describe(handler)}`);
      const known = targets.has(name as string);
      targets.set(name as string, handler as any);
      if (!known) out("register", { target_name: name });
    },
    unregisterTarget(name: string): void {
      if (targets.delete(name)) out("unregister", { target_name: name });
    },
    open(targetName: unknown, data: unknown = {}, { metadata, buffers, commId, targetModule }: any = {}): Comm {
      stringArg(targetName, "the target name");
      const id = commId === undefined ? crypto.randomUUID().replaceAll("-", "") : stringArg(commId, "commId");
      if (open.has(id)) throw new Error(`comm ${id} is already open`);
      const params: Record<string, unknown> = {
        comm_id: id, target_name: targetName, data: objectArg(data, "data"), metadata: objectArg(metadata, "metadata"),
        buffers: bytes(buffers),
      };
      if (targetModule !== undefined && targetModule !== null) params.target_module = stringArg(targetModule, "targetModule");
      out("open", params);
      const comm = new Comm(id, targetName as string);
      open.set(id, comm);
      return comm;
    },
    get(commId: string): Comm | undefined {
      return open.get(commId);
    },
    list(): Comm[] {
      return [...open.values()];
    },
  };

  /** Every callback runs; the first error is thrown after them (as the SDK does). */
  const callEach = async (callbacks: any[], args: unknown[]) => {
    let failed = false;
    let first: unknown;
    for (const cb of [...callbacks]) {
      try {
        await cb(...args);
      } catch (err) {
        if (!failed) [failed, first] = [true, err];
      }
    }
    if (failed) throw first;
  };

  /** A frontend comm message, forwarded by the supervisor; what it throws is the host's error. */
  const receive = async (op: string, p: any): Promise<void> => {
    const msg = { commId: p.comm_id, data: p.data ?? {}, metadata: p.metadata ?? {}, buffers: p.buffers ?? [] };
    if (op === "open") {
      const handler = targets.get(p.target_name);
      if (!handler) throw new Error(`no comm target '${p.target_name}' is registered`);
      if (open.has(p.comm_id)) throw new Error(`comm ${p.comm_id} is already open`);
      const comm = new Comm(p.comm_id, p.target_name);
      open.set(p.comm_id, comm);
      try {
        await callEach([handler], [comm, msg]);
      } catch (err) {
        forget(comm);
        throw err;
      }
      return;
    }
    const comm = open.get(p.comm_id);
    if (!comm) throw new Error(`no comm ${p.comm_id} is open`);
    if (op === "close") {
      forget(comm);
      await callEach(listeners.get(comm)!.close, [msg]);
    } else {
      await callEach(listeners.get(comm)!.msg, [msg]);
    }
  };

  /** The supervisor closed a comm (the frontend is gone with it): no callback, no message. */
  const dropped = (commId: string) => {
    const comm = open.get(commId);
    if (comm) forget(comm);
  };

  return { manager, receive, dropped };
}

/**
 * Deno.jupyter's comm part, as Deno's own kernel has it: broadcast("comm_open" | "comm_msg" |
 * "comm_close", content, { metadata, buffers }) and comm(commId, targetName, cb) for the
 * messages of a comm opened that way (cb gets { comm_id, data, metadata, buffers }).
 */
export function denoComms(manager: any): any {
  const callbacks = new Map<string, ((msg: any) => void)[]>();
  const attach = (comm: any) => {
    for (const cb of callbacks.get(comm.commId) ?? []) {
      comm.onMsg((m: any) => cb({ comm_id: m.commId, data: m.data, metadata: m.metadata, buffers: m.buffers }));
    }
    callbacks.delete(comm.commId);
  };
  const broadcast = (msgType: string, content: any, extra: any) => {
    const id = content?.comm_id;
    if (typeof id !== "string" || id === "") throw new TypeError(`Deno.jupyter.broadcast: ${msgType} needs a comm_id (a string)`);
    const options = { metadata: extra.metadata ?? content.metadata, buffers: extra.buffers };
    if (msgType === "comm_open") {
      attach(manager.open(content.target_name, content.data ?? {}, { ...options, commId: id, targetModule: content.target_module }));
      return;
    }
    const comm = manager.get(id);
    if (!comm) throw new Error(`Deno.jupyter.broadcast: no comm ${id} is open`);
    if (msgType === "comm_msg") comm.send(content.data ?? {}, options);
    else comm.close(content.data ?? {}, options);
  };
  const comm = (commId: string, targetName: string, cb?: (msg: any) => void) => {
    if (typeof cb === "function") {
      callbacks.set(commId, [...(callbacks.get(commId) ?? []), cb]);
      const known = manager.get(commId);
      if (known) attach(known);
    }
    return {
      send: (data: unknown, buffers: unknown[] = []) => {
        const c = manager.get(commId);
        if (!c) throw new Error(`comm ${commId} (target '${targetName}') is not open`);
        c.send(data, { buffers });
        return Promise.resolve();
      },
      close: () => manager.get(commId)?.close(),
    };
  };
  return { broadcast, comm };
}

/**
 * The widget module: sdk/js/widgets.js's text as a blob module whose import of the SDK is a
 * shim re-exporting the worker's comm manager (under a global symbol, as a blob module cannot
 * see our variables).
 */
export function widgetsModuleUrl(source: string, manager: any): string {
  const key = Symbol.for("kernelkit.worker.comms");
  Object.defineProperty(globalThis, key, { value: manager, configurable: true, enumerable: false, writable: false });
  const blob = (text: string) => URL.createObjectURL(new Blob([text], { type: "application/javascript" }));
  const shim = blob(`export const comms = globalThis[Symbol.for("kernelkit.worker.comms")];\nexport const BRIDGE_PROTOCOL_VERSION = "1.2";\n`);
  const pattern = /from\s*(["'])\.\/kernelkit\.js\1/g;
  const found = source.match(pattern)?.length ?? 0;
  if (found !== 1) throw new Error(`kernelkit:widgets: widgets.js has ${found} imports of ./kernelkit.js, expected 1`);
  return blob(source.replace(pattern, `from ${JSON.stringify(shim)}`));
}
