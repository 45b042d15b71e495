/**
 * What the kernel needs from the npm registry, bundled into one file at install time by
 * `prepare()` (__init__.py): sucrase strips TypeScript's types keeping line numbers, acorn
 * parses the result for the REPL transforms (transform.ts). Versions are pinned here and,
 * with their dependencies and hashes, in deps.lock.
 */
export { transform } from "npm:sucrase@3.35.1";
export { parse } from "npm:acorn@8.19.0";
