// The worker as the supervisor runs it (runtime.ts built into a blob), for the unit tests:
// its messages kept in an inbox, `next(type)` to wait for one, `cell(code)` to run a cell,
// `send(msg)` for any other message (through the channel, as the supervisor sends them).
import { compileCell } from "../../src/kernelkit/typescript/transform.ts";
import { connectWorker, workerSource } from "../../src/kernelkit/typescript/supervisor.ts";
import { deps } from "./deps.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

export async function startWorker(widgets?: string) {
  const url = URL.createObjectURL(new Blob([workerSource()], { type: "application/javascript" }));
  const worker = new Worker(url, { type: "module" });
  const inbox: Any[] = [];
  let wake = () => {};
  const receive = (msg: Any) => {
    if (Deno.env.get("KK_TS_DEBUG")) console.log(msg);
    inbox.push(msg);
    wake();
  };
  const { channel, rings } = connectWorker(worker, receive);
  const next = async (type: string): Promise<Any> => {
    for (;;) {
      const i = inbox.findIndex((m) => m.type === type);
      if (i >= 0) return inbox.splice(i, 1)[0];
      await new Promise<void>((r) => (wake = r));
    }
  };
  const flag = new Int32Array(new SharedArrayBuffer(16));
  worker.postMessage({ type: "init", flag: flag.buffer, io: new SharedArrayBuffer(64), widgets, ...rings });
  await next("ready");
  let run = 0;
  const cell = (code: string) => {
    const c = compileCell(code, String(++run), deps);
    channel.send({ type: "run", run, script: c.script, declared: c.declared, hasResult: c.hasResult, silent: false });
  };
  /** As the supervisor sends: comm-in by postMessage (its buffers are bytes), the rest by the ring. */
  const send = (msg: Any) => channel.send(msg, msg.type === "comm-in");
  return { worker, inbox, next, cell, flag, send, close: () => channel.close() };
}
