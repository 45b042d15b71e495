// A bridge backend with comms (protocol 1.2) for tests/test_js_comms.py; runs on Deno and Node.
// Targets: "echo" (from serve's commTargets) and "early" (registerTarget before serve) answer
// each message with {echo: data} and the same buffers, print "got <data>" as the message's
// output, close from their side when data.close is set and throw when data.boom is set;
// "refuse" throws in its open handler. Cell commands:
//   open TARGET JSON     open a comm from the backend (metadata {m: 1}, one buffer 1,2,3); prints its id
//   send ID JSON         send on it, with one buffer 4,5
//   later ID             send {late: true} 300 ms after the cell has finished
//   close ID             close it from the backend's side
//   register NAME / unregister NAME      a target like "echo", announced after initialize
//   list                 the ids of the open comms, one a line
//   log                  what the comm handlers saw, as JSON (buffers as arrays of bytes)
//   sleep S              prints "started", waits S seconds
//   raise                throws a TypeError
import { comms, serve } from "../../src/kernelkit/sdk/js/kernelkit.js";

const log = [];
const bytes = (buffers) => buffers.map((b) => [...b]);

function echoing(comm, msg, ctx) {
  log.push({ kind: "open", comm: comm.commId, target: comm.targetName, data: msg.data, buffers: bytes(msg.buffers) });
  comm.onMsg((m, mctx) => {
    if (!(m.buffers.every((b) => b instanceof Uint8Array))) throw new TypeError("buffers are not Uint8Arrays");
    log.push({ kind: "msg", comm: m.commId, data: m.data, metadata: m.metadata, buffers: bytes(m.buffers) });
    if (m.data.boom) throw new Error("boom in onMsg");
    mctx.print(`got ${JSON.stringify(m.data)}`);
    comm.send({ echo: m.data }, { buffers: m.buffers, metadata: { echoed: true } });
    if (m.data.close) comm.close({ closing: true });
  });
  comm.onClose((m) => log.push({ kind: "close", comm: m.commId, data: m.data, buffers: bytes(m.buffers) }));
  if (msg.data.greet) ctx.print(`opened ${comm.targetName}`);
}

comms.registerTarget("early", echoing);
comms.registerTarget("refuse", () => {
  throw new TypeError("refused by handler");
});

function mine(id) {
  const comm = comms.get(id);
  if (!comm) throw new Error(`no comm ${id}`);
  return comm;
}

serve({
  info: {
    implementation: "comms-js", implementation_version: "1.0",
    language_info: { name: "commands", mimetype: "text/plain", file_extension: ".txt" },
    banner: "comms test backend",
    subshells: true,
  },
  commTargets: { echo: echoing },
  async execute({ code }, ctx) {
    const [cmd, a = "", ...rest] = code.trim().split(" ");
    const json = rest.length ? JSON.parse(rest.join(" ")) : {};
    if (cmd === "open") {
      const comm = ctx.comms.open(a, json, { metadata: { m: 1 }, buffers: [new Uint8Array([1, 2, 3])] });
      comm.onMsg((m) => log.push({ kind: "msg", comm: m.commId, data: m.data, buffers: bytes(m.buffers) }));
      comm.onClose((m) => log.push({ kind: "close", comm: m.commId, data: m.data, buffers: bytes(m.buffers) }));
      ctx.print(comm.commId);
    } else if (cmd === "send") {
      mine(a).send(JSON.parse(rest.join(" ") || "{}"), { buffers: [new Uint8Array([4, 5]).buffer] });
    } else if (cmd === "later") {
      const comm = mine(a);
      setTimeout(() => comm.send({ late: true }), 300);
    } else if (cmd === "close") {
      mine(a).close({ bye: true });
    } else if (cmd === "register") {
      comms.registerTarget(a, echoing);
    } else if (cmd === "unregister") {
      comms.unregisterTarget(a);
    } else if (cmd === "list") {
      for (const comm of comms.list()) ctx.print(`${comm.commId} ${comm.targetName}`);
    } else if (cmd === "log") {
      ctx.print(JSON.stringify(log));
    } else if (cmd === "sleep") {
      ctx.print("started");
      await new Promise((resolve) => setTimeout(resolve, Number(a) * 1000));
      ctx.print(`slept ${a}`);
    } else if (cmd === "raise") {
      throw new TypeError("raised on purpose");
    } else {
      ctx.print(`unknown command ${cmd}`);
    }
  },
});
