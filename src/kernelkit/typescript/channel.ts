/**
 * The supervisor's and the worker's messages to each other: one ordered stream per direction,
 * over two carriers.
 *
 * Why not only postMessage: a Deno worker's postMessage costs about 0.07 ms a hop when the
 * thread it wakes was idle, which it is at every cell (measured on 2026-12-04: 0.14–0.20 ms
 * for a round trip with a pause before it, against 0.07–0.09 ms through a SharedArrayBuffer
 * that the receiver waits on with Atomics.waitAsync), and every cell takes two hops, its
 * `run` and its `done`. So a message that JSON carries goes as a record in a ring in a
 * SharedArrayBuffer, written by one thread and read by the other.
 *
 * What goes by postMessage instead: what JSON cannot carry (comm messages, whose buffers are
 * bytes, and which structured cloning checks where they are sent), what JSON.stringify
 * refuses (a BigInt), and a record that does not fit in the ring's free space now (the
 * writer never waits for the reader: the worker may be waiting for the supervisor, in
 * prompt()). Every message has a sequence number and the receiver handles them in that order,
 * whichever carrier brought them, so output stays in the order it was made.
 *
 * Like runtime.ts, this is copied into the worker's source by its text: a self-contained
 * function that uses only globals and its arguments.
 */

// deno-lint-ignore-file no-explicit-any

/** The size of one direction's ring (a power of two), and of its control words before it. */
export const RING_BYTES = 1 << 16;
export const RING_HEADER = 16;

/**
 * One end of the channel. `outbound` is the ring this end writes and `inbound` the one it
 * reads (each made by the supervisor: `new SharedArrayBuffer(RING_HEADER + RING_BYTES)`, and
 * `size` is RING_BYTES);
 * `post` is the postMessage of this end; `handle` gets the other end's messages in order.
 * The receiver gives `posted` what its onmessage got (the `{ seq, msg }` that `send` posts).
 */
export function messageChannel(
  outbound: SharedArrayBuffer,
  inbound: SharedArrayBuffer,
  post: (data: any) => void,
  handle: (msg: any) => void,
  size: number,
): { send: (msg: any, byPost?: boolean) => void; posted: (data: any) => void; close: () => void } {
  const header = 16; // (RING_HEADER: this function's text is all the worker gets)
  // Control words: [0] how far the reader has read, [1] how far the writer has written (byte
  // counts since the start, wrapping as 32-bit integers; the ring's offset is count & mask).
  const mask = size - 1;
  const outCtl = new Int32Array(outbound, 0, 4);
  const outWords = new Int32Array(outbound, header, size >> 2);
  const outBytes = new Uint8Array(outbound, header, size);
  const inCtl = new Int32Array(inbound, 0, 4);
  const inWords = new Int32Array(inbound, header, size >> 2);
  const inBytes = new Uint8Array(inbound, header, size);
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  let sent = 0;
  let expected = 1;
  const held = new Map<number, any>();
  let closed = false;

  // (null: a record that could not be read, skipped so that the ones after it still go)
  const deliver = (seq: number, msg: any) => {
    if (seq !== expected) {
      held.set(seq, msg);
      return;
    }
    for (;;) {
      expected++;
      try {
        if (msg !== null) handle(msg);
      } catch (err) {
        console.error(`kernelkit-typescript: a worker message failed: ${err}`);
      }
      if (!held.has(expected)) return;
      msg = held.get(expected);
      held.delete(expected);
    }
  };

  /** Write one record, or say it does not fit: [length, seq, JSON padded to 4 bytes]. */
  const write = (seq: number, text: string): boolean => {
    const data = encoder.encode(text);
    if (data.length > size >> 2) return false; // (a long one goes by postMessage: a quarter of the ring at most)
    const need = 8 + ((data.length + 3) & ~3);
    let tail = outCtl[1];
    const free = size - ((tail - Atomics.load(outCtl, 0)) | 0);
    const room = size - (tail & mask); // to the end of the ring
    if (room < need) {
      if (free < room + need) return false;
      outWords[(tail & mask) >> 2] = -1; // wrap: the next record starts at 0
      tail = (tail + room) | 0;
    } else if (free < need) return false;
    const at = tail & mask;
    outWords[at >> 2] = data.length;
    outWords[(at >> 2) + 1] = seq;
    outBytes.set(data, at + 8);
    Atomics.store(outCtl, 1, (tail + need) | 0);
    Atomics.notify(outCtl, 1);
    return true;
  };

  /** Whether a message is surely too big for the ring, found without serializing it: JSON
   * of a 2 MB stream text takes 8–28 ms here, structured cloning it once 13–19 ms. */
  const tooBig = (value: any, limit: number): boolean => {
    let left = limit;
    const stack = [value];
    while (stack.length) {
      const v = stack.pop();
      left -= typeof v === "string" ? v.length : 8;
      if (left < 0) return true;
      if (v !== null && typeof v === "object") for (const k in v) stack.push(v[k]);
    }
    return false;
  };

  // A Deno without Atomics.waitAsync could not wait on the ring: everything goes by postMessage.
  const ring = typeof (Atomics as any).waitAsync === "function";

  const send = (msg: any, byPost = false) => {
    if (closed) return;
    const seq = ++sent;
    if (ring && !byPost && !tooBig(msg, size >> 2)) {
      let text: string | undefined;
      try {
        text = JSON.stringify(msg);
      } catch {
        text = undefined; // (postMessage's structured cloning says what is wrong with it, or carries it)
      }
      if (text !== undefined && write(seq, text)) return;
    }
    post({ seq, msg });
  };

  const pump = async () => {
    let head = inCtl[0];
    while (!closed) {
      const tail = Atomics.load(inCtl, 1);
      while (head !== tail && !closed) {
        const at = head & mask;
        const length = inWords[at >> 2];
        if (length === -1) {
          head = (head + size - at) | 0;
          continue;
        }
        const seq = inWords[(at >> 2) + 1];
        let msg = null;
        try {
          msg = JSON.parse(decoder.decode(inBytes.subarray(at + 8, at + 8 + length)));
        } catch (err) {
          console.error(`kernelkit-typescript: a worker message could not be read: ${err}`);
        }
        head = (head + 8 + ((length + 3) & ~3)) | 0;
        Atomics.store(inCtl, 0, head);
        deliver(seq, msg);
      }
      const wait = (Atomics as any).waitAsync(inCtl, 1, tail);
      if (wait.async) await wait.value;
    }
  };
  if (ring) pump();

  return {
    send,
    posted: (data: any) => {
      if (!closed) deliver(data.seq, data.msg);
    },
    /** Stop reading (the worker is being replaced): the pump wakes and ends. */
    close: () => {
      closed = true;
      Atomics.notify(inCtl, 1);
    },
  };
}
