// The real sucrase and acorn, from the bundle prepare() made (KK_TS_DEPS names it), and the
// TypeScript compiler from its own packed bundle (KK_TS_TYPESCRIPT), loaded as the
// supervisor loads it: unpacked, and told it is in a browser while its module runs.
import { type Deps, type Transpiler, unpackModule } from "../../src/kernelkit/typescript/transform.ts";

const parsers = await import(Deno.env.get("KK_TS_DEPS")!);
export const deps: Deps = { transform: parsers.transform, parse: parsers.parse };

// deno-lint-ignore no-explicit-any
const proc = (globalThis as any).process;
proc.browser = true;
const typescript: Transpiler = await unpackModule((await import(Deno.env.get("KK_TS_TYPESCRIPT")!)).default);
proc.browser = undefined;
/** deps with the TypeScript compiler, for the cells that need it. */
export const fullDeps: Deps = { ...deps, typescript };
