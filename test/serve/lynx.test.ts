// Lynx batch-aware expert selection: prefill is untouched, decode batches activate only experts of the
// exact routing, every token keeps k distinct kept experts with renormalised weights, confident
// tokens keep their top-1, and a rarely wanted expert is dropped from a constructed batch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lynxRouter } from '../../src/moe/lynx.js';
import { softmaxTopKRouter } from '../../src/moe/router-softmax-topk.js';
import type { RouterInput, Routing } from '../../src/moe/routing.js';
import { randomF32 } from '../helpers/random.js';

function input(logits: Float32Array, tokens: number, experts: number, k: number, decode: boolean): RouterInput {
  return { logits, hidden: new Float32Array(0), tokens, numExperts: experts, k, layer: 0, weights: {} as RouterInput['weights'], decode };
}

function distinct(r: Routing): Set<number> {
  return new Set(Array.from(r.experts).filter((e) => e >= 0));
}

const mixtral = softmaxTopKRouter(true);

test('prefill steps and single-token batches are routed exactly', () => {
  const lynx = lynxRouter(mixtral, { threshold: 0.5 });
  const logits = randomF32(12 * 8, 3, 6);
  assert.deepEqual(lynx.route(input(logits, 12, 8, 2, false)), mixtral.route(input(logits, 12, 8, 2, false)));
  const one = logits.subarray(0, 8);
  assert.deepEqual(lynx.route(input(one, 1, 8, 2, true)), mixtral.route(input(one, 1, 8, 2, true)));
});

test('decode batches on random logits: fewer or equal experts, k distinct kept experts per token, weights sum to 1', () => {
  let reduced = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const T = 2 + (seed % 15);
    const E = 8 + (seed % 3) * 4;
    const k = 1 + (seed % 2);
    const logits = randomF32(T * E, seed, 4);
    const exact = mixtral.route(input(logits, T, E, k, true));
    const got = lynxRouter(mixtral, { threshold: 0.6 }).route(input(logits, T, E, k, true));
    const kept = distinct(got);
    const before = distinct(exact);
    assert.ok(kept.size <= before.size, `seed ${seed}: ${kept.size} experts after vs ${before.size} before`);
    for (const e of kept) assert.ok(before.has(e), `seed ${seed}: expert ${e} was not active before`);
    if (kept.size < before.size) reduced++;
    for (let t = 0; t < T; t++) {
      const ids = Array.from(got.experts.subarray(t * k, (t + 1) * k));
      assert.equal(new Set(ids).size, k, `seed ${seed} token ${t}: ${ids}`);
      const w = Array.from(got.weights.subarray(t * k, (t + 1) * k)).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(w - 1) < 1e-5, `seed ${seed} token ${t}: weights sum ${w}`);
      // each token's experts are its own best among the kept set, in descending logit order
      const row = Array.from(logits.subarray(t * E, (t + 1) * E));
      const best = [...kept].sort((a, b) => row[b]! - row[a]! || a - b).slice(0, k);
      assert.deepEqual(ids, best, `seed ${seed} token ${t}`);
    }
  }
  assert.ok(reduced >= 10, `Lynx reduced the expert set in only ${reduced} of 40 batches`);
});

test('a weakly wanted expert is dropped, a confident top-1 is kept', () => {
  // 4 tokens, 4 experts, top-2: experts 0 and 1 are everyone's pair; token 3 wants expert 3 just above 1
  const E = 4;
  const rows = [
    [5, 4, 0, 0],
    [4, 5, 0, 0],
    [5, 4, 0, 0],
    [5, 3.5, 0, 3.6],
  ];
  const logits = Float32Array.from(rows.flat());
  const exact = mixtral.route(input(logits, 4, E, 2, true));
  assert.deepEqual(Array.from(exact.experts.subarray(6, 8)), [0, 3]);
  const got = lynxRouter(mixtral, { threshold: 0.9 }).route(input(logits, 4, E, 2, true));
  assert.deepEqual(Array.from(got.experts), [0, 1, 1, 0, 0, 1, 0, 1]);

  // a token whose top-1 (expert 2) is far ahead of its runner-up keeps it even at a low threshold
  const confident = Float32Array.from([5, 4, 0, 0, 4, 5, 0, 0, 5, 4, 0, 0, 0, 1, 9, 0]);
  const kept = distinct(lynxRouter(mixtral, { threshold: 0.3 }).route(input(confident, 4, E, 2, true)));
  assert.ok(kept.has(2), `kept ${[...kept]}`);
});

test('threshold 1 is the exact routing; bad thresholds are refused', () => {
  const logits = randomF32(6 * 8, 9, 4);
  assert.deepEqual(lynxRouter(mixtral, { threshold: 1 }).route(input(logits, 6, 8, 2, true)), mixtral.route(input(logits, 6, 8, 2, true)));
  assert.throws(() => lynxRouter(mixtral, { threshold: 0 }), /Lynx threshold must be in \(0, 1\]/);
  assert.throws(() => lynxRouter(mixtral, { threshold: 1.5 }), /Lynx threshold/);
});
