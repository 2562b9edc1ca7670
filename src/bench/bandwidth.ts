import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';

/**
 * Approximate machine memory bandwidth without native code: `threads` worker threads each stream
 * their own buffer (together `bytes`, many times the last-level cache), summing it into eight
 * independent f64 accumulators, so the loop is bound by loads rather than by one dependency chain
 * (8-byte loads move twice what an Int32 loop does). Every pass starts all threads together and ends
 * when the slowest finishes; the best pass counts, as bandwidth figures usually do. A JIT-compiled
 * scalar loop can fall short of what SIMD code reaches, so this is labelled approximate (a lower
 * bound) wherever it is reported.
 */
export async function jsReadBandwidthGBs(threads: number, bytes = 512 * 1024 * 1024, passes = 8): Promise<number> {
  const words = Math.floor(bytes / 8 / threads / 8) * 8; // per thread, a multiple of the unroll
  const control = new SharedArrayBuffer(8); // [0]: pass number to run, [1]: threads done with it
  const ctl = new Int32Array(control);
  const workers = Array.from({ length: threads }, (_, i) => new Worker(WORKER_SOURCE, { eval: true, workerData: { control, words } }));
  const ready = workers.map((w) => new Promise<void>((resolve, reject) => { w.once('message', () => resolve()); w.once('error', reject); }));
  await Promise.all(ready); // every worker has written its slice (first touch) and is waiting
  let best = Infinity;
  for (let pass = 1; pass <= passes; pass++) {
    Atomics.store(ctl, 1, 0);
    const t0 = performance.now();
    Atomics.store(ctl, 0, pass);
    Atomics.notify(ctl, 0);
    while (Atomics.load(ctl, 1) < threads) Atomics.wait(ctl, 1, Atomics.load(ctl, 1), 1000);
    best = Math.min(best, performance.now() - t0);
  }
  Atomics.store(ctl, 0, -1);
  Atomics.notify(ctl, 0);
  await Promise.all(workers.map((w) => new Promise((resolve) => w.once('exit', resolve))));
  return (words * 8 * threads) / (best / 1000) / 1e9;
}

const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const { control, words } = workerData;
const v = new Float64Array(words); // each thread's own slice, first touched by that thread
const ctl = new Int32Array(control);
for (let i = 0; i < words; i++) v[i] = i & 7;
parentPort.postMessage('ready');
// a function of its own, so V8 optimises the loop as a whole rather than on-stack-replacing it
function pass_(v) {
  let a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0, h = 0;
  for (let i = 0; i < v.length; i += 8) {
    a += v[i]; b += v[i + 1]; c += v[i + 2]; d += v[i + 3];
    e += v[i + 4]; f += v[i + 5]; g += v[i + 6]; h += v[i + 7];
  }
  return a + b + c + d + e + f + g + h;
}
let sink = 0;
let seen = 0;
for (;;) {
  Atomics.wait(ctl, 0, seen);
  const pass = Atomics.load(ctl, 0);
  if (pass < 0) break;
  seen = pass;
  sink += pass_(v);
  Atomics.add(ctl, 1, 1);
  Atomics.notify(ctl, 1);
}
parentPort.postMessage(sink);
`;
