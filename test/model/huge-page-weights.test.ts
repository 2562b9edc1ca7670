import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateModel } from '../../src/gen/gen-model.js';
import { loadModel } from '../../src/model/model.js';
import { copyToHugePages } from '../../src/model/huge-page-weights.js';
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

test('--hugepages on copies every weight into one huge-page buffer and gives the same logits bit for bit', async () => {
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
    const ids = [5, 17, 300, 41, 2, 99];
    const a = off.logits(ids);
    const b = on.logits(ids);
    for (let t = 0; t < ids.length; t++) assert.deepEqual(b[t], a[t], `${arch}: logits at position ${t}`);
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
