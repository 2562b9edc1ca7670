// The gating study's sweep (src/bench/gating-study.ts) on a small synthetic layer with the reference
// backend: the JSON fields the issue fixes, OOM marking from the plan's prediction, and drop/padding
// counts that follow from the routing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { layerTarget, sweep } from '../../src/bench/gating-study.js';
import { syntheticInput, syntheticLayer } from '../../src/bench/gating-layer.js';
import { softmaxTopKRouter } from '../../src/moe/router-softmax-topk.js';
import { DISPATCH_POLICY_NAMES } from '../../src/moe/policies.js';
import { refBackend } from '../../src/tensor/ref-backend.js';

const spec = { hidden: 12, ffn: 8, experts: 6, topK: 2, skew: 2, seed: 5 };

/** Expert counts of the batch, computed directly from the synthetic layer's router. */
function counts(batch: number): number[] {
  const w = syntheticLayer(spec);
  const x = syntheticInput(spec, batch);
  const logits = new Float32Array(batch * spec.experts);
  refBackend.matmul(logits, x, w.router, batch);
  const r = softmaxTopKRouter(true).route({ logits, hidden: x, tokens: batch, numExperts: spec.experts, k: 2, layer: 0, weights: w });
  const c = new Array<number>(spec.experts).fill(0);
  for (const e of r.experts) c[e]!++;
  return c;
}

test('sweep: one result per policy and batch with the issue\'s JSON fields; drops and padding follow the routing', async () => {
  const target = layerTarget(spec, refBackend, softmaxTopKRouter(true), { capacityFactor: 0.1, blockSize: 4 });
  const results = await sweep(target, { policies: DISPATCH_POLICY_NAMES, batches: [8, 20], repeat: 1, memoryLimitBytes: Infinity });
  assert.equal(results.length, 2 * DISPATCH_POLICY_NAMES.length);
  for (const r of results) {
    for (const key of ['policy', 'batch', 'tokens_per_s', 'peak_activation_bytes', 'dropped', 'padded']) assert.ok(key in r, key);
    assert.ok(r.tokens_per_s! > 0 && r.peak_activation_bytes > 0);
  }
  for (const batch of [8, 20]) {
    const c = counts(batch);
    const at = (p: string) => results.find((r) => r.policy === p && r.batch === batch)!;
    const cap = Math.ceil(0.1 * batch);
    assert.ok(c.some((n) => n > cap), 'the skewed router must overflow static capacity');
    assert.equal(at('static').dropped, c.reduce((a, n) => a + Math.max(0, n - cap), 0));
    assert.equal(at('static').padded, c.reduce((a, n) => a + Math.max(0, cap - n), 0));
    assert.equal(at('tutel').padded, spec.experts * Math.max(...c) - 2 * batch);
    assert.equal(at('megablocks').padded, c.reduce((a, n) => a + Math.ceil(n / 4) * 4 - n, 0));
    for (const p of ['tutel', 'fastmoe', 'megablocks', 'dynamic']) assert.equal(at(p).dropped, 0, p);
    assert.equal(at('dynamic').padded, 0);
  }
});

test('sweep: a policy whose plan needs more than the memory limit is reported as oom and not run', async () => {
  const target = layerTarget(spec, refBackend, softmaxTopKRouter(true), { capacityFactor: 1 });
  const limit = target.predict!('dynamic', 64) + 1; // dynamic fits, static (E·S slots + masks) cannot
  const results = await sweep(target, { policies: ['static', 'dynamic'], batches: [64], repeat: 1, memoryLimitBytes: limit });
  const st = results.find((r) => r.policy === 'static')!;
  assert.equal(st.oom, true);
  assert.equal(st.tokens_per_s, null);
  assert.ok(st.peak_activation_bytes > limit);
  assert.equal(results.find((r) => r.policy === 'dynamic')!.oom, false);
});
