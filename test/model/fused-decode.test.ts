import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateModel } from '../../src/gen/gen-model.js';
import { loadModel } from '../../src/model/model.js';
import type { Model } from '../../src/model/model.js';
import { KvCache } from '../../src/model/kv-cache.js';
import { Transformer } from '../../src/model/transformer.js';
import { ProfilingBackend, weightRows } from '../../src/bench/profile.js';
import { nativeAddon } from '../../src/tensor/native.js';
import { setThreads } from '../../src/tensor/cpu-backend.js';

const dir = mkdtempSync(join(tmpdir(), 'moesaic-fused-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** The same model on the per-op path: a backend that is not the native one itself (same kernels). */
function perOp(model: Model): Transformer {
  const t = model.transformer;
  return new Transformer(t.cfg, t.weights, Object.create(t.backend), t.router, t.policy, t.experts);
}

/** Prefill, then `steps` decode tokens on both transformers; every step's logits and the caches must match bit for bit. */
function assertSameDecode(model: Model, steps: number, label: string): void {
  const fused = model.transformer;
  const plain = perOp(model);
  const cfg = model.config;
  const caches = [fused, plain].map(() => new KvCache(cfg.numLayers, 64, cfg.numKvHeads * cfg.headDim));
  const prompt = [3, 77, 141, 9, 200, 31, 5];
  let a = fused.forward(prompt, caches[0]!).slice();
  let b = plain.forward(prompt, caches[1]!).slice();
  assert.deepEqual(a, b, `${label}: prefill`);
  for (let s = 0; s < steps; s++) {
    const id = (s * 131 + 17) % cfg.vocabSize; // fixed ids: the two paths see the same tokens
    a = fused.forward([id], caches[0]!).slice();
    b = plain.forward([id], caches[1]!).slice();
    assert.deepEqual(a, b, `${label}: decode step ${s}`);
  }
  assert.equal(fused.decodePath, 'fused', `${label}: the fused path ran`);
  assert.equal(plain.decodePath, 'per-op', label);
  for (let l = 0; l < cfg.numLayers; l++) {
    assert.deepEqual(caches[0]!.keys[l], caches[1]!.keys[l], `${label}: layer ${l} keys`);
    assert.deepEqual(caches[0]!.values[l], caches[1]!.values[l], `${label}: layer ${l} values`);
  }
}

for (const dtype of ['f32', 'bf16'] as const) {
  test(`fused decode equals the per-op path bit for bit (mixtral ${dtype}, exact and bf16 precision, 1 and 2 threads)`, async () => {
    const out = join(dir, `mixtral-${dtype}`);
    await generateModel({ arch: 'mixtral', size: 'tiny', out, seed: 11, dtype });
    for (const matmulPrecision of ['exact', 'bf16'] as const) {
      for (const threads of [1, 2]) {
        const model = await loadModel(out, { threads, matmulPrecision });
        assertSameDecode(model, 8, `${dtype} weights, ${matmulPrecision}, ${threads} threads`);
      }
    }
    setThreads(2);
  });
}

// the trained model ships beside the repository (../shared), as in CI
const pymoe = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'shared', 'models', 'pymoe-mixtral');
test('fused decode equals the per-op path on the trained model (learned routing)', { skip: !existsSync(join(pymoe, 'config.json')) && `no ${pymoe}` }, async () => {
  const model = await loadModel(pymoe);
  assertSameDecode(model, 12, 'pymoe-mixtral');
});

test('a routing listener sees the same decisions on the fused step as on the per-op path, and keeps the step fused', async () => {
  const model = await loadModel(join(dir, 'mixtral-f32'));
  const fused = model.transformer;
  const plain = perOp(model);
  const cfg = model.config;
  const seen: Record<string, string[]> = { fused: [], plain: [] };
  const listener = (into: string[]) => (layer: number, r: { tokens: number; k: number; experts: Int32Array; weights: Float32Array }) =>
    into.push(`${layer} ${r.tokens}x${r.k} ${Array.from(r.experts).join(',')} ${Array.from(r.weights).join(',')}`);
  assert.equal(fused.decodePath, 'fused');
  const steps = (fused as unknown as { fused: { run: (...a: unknown[]) => void } }).fused;
  let fusedRuns = 0;
  const run = steps.run.bind(steps);
  steps.run = (...a: unknown[]) => {
    fusedRuns++;
    run(...a);
  };
  const caches = [0, 1].map(() => new KvCache(cfg.numLayers, 32, cfg.numKvHeads * cfg.headDim));
  fused.forward([4, 8, 15], caches[0]!);
  plain.forward([4, 8, 15], caches[1]!);
  for (let s = 0; s < 5; s++) {
    const a = fused.forward([16 + s], caches[0]!, { onRouting: listener(seen.fused!) }).slice();
    const b = plain.forward([16 + s], caches[1]!, { onRouting: listener(seen.plain!) }).slice();
    assert.deepEqual(a, b, `step ${s}`);
  }
  assert.equal(fusedRuns, 5, 'every decode step took the fused path');
  assert.equal(seen.fused!.length, 5 * cfg.numLayers);
  assert.deepEqual(seen.fused, seen.plain);
});

test('the per-op path runs where the fused step would not be the same computation', async () => {
  for (const arch of ['qwen2_moe', 'olmoe', 'qwen3_moe'] as const) {
    const out = join(dir, arch);
    await generateModel({ arch, size: 'tiny', out, seed: 2 });
    const model = await loadModel(out);
    // qwen2_moe: a shared expert; olmoe and qwen3_moe: q/k norms
    assert.equal(model.transformer.decodePath, 'per-op', arch);
  }
  const out = join(dir, 'mixtral-f32');
  const model = await loadModel(out);
  assert.equal(model.transformer.decodePath, 'fused');
  const t = model.transformer;
  const profiled = new Transformer(t.cfg, t.weights, new ProfilingBackend(t.backend, weightRows(t.weights)), t.router, t.policy, t.experts);
  assert.equal(profiled.decodePath, 'per-op', 'a profiling backend sees every op');
  assert.equal((await loadModel(out, { backend: 'ref' })).transformer.decodePath, 'per-op', 'the reference backend');
  assert.equal((await loadModel(out, { lynx: 'on' })).transformer.decodePath, 'per-op', 'Lynx routes a batch, not a token');
  assert.equal((await loadModel(out, { expertCacheSlots: 2 })).transformer.decodePath, 'per-op', 'an expert cache picks the order');
});

test('the native decode calls refuse bad arguments with a clear error', async () => {
  const model = await loadModel(join(dir, 'mixtral-f32'));
  const cfg = model.config;
  const t = model.transformer;
  assert.equal(t.decodePath, 'fused');
  const plan = (t as unknown as { fused: { plan: never } }).fused.plan;
  const addon = nativeAddon();
  const H = cfg.hiddenSize, kvDim = cfg.numKvHeads * cfg.headDim;
  const x = new Float32Array(H), logits = new Float32Array(64);
  const k = new Float32Array(8 * kvDim), v = new Float32Array(8 * kvDim);
  assert.throws(() => addon.decodeExperts(plan, 0, x, Int32Array.of(0, 1), Float32Array.of(0.5, 0.5)), /attention half has not just run/);
  assert.throws(() => addon.decodeAttention(plan, cfg.numLayers, x, k, v, 0, logits), /layer must be an integer/);
  assert.throws(() => addon.decodeAttention(plan, 0, x, k, v, 8, logits), /kCache has .* needs/);
  assert.throws(() => addon.decodeAttention({} as never, 0, x, k, v, 0, logits), /decode plan/);
  addon.decodeAttention(plan, 0, x, k, v, 0, logits);
  assert.throws(() => addon.decodeExperts(plan, 0, x, Int32Array.of(1, 1), Float32Array.of(0.5, 0.5)), /chosen twice/);
  assert.throws(() => addon.decodeExperts(plan, 0, x, Int32Array.of(0, 999), Float32Array.of(0.5, 0.5)), /out of range/);
  assert.throws(() => addon.decodeExperts(plan, 0, x, Int32Array.of(0, 1), Float32Array.of(0.5)), /weights has 1 elements/);
  assert.throws(() => addon.createDecodePlan(new Float64Array(13), [], new Int32Array(0)), /inconsistent sizes/);
});

/** A one-layer f32 plan's sizes and weights (hidden 16, 2 heads of 8 over 1 kv head, ffn 16, 2 experts), all views of one buffer. */
function tinyPlanInputs(): { sizes: Float64Array; weights: Float32Array[]; buffer: ArrayBuffer } {
  const H = 16, D = 8, F = 16, E = 2;
  const lengths = [H, (2 * D + 2 * D) * H, H * 2 * D, H, E * H, ...Array(E).fill(F * H), ...Array(E).fill(F * H), ...Array(E).fill(H * F)];
  const buffer = new ArrayBuffer(lengths.reduce((a, b) => a + b, 0) * 4);
  let off = 0;
  const weights = lengths.map((n) => {
    const w = new Float32Array(buffer, off * 4, n);
    for (let i = 0; i < n; i++) w[i] = Math.sin(i + off) * 0.1;
    off += n;
    return w;
  });
  return { sizes: Float64Array.of(H, 2, 1, D, F, E, 1, 0, 10000, 1e-5, 0, 0, 2), weights, buffer };
}

test('a decode plan refuses sizes whose products would overflow, and weights whose buffer went away', () => {
  const addon = nativeAddon();
  const { sizes, weights, buffer } = tinyPlanInputs();
  const dtypes = new Int32Array(weights.length);
  // products of these sizes wrap around 2^64: checked before anything is allocated or read
  for (const [i, v] of [[1, 2 ** 33], [3, 2 ** 32], [0, 2 ** 39], [5, 5000], [12, 65]] as const) {
    const bad = sizes.slice();
    bad[i] = v;
    assert.throws(() => addon.createDecodePlan(bad, weights, dtypes), /inconsistent sizes/, `size ${i} = ${v}`);
  }
  const plan = addon.createDecodePlan(sizes, weights, dtypes);
  const x = new Float32Array(16).fill(0.5), logits = new Float32Array(2);
  const k = new Float32Array(8), v = new Float32Array(8);
  addon.decodeAttention(plan, 0, x, k, v, 0, logits);
  addon.decodeExperts(plan, 0, x, Int32Array.of(1, 0), Float32Array.of(0.6, 0.4));
  assert.ok(x.every(Number.isFinite));
  // the weights' buffer moved away (transferred): the next call throws instead of reading freed memory
  structuredClone(buffer, { transfer: [buffer] });
  assert.equal(buffer.byteLength, 0);
  assert.throws(() => addon.decodeAttention(plan, 0, x, k, v, 0, logits), /detached or resized/);
});
