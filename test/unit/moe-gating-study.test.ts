// The gating study's sweep (src/bench/gating-study.ts) on a small synthetic layer with the reference
// backend: the JSON fields the issue fixes, OOM marking from the plan's prediction, and drop/padding
// counts that follow from the routing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dynamicOverStatic, layerTarget, sweep } from '../../src/bench/gating-study.js';
import { syntheticInput, syntheticLayer } from '../../src/bench/gating-layer.js';
import { softmaxTopKRouter } from '../../src/moe/router-softmax-topk.js';
import { DISPATCH_POLICY_NAMES } from '../../src/moe/policies.js';
import { refBackend } from '../../src/tensor/ref-backend.js';
import { zeroTimes } from '../../src/moe/dispatch.js';

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

test('dynamicOverStatic: the ratio at every batch both ran, null throughput where static was OOM', () => {
  const row = (policy: string, batch: number, tps: number | null, bytes: number) => ({
    policy, batch, tokens_per_s: tps, peak_activation_bytes: bytes, dropped: 0, padded: 0, oom: tps === null,
    times_ms: zeroTimes(),
  });
  const results = [
    row('static', 64, 100, 4000), row('dynamic', 64, 250, 1000), row('megablocks', 64, 300, 900),
    row('static', 128, 40, 16000), row('dynamic', 128, 240, 2000),
    row('static', 256, null, 64000), row('dynamic', 256, 230, 4000),
    row('dynamic', 512, 220, 8000),
  ];
  assert.deepEqual(dynamicOverStatic(results), [
    { batch: 64, throughput: 2.5, memory: 4 },
    { batch: 128, throughput: 6, memory: 8 },
    { batch: 256, throughput: null, memory: 16 },
  ]);
});

test('weight sets: experts cycle through the distinct sets; default one set per expert', () => {
  const shared = syntheticLayer({ ...spec, weightSets: 2 });
  const data = (e: number) => shared.experts[e]!.gate.data;
  assert.equal(data(0), data(2));
  assert.equal(data(1), data(5));
  assert.notEqual(data(0), data(1));
  assert.equal(shared.experts[4]!.gate.name, 'experts.4.gate');
  const own = syntheticLayer(spec);
  const distinct = new Set(own.experts.map((e) => e.down.data));
  assert.equal(distinct.size, spec.experts);
  assert.deepEqual([...own.experts[0]!.up.data], [...shared.experts[0]!.up.data], 'set 0 is expert 0 either way');
});
