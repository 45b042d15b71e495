// The JavaScript SDK's backend for tests/test_sdk_conformance.py (same as conformance_backend.py).
// "input P" asks for input, "error" throws, "wait" runs until interrupted, "open" opens a
// comm to "conformance.out", sends on it and closes it, else echoes. Target "echo" answers
// each message with {echo: data} and the same buffers.
// CONFORMANCE_SUBSHELLS=0 in the environment: the one-request-at-a-time mode.
import { comms, serve } from "../../src/kernelkit/sdk/js/kernelkit.js";

comms.registerTarget("echo", (comm) => {
  comm.onMsg((m) => comm.send({ echo: m.data }, { buffers: m.buffers }));
});

serve({
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
    } else if (cmd === "wait") {
      await new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason)));
    } else ctx.stream("stdout", code);
  },
});
