// bench generate's bookkeeping: the weight bytes and MACs one decode token touches, checked
// against an independent count made straight from the safetensors header of tiny checkpoints of
// every architecture (shared experts, dense layers, tied embeddings), plus attention's prefill MACs.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tokenCost, prefillAttentionMacs, prefillFlops } from '../../src/bench/model-cost.js';
import { openCheckpoint } from '../../src/model/checkpoint.js';
import { resolveWeights } from '../../src/model/layer-weights.js';
import { genModel, removeDir, tempDir } from '../reference/harness.js';

const root = tempDir('moesaic-bench-cost-');
after(() => removeDir(root));

const readMap = (path: string): ArrayBuffer => {
  const b = readFileSync(path);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
};

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** Bytes and MACs of a decode token counted from the file alone: names, shapes and byte extents. */
function independentCount(dir: string, cfg: { topK: number; numExperts: number; vocabSize: number; tieEmbeddings: boolean }) {
  const buf = readFileSync(join(dir, 'model.safetensors'));
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, HeaderEntry>;
  let bytes = 0;
  let macs = 0;
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const size = t.data_offsets[1] - t.data_offsets[0];
    const numel = t.shape.reduce((a, b) => a * b, 1);
    const matrix = t.shape.length === 2;
    if (name === 'model.embed_tokens.weight') {
      bytes += size / cfg.vocabSize; // one row is looked up
      if (cfg.tieEmbeddings) {
        bytes += size; // ... and the whole matrix is the lm_head
        macs += numel;
      }
    } else if (/\.experts\.\d+\./.test(name)) {
      // every routed expert of a layer has one shape: top-k of them are read per token
      bytes += (size * cfg.topK) / cfg.numExperts;
      macs += (numel * cfg.topK) / cfg.numExperts;
    } else {
      bytes += size;
      if (matrix) macs += numel;
    }
  }
  return { bytes, macs };
}

for (const arch of ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe'] as const) {
  describe(`token cost: ${arch}`, () => {
    for (const dtype of ['f32', 'bf16'] as const) {
      test(`${dtype}: decode bytes and MACs equal an independent count from the file`, async () => {
        const dir = await genModel(join(root, `${arch}-${dtype}`), arch, { dtype });
        const { config, tensors } = openCheckpoint(dir, readMap);
        const cost = tokenCost(config, resolveWeights(config, tensors), 5);
        const want = independentCount(dir, config);
        assert.equal(cost.decodeBytesPerToken, want.bytes);
        assert.equal(cost.macsPerToken, want.macs);
        assert.ok(cost.decodeBytesPerToken > 0 && cost.macsPerToken > 0);
      });
    }
  });
}

test('attention MACs of a prefill: scores and values against p+1 keys per token', async () => {
  const dir = await genModel(join(root, 'attn'), 'mixtral');
  const { config } = openCheckpoint(dir, readMap);
  const per = config.numLayers * config.numHeads * config.headDim;
  assert.equal(prefillAttentionMacs(config, 1), 2 * per);
  assert.equal(prefillAttentionMacs(config, 3), 2 * per * (1 + 2 + 3));
  const cost = { decodeBytesPerToken: 0, macsPerToken: 10, prefillAttentionMacs: 7 };
  assert.equal(prefillFlops(cost, 4), 2 * (10 * 4 + 7));
});
