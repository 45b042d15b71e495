// The JavaScript SDK's backend for tests/test_sdk_conformance.py (same as conformance_backend.py).
// "input P" asks for input, "error" throws, "wait" runs until interrupted ("wait started"
// prints "started" first), "later" prints "late" from a timer after its reply, "open" opens a
// comm to "conformance.out", sends on it and closes it, else echoes. Target "echo" answers
// each message with {echo: data} and the same buffers.
// CONFORMANCE_SUBSHELLS=0 in the environment: the one-request-at-a-time mode. The argument
// "sync" (Deno): serve({ syncStdin: true }), stdin read synchronously between requests.
import { comms, serve } from "../../src/kernelkit/sdk/js/kernelkit.js";

comms.registerTarget("echo", (comm) => {
  comm.onMsg((m) => comm.send({ echo: m.data }, { buffers: m.buffers }));
});

const args = globalThis.Deno ? Deno.args : process.argv.slice(2);

serve({
  syncStdin: args.includes("sync"),
  info: {
    implementation: "conformance",
    implementation_version: "1.0",
    language_info: { name: "conformance", mimetype: "text/plain", file_extension: ".txt" },
    interrupt_mode: "message",
    subshells: (globalThis.Deno ? Deno.env.get("CONFORMANCE_SUBSHELLS") : process.env.CONFORMANCE_SUBSHELLS) !== "0",
  },
  async execute({ code }, ctx) {
    const [cmd, ...rest] = code.split(" ");
    if (cmd === "input") ctx.stream("stdout", "got:" + (await ctx.input(rest.join(" "))));
    else if (cmd === "error") throw new TypeError("bad");
    else if (cmd === "open") {
      const comm = comms.open("conformance.out", { n: 1 });
      comm.send({ n: 2 }, { buffers: [new Uint8Array([0, 1])] });
      comm.close();
    } else if (cmd === "later") {
      setTimeout(() => ctx.stream("stdout", "late"), 0); // output after the reply
    } else if (cmd === "wait") {
      if (rest[0] === "started") ctx.stream("stdout", "started"); // (tests that wait for it)
      await new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason)));
    } else ctx.stream("stdout", code);
  },
});
