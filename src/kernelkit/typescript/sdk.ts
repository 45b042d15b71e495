/**
 * The one place the kernel imports the JS SDK from (the SDK moves into the package later;
 * then only this line changes).
 */
export { serve } from "../sdk/js/kernelkit.js";
export type { Context } from "../sdk/js/kernelkit.js";
