// Comms in the worker (widgets_runtime.ts): the manager posts what it does to the supervisor,
// runs the frontend's messages, and sdk/js/widgets.js runs on it unchanged in a real Worker.
import { assertEquals } from "./asserts.ts";
import { denoComms, widgetsModuleUrl, workerComms } from "../../src/kernelkit/typescript/widgets_runtime.ts";
import { startWorker } from "./worker_harness.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

async function rejects(fn: () => unknown, pattern: RegExp): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!pattern.test(String(err))) throw new Error(`wrong error: ${err}`);
    return;
  }
  throw new Error("did not throw");
}

Deno.test("the worker's comm manager posts every operation and runs the frontend's messages", async () => {
  const posted: Any[] = [];
  const { manager, receive, dropped } = workerComms((m) => posted.push(m), () => {}, () => 5);
  const got: Any[] = [];
  const handler = (comm: Any, msg: Any) => {
    got.push(["open", comm.commId, msg.data]);
    comm.onMsg((m: Any) => got.push(["msg", m.data, m.buffers.length]));
    comm.onClose(() => got.push(["close"]));
  };
  manager.registerTarget("t", handler);
  manager.registerTarget("t", handler); // (again: not announced twice)
  assertEquals(posted, [{ type: "comm", op: "register", run: 5, params: { target_name: "t" } }]);
  const mine = manager.open("x", { a: 1 }, { commId: "c1", buffers: [new Uint16Array([1])] });
  assertEquals(posted[1].op, "open");
  assertEquals(posted[1].params.buffers, [new Uint8Array([1, 0])]);
  mine.send({ b: 2 });
  mine.close();
  mine.close(); // (twice: nothing more)
  assertEquals(posted.map((m) => m.op), ["register", "open", "msg", "close"]);
  await rejects(() => mine.send({}), /is closed/);
  await rejects(() => manager.open("x", [] as Any), /data must be an object/);

  await receive("open", { comm_id: "f1", target_name: "t", data: { hi: 1 }, metadata: {}, buffers: [] });
  await receive("msg", { comm_id: "f1", data: { n: 1 }, metadata: {}, buffers: [new Uint8Array(2)] });
  assertEquals(manager.list().map((c: Any) => c.commId), ["f1"]);
  await receive("close", { comm_id: "f1", data: {}, metadata: {}, buffers: [] });
  assertEquals(got, [["open", "f1", { hi: 1 }], ["msg", { n: 1 }, 1], ["close"]]);
  await rejects(() => receive("msg", { comm_id: "f1", data: {} }), /no comm f1 is open/);
  await rejects(() => receive("open", { comm_id: "f2", target_name: "nope", data: {} }), /no comm target 'nope'/);

  // A handler that throws refuses the comm; the manager forgets it.
  manager.registerTarget("bad", () => {
    throw new Error("no thanks");
  });
  await rejects(() => receive("open", { comm_id: "f3", target_name: "bad", data: {} }), /no thanks/);
  assertEquals(manager.get("f3"), undefined);
  // The supervisor dropped one (its worker's comms closed): forgotten, no message sent.
  const before = posted.length;
  const kept = manager.open("x", {}, { commId: "c2" });
  dropped("c2");
  assertEquals([kept.closed, posted.length], [true, before + 1]);
});

Deno.test("Deno.jupyter's comm_* broadcasts and comm() callbacks", async () => {
  const posted: Any[] = [];
  const { manager, receive } = workerComms((m) => posted.push(m), () => {}, () => null);
  const deno = denoComms(manager);
  const got: Any[] = [];
  deno.comm("d1", "t", (m: Any) => got.push(m.data)); // (before it is open: kept for it)
  deno.broadcast("comm_open", { comm_id: "d1", target_name: "t", data: { a: 1 } }, { metadata: { v: 1 } });
  assertEquals(posted[0].params.metadata, { v: 1 });
  await receive("msg", { comm_id: "d1", data: { b: 2 }, metadata: {}, buffers: [] });
  assertEquals(got, [{ b: 2 }]);
  deno.broadcast("comm_msg", { comm_id: "d1", data: { c: 3 } }, {});
  deno.broadcast("comm_close", { comm_id: "d1" }, {});
  assertEquals(posted.map((m) => m.op), ["open", "msg", "close"]);
  await rejects(() => deno.broadcast("comm_msg", { comm_id: "d1", data: {} }, {}), /no comm d1 is open/);
  await rejects(() => deno.broadcast("comm_msg", {}, {}), /needs a comm_id/);
});

Deno.test("widgetsModuleUrl needs widgets.js's one import of the SDK", async () => {
  await rejects(() => widgetsModuleUrl("export const x = 1;", {}), /0 imports of \.\/kernelkit\.js/);
});

Deno.test("widgets.js runs in the worker over its comms: a slider, updated both ways", async () => {
  const widgets = await Deno.readTextFile(new URL("../../src/kernelkit/sdk/js/widgets.js", import.meta.url));
  const { worker, next, cell, inbox, send, close } = await startWorker(widgets);
  try {
    cell('import { IntSlider } from "kernelkit:widgets";\nconst s = new IntSlider({ value: 3 });\ns.observe("value", (c) => console.log(c.new));');
    const done = await next("done");
    assertEquals(done.status, "ok", JSON.stringify(done.error));
    const comms = inbox.filter((m) => m.type === "comm").splice(0);
    inbox.length = 0;
    assertEquals(comms[0].op, "register");
    assertEquals(comms[0].params.target_name, "jupyter.widget.control");
    const opens = comms.filter((m) => m.op === "open");
    assertEquals(opens.map((m) => m.params.target_name), ["jupyter.widget", "jupyter.widget", "jupyter.widget"]);
    const slider = opens[2].params;
    assertEquals([slider.data.state._model_name, slider.data.state.value, opens[2].run], ["IntSliderModel", 3, 1]);
    send({
      type: "comm-in", run: 100, op: "msg",
      params: { comm_id: slider.comm_id, data: { method: "update", state: { value: 9 }, buffer_paths: [] }, metadata: {}, buffers: [] },
    });
    const echo = await next("comm");
    assertEquals([echo.op, echo.run, echo.params.data.method, echo.params.data.state], ["msg", 100, "echo_update", { value: 9 }]);
    assertEquals((await next("out")).params, { name: "stdout", text: "9\n" });
    assertEquals(await next("comm-done"), { type: "comm-done", run: 100 });
    send({ type: "comm-in", run: 101, op: "msg", params: { comm_id: "nope", data: {}, metadata: {}, buffers: [] } });
    assertEquals((await next("comm-done")).error.message, "no comm nope is open");
    cell("s.value = 4; s.value");
    const update = await next("comm");
    assertEquals(update.params.data, { method: "update", state: { value: 4 }, buffer_paths: [] });
    assertEquals((await next("done")).status, "ok");
  } finally {
    worker.terminate();
    close();
  }
});
