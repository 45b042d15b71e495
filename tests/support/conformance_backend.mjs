// The JavaScript SDK's backend for tests/test_sdk_conformance.py (same as conformance_backend.py).
// "input P" asks for input, "error" throws, "wait" runs until interrupted, else echoes.
// CONFORMANCE_SUBSHELLS=0 in the environment: the one-request-at-a-time mode.
import { serve } from "../../src/kernelkit/sdk/js/kernelkit.js";

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
    else if (cmd === "wait") {
      await new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason)));
    } else ctx.stream("stdout", code);
  },
});
