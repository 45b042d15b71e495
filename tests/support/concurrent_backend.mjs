// A bridge backend that opts in to subshells (bridge protocol 1.1), for tests/test_bridge_subshells.py.
// Commands: "sleep S" (awaits S seconds, printing "started" first), "input P" (asks the
// user), "spin" (a busy loop: ends only by the host killing the backend), "raise";
// anything else is echoed, tagged with the subshell it ran on.
import { serve } from "../../src/kernelkit/sdk/js/kernelkit.js";

serve({
  info: {
    implementation: "concurrent-js", implementation_version: "1.0",
    language_info: { name: "commands", mimetype: "text/plain", file_extension: ".txt" },
    banner: "concurrent JS test backend",
    subshells: true,
  },
  async execute({ code, subshell_id }, ctx) {
    const [cmd, ...rest] = code.trim().split(" ");
    const arg = rest.join(" ");
    if (cmd === "sleep") {
      ctx.print("started");
      await new Promise((resolve, reject) => {
        const t = setTimeout(resolve, Number(arg) * 1000);
        ctx.signal.addEventListener("abort", () => { clearTimeout(t); reject(new Error("aborted")); });
      });
      ctx.print(`slept ${arg}`);
    } else if (cmd === "input") {
      ctx.print("got:" + (await ctx.input(arg)));
    } else if (cmd === "spin") {
      ctx.print("started");
      for (;;) { /* never yields: only the host's kill ends it */ }
    } else if (cmd === "raise") {
      throw new TypeError(arg || "boom");
    } else {
      ctx.stream("stdout", `${code} [${subshell_id ?? "main"}]`);
    }
  },
});
