import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogitOrder } from '../../src/model/logit-order.js';
import { Sampler, argmax } from '../../src/model/sampling.js';
import { Rng } from '../../src/util/rng.js';
import { rng } from '../helpers/random.js';

const V = 50;
const logits = Float32Array.from({ length: V }, (_, i) => Math.sin(i * 1.7) * 3);

/** The exact distribution, written from the definitions: sort, cut by top-k, softmax(l/T), cut by top-p. */
function exact(temperature: number, topK = 0, topP = 1): Map<number, number> {
  let keep = [...Array(V).keys()].sort((a, b) => logits[b]! - logits[a]!);
  if (topK > 0) keep = keep.slice(0, topK);
  let w = keep.map((i) => Math.exp(logits[i]! / temperature));
  let z = w.reduce((a, b) => a + b);
  if (topP < 1) {
    let acc = 0;
    let m = 0;
    while (m < w.length && acc < topP) acc += w[m++]! / z;
    keep = keep.slice(0, m);
    w = w.slice(0, m);
    z = w.reduce((a, b) => a + b);
  }
  return new Map(keep.map((i, j) => [i, w[j]! / z]));
}

for (const [name, opts] of [
  ['temperature', { temperature: 1.3, seed: 2 }],
  ['top-k', { temperature: 0.7, topK: 5, seed: 1 }],
  ['top-p', { temperature: 1, topP: 0.6, seed: 3 }],
] as const) {
  test(`${name} sampling draws from the exact distribution`, () => {
    const sampler = new Sampler(opts);
    const n = 200_000;
    const counts = new Float64Array(V);
    for (let i = 0; i < n; i++) counts[sampler.sample(logits)]!++;
    const want = exact(opts.temperature, 'topK' in opts ? opts.topK : 0, 'topP' in opts ? opts.topP : 1);
    for (let i = 0; i < V; i++) {
      const p = want.get(i) ?? 0;
      if (p === 0) assert.equal(counts[i], 0, `token ${i} is outside the kept set but was drawn`);
      // a proportion's standard deviation is at most 0.5/sqrt(n) = 0.0011: 0.01 is ~9 sigma
      else assert.ok(Math.abs(counts[i]! / n - p) < 0.01, `token ${i}: ${counts[i]! / n} vs ${p}`);
    }
  });
}

test('sampling is reproducible from its seed; greedy is argmax', () => {
  const draw = (seed: number) => {
    const s = new Sampler({ temperature: 1, seed });
    return Array.from({ length: 40 }, () => s.sample(logits));
  };
  assert.deepEqual(draw(7), draw(7));
  assert.notDeepEqual(draw(7), draw(8));
  const greedy = new Sampler();
  assert.equal(greedy.sample(logits), argmax(logits));
  assert.equal(logits[argmax(logits)], Math.max(...logits));
});

test('bad sampling options are refused', () => {
  assert.throws(() => new Sampler({ temperature: -1 }), /temperature/);
  assert.throws(() => new Sampler({ topP: 0 }), /top-p/);
  assert.throws(() => new Sampler({ topK: 1.5 }), /top-k/);
});

test('suppressed tokens are never generated, greedy or sampled', () => {
  const best = argmax(logits);
  const greedy = new Sampler({ suppressTokens: [best] });
  const row = logits.slice();
  const picked = greedy.sample(row);
  assert.notEqual(picked, best);
  assert.equal(picked, argmax(Float32Array.from(logits, (v, i) => (i === best ? -Infinity : v))));
  const suppressed = [best, 3, 17];
  const s = new Sampler({ temperature: 2, seed: 5, suppressTokens: suppressed });
  for (let i = 0; i < 5000; i++) assert.ok(!suppressed.includes(s.sample(logits.slice())));
  assert.throws(() => new Sampler({ suppressTokens: [-1] }), /suppressed/);
});

test('argmax is the first index of the largest logit (ties to the lowest id), on fresh random rows', () => {
  const seed = (Date.now() ^ (process.pid << 8)) >>> 0;
  let s = seed;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  for (let trial = 0; trial < 50; trial++) {
    const row = Float32Array.from({ length: 1 + Math.floor(next() * 300) }, () => Math.floor(next() * 8) - 4); // few values: many ties
    assert.equal(argmax(row), row.indexOf(Math.max(...row)), `seed ${seed}, trial ${trial}`);
  }
});

/** Fresh random logits with many ties, signed zeros, infinities and masked (-inf) entries. */
function awkwardLogits(next: () => number, V: number): Float32Array {
  const special = [0, -0, Infinity, -Infinity, -Infinity];
  return Float32Array.from({ length: V }, () => (next() < 0.1 ? special[Math.floor(next() * special.length)]! : Math.round((next() - 0.5) * 16) / 4));
}

test('LogitOrder gives the comparator sort\'s order (descending, ties to the lower id) on fresh random logits', () => {
  const seed = (Date.now() ^ (process.pid << 8)) >>> 0;
  const next = rng(seed);
  const order = new LogitOrder(); // one sorter across vocabulary sizes: its buffers resize
  for (let trial = 0; trial < 60; trial++) {
    const V = 1 + Math.floor(next() * (trial % 4 === 0 ? 5000 : 60));
    const logits = awkwardLogits(next, V);
    const want = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b); // equal infinities: NaN || a - b
    assert.deepEqual(Array.from(order.sort(logits)), want, `V=${V} (seed ${seed}, trial ${trial})`);
  }
});

test('top-p sampling draws the same tokens as the comparator-sorted definition, seed for seed', () => {
  const seed = (Date.now() ^ (process.pid << 8)) >>> 0;
  const next = rng(seed);
  for (let trial = 0; trial < 20; trial++) {
    const V = 1 + Math.floor(next() * 400);
    const logits = awkwardLogits(next, V).map((v) => (v === Infinity ? 3 : v)); // finite maximum: the distribution exists
    logits[Math.floor(next() * V)] = 1; // at least one finite logit
    const temperature = [0.3, 0.8, 1.7][trial % 3]!;
    const topP = [0.1, 0.6, 0.95][trial % 3]!;
    const sampler = new Sampler({ temperature, topP, seed: trial });
    const reference = new Rng(trial, 'sampling');
    const cand = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
    const max = Math.max(...logits);
    const probs = cand.map((i) => Math.exp((logits[i]! - max) / temperature));
    const sum = probs.reduce((a, b) => a + b, 0);
    let n = V;
    let acc = 0;
    for (let j = 0; j < V; j++) {
      acc += probs[j]! / sum;
      if (acc >= topP) {
        n = j + 1;
        break;
      }
    }
    const total = probs.slice(0, n).reduce((a, b) => a + b, 0);
    for (let draw = 0; draw < 30; draw++) {
      let r = reference.uniform() * total;
      let want = cand[n - 1]!;
      for (let j = 0; j < n; j++) {
        r -= probs[j]!;
        if (r < 0) {
          want = cand[j]!;
          break;
        }
      }
      assert.equal(sampler.sample(logits), want, `V=${V} T=${temperature} top-p=${topP} draw ${draw} (seed ${seed}, trial ${trial})`);
    }
  }
});
