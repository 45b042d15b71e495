/**
 * The supervisor's side of comms: the JS SDK's `comms` (the same module instance as sdk.ts's
 * serve(), so the same comm table), and the widget module's text for the worker.
 */
export { comms } from "./sdk.ts";
export type { Comm } from "./sdk.ts";

/**
 * sdk/js/widgets.js as text, for the worker (widgets_runtime.ts). A dynamic import with a
 * literal specifier needs no read permission; `type: "text"` is stable in Deno 2.9 (older
 * ones need --unstable-raw-imports), else null (then `kernelkit:widgets` says it is not available).
 */
export async function widgetsSource(): Promise<string | null> {
  try {
    const mod = await import("../sdk/js/widgets.js", { with: { type: "text" } });
    return typeof mod.default === "string" ? mod.default : null;
  } catch {
    return null;
  }
}
