// The worker's source is built from function text (runtime.ts says why): run it in a real
// Worker and check it is self-contained, runs a cell, keeps its globals and stops a loop.
import { assertEquals } from "./asserts.ts";
import { startWorker } from "./worker_harness.ts";

Deno.test("the worker runs cells, keeps globals, and a set flag ends a loop", async () => {
  const { worker, next, cell, inbox, flag, send, close } = await startWorker();
  try {
    cell("const kept: number = 41\nconsole.log('hello', { a: 1 })");
    assertEquals((await next("out")).params, { name: "stdout", text: "hello { a: 1 }\n" });
    assertEquals((await next("done")).status, "ok");
    // The first line after a pause goes out at once; the rest of a burst waits, and what of
    // it the cell left waiting rides in its "done" (the supervisor sends it before the reply).
    await new Promise((r) => setTimeout(r, 40)); // (a pause: more than the worker's 20 ms)
    cell("console.log('a'); console.log('b'); console.log('c')");
    assertEquals((await next("out")).params.text, "a\n");
    const burst = await next("done");
    assertEquals([burst.status, burst.out], ["ok", { name: "stdout", text: "b\nc\n" }]);
    assertEquals(inbox.filter((m) => m.type === "out"), []);
    cell("console.log('started'); let n = 0; while (true) { n++ }");
    await next("out");
    Atomics.store(flag, 0, 1);
    send({ type: "interrupt" });
    const done = await next("done");
    assertEquals([done.status, done.error.interrupted], ["error", true]);
    await next("interrupted");
    cell("kept + 1");
    assertEquals((await next("out")).params.data, { "text/plain": "42" });
    assertEquals((await next("done")).status, "ok");
  } finally {
    worker.terminate();
    close();
  }
});
