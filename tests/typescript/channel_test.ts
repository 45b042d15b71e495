// channel.ts: one ordered stream over two carriers (a SharedArrayBuffer ring and postMessage).
// Both ends in this thread, the "postMessage" delayed by a timer, so that a message sent that
// way arrives after later ones sent by the ring and the order has to be restored.
import { assertEquals } from "./asserts.ts";
import { messageChannel, RING_BYTES, RING_HEADER } from "../../src/kernelkit/typescript/channel.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

function pair(size = RING_BYTES) {
  const aToB = new SharedArrayBuffer(RING_HEADER + size);
  const bToA = new SharedArrayBuffer(RING_HEADER + size);
  const gotByB: Any[] = [];
  const posted: Any[] = [];
  let wake = () => {};
  const a = messageChannel(aToB, bToA, (data) => {
    posted.push(data.msg);
    setTimeout(() => b.posted(structuredClone(data)), 5); // (b exists by then)
  }, () => {}, size);
  const b = messageChannel(bToA, aToB, () => {}, (msg) => {
    gotByB.push(msg);
    wake();
  }, size);
  // (a timer keeps the event loop going: Deno does not count a pending Atomics.waitAsync as
  // work, and here the notify comes from this same thread; in the kernel it is the other one's)
  const until = async (n: number) => {
    while (gotByB.length < n) await new Promise<void>((r) => setTimeout(wake = r, 1));
  };
  return { a, b, gotByB, posted, until, close: () => (a.close(), b.close()) };
}

Deno.test("messages arrive in the order sent, whichever carrier took them", async () => {
  const { a, gotByB, posted, until, close } = pair();
  try {
    const big = "x".repeat(RING_BYTES); // more than a quarter of the ring: by postMessage
    a.send({ n: 1 });
    a.send({ n: 2, bytes: new Uint8Array([1, 2]) }, true); // what JSON cannot carry
    a.send({ n: 3 });
    a.send({ n: 4, text: big });
    a.send({ n: 5, value: 10n }); // JSON.stringify refuses a BigInt: postMessage carries it
    a.send({ n: 6 });
    await until(6);
    assertEquals(gotByB.map((m) => m.n), [1, 2, 3, 4, 5, 6]);
    assertEquals(posted.map((m) => m.n), [2, 4, 5]);
    assertEquals([gotByB[1].bytes, gotByB[3].text.length, gotByB[4].value], [new Uint8Array([1, 2]), RING_BYTES, 10n]);
  } finally {
    close();
  }
});

Deno.test("the ring wraps around, and a full ring never makes the writer wait", async () => {
  const size = 1024;
  const { a, gotByB, posted, until, close } = pair(size);
  try {
    // 200-byte records: four fill the 1 KiB ring; the writer runs ahead of the reader (which
    // reads only when this test awaits), so some go by postMessage, and all arrive in order.
    const text = "y".repeat(190);
    for (let n = 1; n <= 12; n++) a.send({ n, text });
    assertEquals(posted.length > 0, true);
    await until(12);
    assertEquals(gotByB.map((m) => m.n), [...Array(12).keys()].map((i) => i + 1));
    // Once read, the ring takes records again, past its end and round to its start.
    const before = posted.length;
    for (let round = 0; round < 20; round++) {
      a.send({ n: 100 + round, text });
      await until(13 + round);
    }
    assertEquals(posted.length, before);
    assertEquals(gotByB.slice(12).map((m) => m.n), [...Array(20).keys()].map((i) => 100 + i));
    assertEquals(gotByB.every((m) => m.text === text), true);
  } finally {
    close();
  }
});

Deno.test("text that is not ASCII is carried whole", async () => {
  const { a, gotByB, until, close } = pair();
  try {
    const text = "héllo, 世界 🌍\n\u0000end";
    a.send({ text });
    await until(1);
    assertEquals(gotByB[0].text, text);
  } finally {
    close();
  }
});

Deno.test("a record that cannot be read is skipped, and the ones after it still arrive", async () => {
  // This test writes the ring itself: [read, written, …] control words, then records of
  // [length, seq, JSON padded to 4 bytes] (channel.ts).
  const ring = new SharedArrayBuffer(RING_HEADER + RING_BYTES);
  const got: Any[] = [];
  const errors: string[] = [];
  const realError = console.error;
  console.error = (text: string) => errors.push(text);
  const b = messageChannel(new SharedArrayBuffer(RING_HEADER + RING_BYTES), ring, () => {}, (m) => got.push(m), RING_BYTES);
  try {
    const words = new Int32Array(ring, RING_HEADER);
    const bytes = new Uint8Array(ring, RING_HEADER);
    let at = 0;
    for (const [seq, text] of [[1, "{not json"], [2, '{"n":2}']] as [number, string][]) {
      const data = new TextEncoder().encode(text);
      words[at >> 2] = data.length;
      words[(at >> 2) + 1] = seq;
      bytes.set(data, at + 8);
      at += 8 + ((data.length + 3) & ~3);
    }
    const ctl = new Int32Array(ring, 0, 4);
    Atomics.store(ctl, 1, at);
    Atomics.notify(ctl, 1);
    for (let i = 0; i < 100 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 1));
    assertEquals(got, [{ n: 2 }]);
    assertEquals(errors.length, 1);
    assertEquals(Atomics.load(ctl, 0), at); // (read to the end: the writer may reuse it all)
  } finally {
    console.error = realError;
    b.close();
  }
});

Deno.test("without Atomics.waitAsync every message goes by postMessage, still in order", async () => {
  const atomics = Atomics as Any;
  const saved = atomics.waitAsync;
  delete atomics.waitAsync;
  let made;
  try {
    made = pair();
  } finally {
    atomics.waitAsync = saved;
  }
  const { a, gotByB, posted, until, close } = made;
  try {
    for (let n = 1; n <= 5; n++) a.send({ n });
    await until(5);
    assertEquals(gotByB.map((m) => m.n), [1, 2, 3, 4, 5]);
    assertEquals(posted.length, 5);
  } finally {
    close();
  }
});
