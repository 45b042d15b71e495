// The Echo kernel in TypeScript on Deno: `kernelkit bridge -- deno run examples/deno/echo.ts`
import { serve } from "../../src/kernelkit/sdk/js/kernelkit.js";

serve({
  info: {
    implementation: "Echo",
    implementation_version: "1.0",
    language_version: "0.1",
    language_info: { name: "Any text", mimetype: "text/plain", file_extension: ".txt" },
    banner: "Echo kernel - as useful as a parrot",
    // Interrupts come as messages on stdin, which syncStdin needs.
    interrupt_mode: "message",
  },
  // Read requests with a blocking read of stdin: the Echo kernel does nothing between
  // requests, and each one is answered sooner (docs/bridge-protocol.md, "syncStdin").
  syncStdin: true,
  execute({ code, silent }, ctx) {
    if (!silent) ctx.stream("stdout", code);
  },
});
