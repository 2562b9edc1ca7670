import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateModel } from '../../src/gen/gen-model.js';
import { loadModel } from '../../src/model/model.js';
import { copyToHugePages } from '../../src/model/huge-page-weights.js';
import { KvCache } from '../../src/model/kv-cache.js';
import { Transformer } from '../../src/model/transformer.js';
import type { Weight } from '../../src/tensor/weight.js';
import { f32Weight } from '../../src/tensor/weight.js';

const dir = mkdtempSync(join(tmpdir(), 'moesaic-hugepages-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function allWeights(v: unknown, out: Weight[] = []): Weight[] {
  if (typeof v === 'object' && v !== null && 'dtype' in v && 'data' in v) out.push(v as Weight);
  else if (Array.isArray(v)) for (const x of v) allWeights(x, out);
  else if (typeof v === 'object' && v !== null && !ArrayBuffer.isView(v)) for (const x of Object.values(v)) allWeights(x, out);
  return out;
}

test('--hugepages on copies every weight into one huge-page buffer (q/k/v fused where they can be) and gives the same logits bit for bit', async () => {
  for (const arch of ['mixtral', 'qwen2_moe'] as const) {
    const m = join(dir, arch);
    await generateModel({ arch, size: 'tiny', out: m, seed: 3, dtype: 'bf16' });
    const off = await loadModel(m, { hugepages: 'off' });
    const on = await loadModel(m, { hugepages: 'on' });
    const wOn = allWeights(on.transformer.weights);
    const wOff = allWeights(off.transformer.weights);
    assert.equal(wOn.length, wOff.length);
    const buffers = new Set(wOn.map((w) => w.data.buffer));
    assert.equal(buffers.size, 1, `${arch}: one buffer holds every weight`);
    for (const w of wOn) assert.equal(w.data.byteOffset % 64, 0, `${arch}: ${w.name} is 64-byte aligned`);
    assert.ok(!wOff.some((w) => buffers.has(w.data.buffer)), `${arch}: off keeps the mapped checkpoint`);
    wOn.forEach((w, i) => assert.deepEqual(w.data, wOff[i]!.data, `${arch}: ${w.name} copied exactly`));
    // q, k and v lie one after another in the copy: one fused product per layer where there are no q/k/v biases
    const biased = on.transformer.weights.layers[0]!.attn.qBias !== undefined;
    assert.ok(on.transformer.fusedQkv.every((w) => (w !== undefined) !== biased), `${arch}: fused q/k/v ${biased ? 'off (biases)' : 'on'}`);
    // the fused product equals three separate ones bit for bit: q copied elsewhere cannot fuse
    const apart = { ...on.transformer.weights, layers: on.transformer.weights.layers.map((l) => ({ ...l, attn: { ...l.attn, q: { ...l.attn.q, data: l.attn.q.data.slice() } } })) };
    const t = on.transformer;
    const unfused = new Transformer(on.config, apart, t.backend, t.router, t.policy);
    assert.ok(unfused.fusedQkv.every((w) => w === undefined));
    const probe = [7, 8, 9, 10];
    const fusedLogits = t.forward(probe, new KvCache(on.config.numLayers, 8, on.config.numKvHeads * on.config.headDim), { allLogits: true }).slice();
    const apartLogits = unfused.forward(probe, new KvCache(on.config.numLayers, 8, on.config.numKvHeads * on.config.headDim), { allLogits: true }).slice();
    assert.deepEqual(fusedLogits, apartLogits, `${arch}: fused q/k/v changes nothing`);
    const ids = [5, 17, 300, 41, 2, 99];
    const a = off.logits(ids);
    const b = on.logits(ids);
    for (let t = 0; t < ids.length; t++) assert.deepEqual(b[t], a[t], `${arch}: logits at position ${t}`);
    // and a decode step (one row: q, k, v split by views) after a prefill (several rows: copied apart)
    const gen = async (m: typeof on) => {
      const got: number[] = [];
      for await (const t of m.generate(ids, { maxTokens: 6, stopAtEos: false })) got.push(t.id);
      return got;
    };
    assert.deepEqual(await gen(on), await gen(off), `${arch}: greedy ids`);
  }
});

test('copyToHugePages copies a shared array once, so tied weights stay tied', () => {
  const shared = new Float32Array([1, 2, 3]);
  const weights = { embed: f32Weight('e', [3], shared), lmHead: f32Weight('h', [3], shared), layers: [{ norm: f32Weight('n', [2], new Float32Array([4, 5])) }] };
  let asked = 0;
  const copy = copyToHugePages(weights, (bytes) => {
    asked = bytes;
    return new ArrayBuffer(bytes);
  });
  assert.equal(copy.embed.data, copy.lmHead.data);
  assert.notEqual(copy.embed.data, shared);
  assert.deepEqual([...copy.layers[0]!.norm.data], [4, 5]);
  assert.equal(asked, 128, 'two arrays at 64-byte alignment');
});
