// A bridge backend on the JavaScript SDK for the hardening tests, for Deno and Node.js.
// Commands: "stderr N" writes N lines with console.error and returns; "late" writes one
// line in the cell and, after the reply, more output from a timer; anything else is echoed.
import { serve } from "../../src/kernelkit/sdk/js/kernelkit.js";

serve({
  info: {
    implementation: "hardening-js",
    implementation_version: "1.0",
    language_info: { name: "hardening", mimetype: "text/plain", file_extension: ".txt" },
    banner: "hardening test backend",
  },
  execute({ code }, ctx) {
    const [cmd, arg] = code.trim().split(" ");
    if (cmd === "stderr") {
      for (let i = 0; i < Number(arg); i++) console.error(`err ${i}`);
    } else if (cmd === "late") {
      ctx.print("in-cell");
      setTimeout(() => {
        ctx.print("late-notification"); // names its request
        console.error("late-stderr");
      }, 300);
    } else {
      ctx.stream("stdout", code);
    }
  },
});
