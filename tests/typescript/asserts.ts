// Minimal assertions for the deno unit tests (no downloads: the test run is offline).

export function assert(cond: unknown, message = "assertion failed"): asserts cond {
  if (!cond) throw new Error(message);
}

export function assertEquals(actual: unknown, expected: unknown, message = ""): void {
  const a = Deno.inspect(actual, { depth: 10, sorted: true });
  const e = Deno.inspect(expected, { depth: 10, sorted: true });
  if (a !== e) throw new Error(`${message ? message + ": " : ""}expected ${e}, got ${a}`);
}

export function assertMatch(actual: string, re: RegExp): void {
  if (!re.test(actual)) throw new Error(`expected ${Deno.inspect(actual)} to match ${re}`);
}

// deno-lint-ignore no-explicit-any
export function assertThrows(fn: () => unknown, type?: new (...args: any[]) => Error): Error {
  try {
    fn();
  } catch (err) {
    if (type && !(err instanceof type)) throw new Error(`expected ${type.name}, got ${err}`);
    return err as Error;
  }
  throw new Error("expected an exception");
}
