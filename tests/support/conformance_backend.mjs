// The JavaScript SDK's backend for tests/test_sdk_conformance.py (same as conformance_backend.py).
// "input P" asks for input, "error" throws, "wait" runs until interrupted, else echoes.
import { serve } from "../../src/kernelkit/sdk/js/kernelkit.js";

serve({
  info: {
    implementation: "conformance",
    implementation_version: "1.0",
    language_info: { name: "conformance", mimetype: "text/plain", file_extension: ".txt" },
    interrupt_mode: "message",
    subshells: true,
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
