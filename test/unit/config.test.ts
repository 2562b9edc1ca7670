// config.json is read as transformers reads it: the class defaults of each family, both spellings of
// aliased fields, transformers 5's rope_parameters, and the families' sliding-window rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/model/config.js';
import { MoesaicError } from '../../src/errors.js';

// The defaults as written in transformers' configuration_{mixtral,qwen2_moe,qwen3_moe,olmoe}.py
// (the same in 4.x and 5.x for these fields). kvHeads null: equal to the attention heads.
const HF = {
  mixtral: { vocab: 32000, hidden: 4096, layers: 32, heads: 32, kvHeads: 8, maxPos: 131072, eps: 1e-5, theta: 1e6, experts: 8, topK: 2, expertFfn: 14336, denseFfn: 0, shared: 0, bos: 1, eos: [2], bias: false, norm: true },
  qwen2_moe: { vocab: 151936, hidden: 2048, layers: 24, heads: 16, kvHeads: 16, maxPos: 32768, eps: 1e-6, theta: 10000, experts: 60, topK: 4, expertFfn: 1408, denseFfn: 5632, shared: 5632, bos: null, eos: [], bias: true, norm: false },
  qwen3_moe: { vocab: 151936, hidden: 2048, layers: 24, heads: 32, kvHeads: 4, maxPos: 32768, eps: 1e-6, theta: 10000, experts: 128, topK: 8, expertFfn: 768, denseFfn: 6144, shared: 0, bos: null, eos: [], bias: false, norm: false },
  olmoe: { vocab: 50304, hidden: 2048, layers: 16, heads: 16, kvHeads: null, maxPos: 4096, eps: 1e-5, theta: 10000, experts: 64, topK: 8, expertFfn: 2048, denseFfn: 0, shared: 0, bos: null, eos: [50279], bias: false, norm: false },
} as const;

for (const [arch, d] of Object.entries(HF)) {
  test(`${arch}: an empty config takes every default of the transformers config class`, () => {
    const c = parseConfig({ model_type: arch });
    assert.deepEqual(
      [c.vocabSize, c.hiddenSize, c.numLayers, c.numHeads, c.numKvHeads, c.headDim, c.maxPositions, c.rmsEps, c.ropeTheta],
      [d.vocab, d.hidden, d.layers, d.heads, d.kvHeads ?? d.heads, d.hidden / d.heads, d.maxPos, d.eps, d.theta],
    );
    assert.deepEqual([c.numExperts, c.topK, c.expertFfn, c.denseFfn, c.sharedExpertFfn], [d.experts, d.topK, d.expertFfn, d.denseFfn, d.shared]);
    assert.deepEqual([c.bosTokenId, c.eosTokenIds, c.attentionBias, c.normTopK, c.tieEmbeddings], [d.bos, d.eos, d.bias, d.norm, false]);
    assert.equal(c.slidingWindow, 0);
    assert.equal(c.clipQkv, 0);
    assert.deepEqual(c.sparse, new Array(d.layers).fill(true));
  });

  test(`${arch}: num_experts and num_local_experts are the same field`, () => {
    assert.equal(parseConfig({ model_type: arch, num_experts: 12 }).numExperts, 12);
    assert.equal(parseConfig({ model_type: arch, num_local_experts: 12 }).numExperts, 12);
    assert.equal(parseConfig({ model_type: arch, num_local_experts: 12, num_experts: 12 }).numExperts, 12);
    assert.throws(() => parseConfig({ model_type: arch, num_local_experts: 12, num_experts: 10 }), /'num_experts' \(10\) and its alias 'num_local_experts' \(12\) disagree/);
  });

  test(`${arch}: RoPE from rope_parameters (transformers 5) before rope_theta, head_dim null`, () => {
    assert.equal(parseConfig({ model_type: arch, rope_parameters: { rope_theta: 5e5, rope_type: 'default' } }).ropeTheta, 5e5);
    assert.equal(parseConfig({ model_type: arch, rope_theta: 7e4 }).ropeTheta, 7e4);
    assert.equal(parseConfig({ model_type: arch, rope_theta: 7e4, rope_parameters: { rope_theta: 5e5 } }).ropeTheta, 5e5);
    assert.equal(parseConfig({ model_type: arch, rope_parameters: { rope_type: 'default' } }).ropeTheta, d.theta);
    assert.throws(() => parseConfig({ model_type: arch, rope_parameters: { rope_theta: 5e5, rope_type: 'yarn' } }), /rope_parameters rope_type 'yarn' is not supported/);
    assert.throws(() => parseConfig({ model_type: arch, rope_parameters: { rope_theta: -1 } }), /'rope_theta' must be a positive number, got -1/);
    assert.equal(parseConfig({ model_type: arch, head_dim: null, dtype: 'bfloat16' }).headDim, d.hidden / d.heads);
  });
}

test('sliding_window: Mixtral applies it, Qwen-MoE only with use_sliding_window, OLMoE never', () => {
  assert.equal(parseConfig({ model_type: 'mixtral', sliding_window: 4 }).slidingWindow, 4);
  assert.equal(parseConfig({ model_type: 'mixtral', sliding_window: null }).slidingWindow, 0);
  for (const arch of ['qwen2_moe', 'qwen3_moe']) {
    assert.equal(parseConfig({ model_type: arch, sliding_window: 4, use_sliding_window: false }).slidingWindow, 0);
    assert.equal(parseConfig({ model_type: arch, sliding_window: 4 }).slidingWindow, 0);
    assert.throws(() => parseConfig({ model_type: arch, sliding_window: 4, use_sliding_window: true }), /sliding-window attention .* is not supported/);
  }
  const types = ['sliding_attention', ...new Array(23).fill('full_attention')];
  assert.throws(() => parseConfig({ model_type: 'qwen2_moe', layer_types: types }), /layer_types\) is not supported/);
  assert.equal(parseConfig({ model_type: 'olmoe', sliding_window: 4, use_sliding_window: true }).slidingWindow, 0);
});

test('Qwen2-MoE reads qkv_bias; clip_qkv is OLMoE only', () => {
  assert.equal(parseConfig({ model_type: 'qwen2_moe', qkv_bias: false }).attentionBias, false);
  assert.equal(parseConfig({ model_type: 'olmoe', clip_qkv: 8 }).clipQkv, 8);
  assert.equal(parseConfig({ model_type: 'mixtral', clip_qkv: 8 }).clipQkv, 0);
  assert.throws(() => parseConfig({ model_type: 'olmoe', clip_qkv: 'x' }), /clip_qkv/);
});

test('an explicit eos outside the vocabulary is an error; a class default there is dropped', () => {
  assert.deepEqual(parseConfig({ model_type: 'olmoe', vocab_size: 100 }).eosTokenIds, []);
  assert.deepEqual(parseConfig({ model_type: 'olmoe', vocab_size: 100, eos_token_id: null }).eosTokenIds, []);
  assert.deepEqual(parseConfig({ model_type: 'mixtral', vocab_size: 100, eos_token_id: [5, 6] }).eosTokenIds, [5, 6]);
  assert.throws(() => parseConfig({ model_type: 'mixtral', vocab_size: 100, eos_token_id: 100 }), (e: unknown) => e instanceof MoesaicError && e.code === 'E_BAD_CONFIG' && /eos_token_id 100/.test(e.message));
});

test('routing settings are typed and validated where config.json is read', () => {
  const r = parseConfig({ model_type: 'qwen3_moe', scoring_func: 'sigmoid', n_group: 4, topk_group: 2, routed_scaling_factor: 2.5 }).routing;
  assert.deepEqual(r, { scoring: 'sigmoid', normTopK: false, sigmoid: { groups: 4, topGroups: 2, normalize: true, scale: 2.5 }, xmoe: { rank: 16, temperature: 0.07, seed: 0 } });
  assert.throws(() => parseConfig({ model_type: 'mixtral', scoring_func: 'tanh' }), /scoring_func 'tanh' is not supported/);
  assert.throws(() => parseConfig({ model_type: 'mixtral', n_group: 0 }), /'n_group' must be an integer >= 1/);
});

test('a defaulted field that does not fit says it is the class default', () => {
  assert.throws(() => parseConfig({ model_type: 'mixtral', num_attention_heads: 4 }), /num_attention_heads 4 is not a multiple of num_key_value_heads 8 \(MixtralConfig's default: config.json does not set it\)/);
  assert.throws(() => parseConfig({ model_type: 'mixtral', num_attention_heads: 4, num_key_value_heads: 3 }), /num_key_value_heads 3$/);
  assert.equal(parseConfig({ model_type: 'olmoe', num_attention_heads: 4 }).numKvHeads, 4); // OlmoeConfig: None = heads
});
