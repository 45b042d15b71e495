/**
 * The one place the kernel imports the JS SDK from (it ships beside this package, in
 * kernelkit/sdk/js): serve() for the supervisor, comms for widgets_host.ts.
 */
export { comms, serve } from "../sdk/js/kernelkit.js";
export type { Comm, Context } from "../sdk/js/kernelkit.js";
