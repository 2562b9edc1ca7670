// Self-checks of the independent float64 reference (test/reference), before it judges the engine:
// hand-computed tiny models, causality, finiteness, sharded/bf16 reading, tied embeddings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  loadReference,
  referenceLogits,
  referenceGreedy,
  softmax,
  topK,
  isSparseLayer,
  readRefConfig,
  type RefArch,
} from '../reference/hf-reference.js';
import { writeRandomCheckpoint, writeSafetensors, type TensorSpec } from '../reference/checkpoint-tools.js';
import { readCheckpoint } from '../reference/safetensors.js';

const ARCHS: RefArch[] = ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe'];

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'moesaic-ref-'));
}

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

test('softmax and top-k by hand', () => {
  const p = softmax([0, Math.log(2), Math.log(3)]);
  assert.ok(Math.abs(p[0] - 1 / 6) < 1e-15 && Math.abs(p[1] - 2 / 6) < 1e-15 && Math.abs(p[2] - 3 / 6) < 1e-15);
  assert.deepEqual(topK(Float64Array.from([0.1, 0.5, 0.2, 0.5]), 3), [1, 3, 2]);
});

test('qwen sparse-layer rule: decoder_sparse_step and mlp_only_layers', () => {
  const cfg = readRefConfig({
    model_type: 'qwen2_moe', hidden_size: 8, num_hidden_layers: 6, num_attention_heads: 2, vocab_size: 10,
    num_experts: 4, intermediate_size: 8, moe_intermediate_size: 4, decoder_sparse_step: 2, mlp_only_layers: [3],
  });
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => isSparseLayer(cfg, i)), [false, true, false, false, false, true]);
  const none = readRefConfig({
    model_type: 'qwen3_moe', hidden_size: 8, num_hidden_layers: 2, num_attention_heads: 2, vocab_size: 10,
    num_experts: 0, intermediate_size: 8, moe_intermediate_size: 4,
  });
  assert.equal(isSparseLayer(none, 0), false);
});

/**
 * A 1-layer Mixtral with hidden 2 whose answer is worked out by hand: the token embedding [1, 1] has
 * RMS 1, attention output is zero (o_proj = 0), router logits are [0, ln 2, ln 3] so the probabilities
 * are [1, 2, 3]/6; top-2 = experts 2 and 1 with renormalised weights 0.6 and 0.4; expert 1 gives
 * [silu(1) * 1, 0], expert 2 gives [0, silu(1) * 2]; expert 0 (not selected) would add 100s.
 */
test('hand-computed Mixtral MoE block (softmax over all, top-2, renormalised)', () => {
  const dir = tmp();
  try {
    const cfg = {
      architectures: ['MixtralForCausalLM'], model_type: 'mixtral', hidden_size: 2, num_hidden_layers: 1,
      num_attention_heads: 1, num_key_value_heads: 1, vocab_size: 3, rms_norm_eps: 0, rope_theta: 10000,
      num_local_experts: 3, num_experts_per_tok: 2, intermediate_size: 1, tie_word_embeddings: false,
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    const l = 'model.layers.0.';
    const m = 'model.layers.0.block_sparse_moe.';
    const t: TensorSpec[] = [
      { name: 'model.embed_tokens.weight', shape: [3, 2], values: [1, 1, 0, 0, 0, 0] },
      { name: l + 'input_layernorm.weight', shape: [2], values: [1, 1] },
      { name: l + 'post_attention_layernorm.weight', shape: [2], values: [1, 1] },
      { name: l + 'self_attn.q_proj.weight', shape: [2, 2], values: [1, 0, 0, 1] },
      { name: l + 'self_attn.k_proj.weight', shape: [2, 2], values: [1, 0, 0, 1] },
      { name: l + 'self_attn.v_proj.weight', shape: [2, 2], values: [1, 0, 0, 1] },
      { name: l + 'self_attn.o_proj.weight', shape: [2, 2], values: [0, 0, 0, 0] },
      { name: m + 'gate.weight', shape: [3, 2], values: [0, 0, Math.LN2 / 2, Math.LN2 / 2, Math.log(3) / 2, Math.log(3) / 2] },
      { name: m + 'experts.0.w1.weight', shape: [1, 2], values: [0.5, 0.5] },
      { name: m + 'experts.0.w3.weight', shape: [1, 2], values: [0.5, 0.5] },
      { name: m + 'experts.0.w2.weight', shape: [2, 1], values: [100, 100] },
      { name: m + 'experts.1.w1.weight', shape: [1, 2], values: [0.5, 0.5] },
      { name: m + 'experts.1.w3.weight', shape: [1, 2], values: [0.5, 0.5] },
      { name: m + 'experts.1.w2.weight', shape: [2, 1], values: [1, 0] },
      { name: m + 'experts.2.w1.weight', shape: [1, 2], values: [0.5, 0.5] },
      { name: m + 'experts.2.w3.weight', shape: [1, 2], values: [1, 1] },
      { name: m + 'experts.2.w2.weight', shape: [2, 1], values: [0, 1] },
      { name: 'model.norm.weight', shape: [2], values: [1, 1] },
      { name: 'lm_head.weight', shape: [3, 2], values: [1, 0, 0, 1, 1, 1] },
    ];
    // f32 storage of ln2/2, ln3/2 is exact enough: logits differ from ln2, ln3 by ~1e-8
    writeSafetensors(join(dir, 'model.safetensors'), t);
    const ref = loadReference(dir);
    const [row] = referenceLogits(ref, [0]);
    const s1 = 1 / (1 + Math.exp(-1)); // silu(1)
    const x0 = 1 + 0.4 * s1;
    const x1 = 1 + 0.6 * 2 * s1;
    const r = Math.sqrt((x0 * x0 + x1 * x1) / 2);
    const expected = [x0 / r, x1 / r, (x0 + x1) / r];
    assert.ok(maxRel(row, expected) < 1e-6, `got ${[...row]} expected ${expected}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Two tokens through one attention head (head_dim 2, identity projections, zero experts): checks
 * RoPE's rotate-half sign convention, the 1/sqrt(d) scale, and causal softmax. Token 1 has
 * h = [0, sqrt2]; rotated by angle 1 it is q = k1 = [-sqrt2 sin1, sqrt2 cos1]; k0 = [sqrt2, 0].
 * Scores: q.k0 / sqrt2 = -sqrt2 sin1, q.k1 / sqrt2 = sqrt2. Output = p0 v0 + p1 v1.
 */
test('hand-computed attention with RoPE at positions 0 and 1', () => {
  const dir = tmp();
  try {
    const cfg = {
      architectures: ['MixtralForCausalLM'], model_type: 'mixtral', hidden_size: 2, num_hidden_layers: 1,
      num_attention_heads: 1, num_key_value_heads: 1, vocab_size: 2, rms_norm_eps: 0, rope_theta: 10000,
      num_local_experts: 1, num_experts_per_tok: 1, intermediate_size: 1, tie_word_embeddings: true,
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    const l = 'model.layers.0.';
    const m = 'model.layers.0.block_sparse_moe.';
    const I2 = [1, 0, 0, 1];
    const t: TensorSpec[] = [
      { name: 'model.embed_tokens.weight', shape: [2, 2], values: [1, 0, 0, 1] },
      { name: l + 'input_layernorm.weight', shape: [2], values: [1, 1] },
      { name: l + 'post_attention_layernorm.weight', shape: [2], values: [1, 1] },
      { name: l + 'self_attn.q_proj.weight', shape: [2, 2], values: I2 },
      { name: l + 'self_attn.k_proj.weight', shape: [2, 2], values: I2 },
      { name: l + 'self_attn.v_proj.weight', shape: [2, 2], values: I2 },
      { name: l + 'self_attn.o_proj.weight', shape: [2, 2], values: I2 },
      { name: m + 'gate.weight', shape: [1, 2], values: [0, 0] },
      { name: m + 'experts.0.w1.weight', shape: [1, 2], values: [1, 1] },
      { name: m + 'experts.0.w3.weight', shape: [1, 2], values: [1, 1] },
      { name: m + 'experts.0.w2.weight', shape: [2, 1], values: [0, 0] },
      { name: 'model.norm.weight', shape: [2], values: [1, 1] },
    ];
    writeSafetensors(join(dir, 'model.safetensors'), t);
    const rows = referenceLogits(loadReference(dir), [0, 1]);
    const S = Math.SQRT2;
    const sc = [-S * Math.sin(1), S];
    const e = [Math.exp(sc[0]), Math.exp(sc[1])];
    const p = [e[0] / (e[0] + e[1]), e[1] / (e[0] + e[1])];
    const x = [p[0] * S, 1 + p[1] * S]; // token 1 residual + attention output (v = h)
    const r = Math.sqrt((x[0] ** 2 + x[1] ** 2) / 2);
    assert.ok(maxRel(rows[1], [x[0] / r, x[1] / r]) < 1e-12, `row1 ${[...rows[1]]}`);
    // token 0 attends only to itself: x = [1,0] + [sqrt2, 0]; tied head = identity
    assert.ok(maxRel(rows[0], [S, 0]) < 1e-12, `row0 ${[...rows[0]]}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const arch of ARCHS) {
  test(`${arch}: finite logits, causal, sharded and bf16 read back`, () => {
    const dir = tmp();
    try {
      writeRandomCheckpoint(join(dir, 'a'), arch, { seed: 7 });
      writeRandomCheckpoint(join(dir, 'b'), arch, { seed: 7, shards: 3 });
      writeRandomCheckpoint(join(dir, 'c'), arch, { seed: 7, dtype: 'BF16' });
      const a = loadReference(join(dir, 'a'));
      const ids = [3, 17, 0, 25, 9, 9];
      const full = referenceLogits(a, ids);
      assert.equal(full.length, ids.length);
      for (const row of full) {
        assert.equal(row.length, 40);
        for (const v of row) assert.ok(Number.isFinite(v));
      }
      // rows differ between positions (the model is not degenerate)
      assert.ok(maxRel(full[0], full[1]) > 1e-3);
      // causal: the first 3 rows do not depend on later tokens
      const prefix = referenceLogits(a, ids.slice(0, 3));
      for (let t = 0; t < 3; t++) assert.ok(maxRel(prefix[t], full[t]) < 1e-12, `${arch} row ${t}`);
      // ... while a changed earlier token does change later rows
      const changed = referenceLogits(a, [4, ...ids.slice(1)]);
      assert.ok(maxRel(changed[5], full[5]) > 1e-6);
      // sharded checkpoint gives identical tensors / logits
      const b = loadReference(join(dir, 'b'));
      assert.equal(b.tensors.size, a.tensors.size);
      const fb = referenceLogits(b, ids);
      for (let t = 0; t < ids.length; t++) assert.equal(maxRel(fb[t], full[t]), 0);
      // bf16: same weights rounded to 8 mantissa bits: close but not identical
      const c = loadReference(join(dir, 'c'));
      const fc = referenceLogits(c, ids);
      const e = Math.max(...fc.map((r, t) => maxRel(r, full[t])));
      assert.ok(e > 0 && e < 0.05, `bf16 vs f32 rel ${e}`);
      const g = referenceGreedy(a, [3, 17], 4);
      assert.ok(g.length >= 1 && g.length <= 4 && g.every((id) => id >= 0 && id < 40));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('bf16 and f16 decoding of known values', () => {
  const dir = tmp();
  try {
    const vals = [1, -2, 0.5, 3.140625, -0.0078125, 63.5];
    writeSafetensors(join(dir, 'model.safetensors'), [
      { name: 'a', shape: [6], values: vals, dtype: 'BF16' },
      { name: 'b', shape: [2, 3], values: vals, dtype: 'F16' },
      { name: 'c', shape: [6], values: vals, dtype: 'F32' },
    ]);
    const t = readCheckpoint(dir);
    assert.deepEqual([...t.get('a')!.data], vals);
    assert.deepEqual([...t.get('b')!.data], vals);
    assert.deepEqual(t.get('b')!.shape, [2, 3]);
    assert.deepEqual([...t.get('c')!.data], vals);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tied embeddings: lm_head is embed_tokens', () => {
  const dir = tmp();
  try {
    writeRandomCheckpoint(dir, 'olmoe', { seed: 3, tie: true });
    const ref = loadReference(dir);
    assert.equal(ref.tensors.has('lm_head.weight'), false);
    const rows = referenceLogits(ref, [1, 2]);
    assert.ok(rows[1].every(Number.isFinite));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Qwen2-MoE by hand (same routing as the Mixtral case, but norm_topk_prob = false, so the weights
 * stay 1/2 and 1/3), plus the shared expert: gate/up/down give [silu(1), silu(1)], scaled by
 * sigmoid(shared_expert_gate x) = sigmoid(1). q/k/v biases are present (and zero).
 */
test('hand-computed Qwen2-MoE block (no renormalisation, sigmoid-gated shared expert)', () => {
  const dir = tmp();
  try {
    const cfg = {
      architectures: ['Qwen2MoeForCausalLM'], model_type: 'qwen2_moe', hidden_size: 2, num_hidden_layers: 1,
      num_attention_heads: 1, num_key_value_heads: 1, vocab_size: 3, rms_norm_eps: 0, rope_theta: 10000,
      num_experts: 3, num_experts_per_tok: 2, intermediate_size: 1, moe_intermediate_size: 1,
      shared_expert_intermediate_size: 1, norm_topk_prob: false, decoder_sparse_step: 1, mlp_only_layers: [],
      tie_word_embeddings: false,
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    const l = 'model.layers.0.';
    const m = 'model.layers.0.mlp.';
    const ex = (e: number, up: number, down: number[]): TensorSpec[] => [
      { name: `${m}experts.${e}.gate_proj.weight`, shape: [1, 2], values: [0.5, 0.5] },
      { name: `${m}experts.${e}.up_proj.weight`, shape: [1, 2], values: [up, up] },
      { name: `${m}experts.${e}.down_proj.weight`, shape: [2, 1], values: down },
    ];
    const t: TensorSpec[] = [
      { name: 'model.embed_tokens.weight', shape: [3, 2], values: [1, 1, 0, 0, 0, 0] },
      { name: l + 'input_layernorm.weight', shape: [2], values: [1, 1] },
      { name: l + 'post_attention_layernorm.weight', shape: [2], values: [1, 1] },
      { name: l + 'self_attn.q_proj.weight', shape: [2, 2], values: [1, 0, 0, 1] },
      { name: l + 'self_attn.q_proj.bias', shape: [2], values: [0, 0] },
      { name: l + 'self_attn.k_proj.weight', shape: [2, 2], values: [1, 0, 0, 1] },
      { name: l + 'self_attn.k_proj.bias', shape: [2], values: [0, 0] },
      { name: l + 'self_attn.v_proj.weight', shape: [2, 2], values: [1, 0, 0, 1] },
      { name: l + 'self_attn.v_proj.bias', shape: [2], values: [0, 0] },
      { name: l + 'self_attn.o_proj.weight', shape: [2, 2], values: [0, 0, 0, 0] },
      { name: m + 'gate.weight', shape: [3, 2], values: [0, 0, Math.LN2 / 2, Math.LN2 / 2, Math.log(3) / 2, Math.log(3) / 2] },
      ...ex(0, 0.5, [100, 100]),
      ...ex(1, 0.5, [1, 0]),
      ...ex(2, 1, [0, 1]),
      { name: m + 'shared_expert.gate_proj.weight', shape: [1, 2], values: [0.5, 0.5] },
      { name: m + 'shared_expert.up_proj.weight', shape: [1, 2], values: [0.5, 0.5] },
      { name: m + 'shared_expert.down_proj.weight', shape: [2, 1], values: [1, 1] },
      { name: m + 'shared_expert_gate.weight', shape: [1, 2], values: [0.5, 0.5] },
      { name: 'model.norm.weight', shape: [2], values: [1, 1] },
      { name: 'lm_head.weight', shape: [3, 2], values: [1, 0, 0, 1, 1, 1] },
    ];
    writeSafetensors(join(dir, 'model.safetensors'), t);
    const [row] = referenceLogits(loadReference(dir), [0]);
    const s1 = 1 / (1 + Math.exp(-1));
    const x0 = 1 + s1 / 3 + s1 * s1;
    const x1 = 1 + 0.5 * 2 * s1 + s1 * s1;
    const r = Math.sqrt((x0 * x0 + x1 * x1) / 2);
    assert.ok(maxRel(row, [x0 / r, x1 / r, (x0 + x1) / r]) < 1e-6, `got ${[...row]}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * q/k normalisation granularity, by scale invariance: Qwen3-MoE normalises each head separately, so
 * scaling one head's q_proj rows leaves the logits unchanged; OLMoE normalises the whole q projection,
 * so the same change alters the logits, while scaling all rows does not.
 */
test('q/k norm: per head (qwen3_moe) vs full projection (olmoe)', () => {
  const dir = tmp();
  try {
    const scaleRows = (data: Float64Array, cols: number, from: number, to: number, s: number): void => {
      for (let r = from; r < to; r++) for (let c = 0; c < cols; c++) data[r * cols + c] *= s;
    };
    const ids = [5, 11, 2, 30];
    for (const arch of ['qwen3_moe', 'olmoe'] as const) {
      writeRandomCheckpoint(join(dir, arch), arch, { seed: 11, configOverrides: { rms_norm_eps: 1e-12 } });
      const base = referenceLogits(loadReference(join(dir, arch)), ids);
      const D = arch === 'qwen3_moe' ? 6 : 4;
      const oneHead = loadReference(join(dir, arch));
      scaleRows(oneHead.tensors.get('model.layers.0.self_attn.q_proj.weight')!.data, 16, 0, D, 3);
      const all = loadReference(join(dir, arch));
      scaleRows(all.tensors.get('model.layers.0.self_attn.q_proj.weight')!.data, 16, 0, 4 * D, 3);
      scaleRows(all.tensors.get('model.layers.0.self_attn.k_proj.weight')!.data, 16, 0, 2 * D, 0.5);
      const eOne = Math.max(...referenceLogits(oneHead, ids).map((r, t) => maxRel(r, base[t])));
      const eAll = Math.max(...referenceLogits(all, ids).map((r, t) => maxRel(r, base[t])));
      assert.ok(eAll < 1e-9, `${arch}: scaling all q/k rows changed logits by ${eAll}`);
      if (arch === 'qwen3_moe') assert.ok(eOne < 1e-9, `qwen3_moe per-head: ${eOne}`);
      else assert.ok(eOne > 1e-4, `olmoe full-projection norm should see one head scaled: ${eOne}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
