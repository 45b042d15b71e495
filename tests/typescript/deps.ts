// The real sucrase and acorn, from the bundle prepare() made (KK_TS_DEPS names it).
import type { Deps } from "../../src/kernelkit/typescript/transform.ts";

export const deps: Deps = await import(Deno.env.get("KK_TS_DEPS")!);
