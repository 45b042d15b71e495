// JS SDK micro-benchmarks for `python -m bench.micro` (run by Deno): each row times the way
// the SDK does a thing now against the way it did it before, in this process, and prints
// one JSON object: {rows: [[what, before_s, now_s], ...]}. `deno run bench/micro_sdk.mjs [scale]`.
const scale = Number(Deno.args[0] ?? "1");
const BATCHES = scale < 1 ? 1 : 7;
const encoder = new TextEncoder();
const sink = Deno.openSync("/dev/null", { write: true });

function perCall(fn, n) {
  n = Math.max(1, Math.round(n * scale));
  const times = [];
  for (let b = 0; b < BATCHES; b++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn();
    times.push((performance.now() - t0) / n / 1000);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}

function writeAll(bytes) {
  let written = 0;
  while (written < bytes.length) written += sink.writeSync(bytes.subarray(written));
}

// A 10 MB stream notification, as the Echo kernel sends back a 10 MB cell.
const message = { jsonrpc: "2.0", method: "stream", params: { name: "stdout", text: "x".repeat(10_000_000), request: 7 } };

function before() {
  writeAll(encoder.encode(JSON.stringify(message) + "\n"));
}

const SLICE = 1 << 20;
const out = new Uint8Array(SLICE);
function now() {
  let rest = JSON.stringify(message);
  for (;;) {
    const { read, written } = encoder.encodeInto(rest, out.subarray(0, SLICE - 1));
    if (read === rest.length) {
      out[written] = 0x0a;
      writeAll(out.subarray(0, written + 1));
      return;
    }
    writeAll(out.subarray(0, written));
    rest = rest.slice(read);
  }
}

const rows = [
  ["JS SDK on Deno, write a 10 MB stream line: encode the whole line + newline vs encodeInto slices of a kept 1 MiB buffer",
   perCall(before, 20), perCall(now, 20)],
];
console.log(JSON.stringify({ rows }));
