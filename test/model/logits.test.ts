// Whole-model correctness: engine logits vs the independent float64 Hugging Face reference
// (test/reference/hf-reference.ts) for every architecture, several seeds, f32 and bf16, sharded and
// skewed checkpoints, through the CLI and the library, on both backends.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadReference, referenceLogits, type RefArch, type RefModel } from '../reference/hf-reference.js';
import { writeRandomCheckpoint, writeSafetensors, type RandomOpts } from '../reference/checkpoint-tools.js';
import { readSafetensorsFile } from '../reference/safetensors.js';
import { cliLogits, compareRows, genModel, libLogits, removeDir, tempDir, type Compare, type GenOpts } from '../reference/harness.js';

const ARCHS = ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe'] as const;
const TOL = { f32: 1e-4, bf16: 1e-3 };

interface Case {
  name: string;
  gen: GenOpts;
  via: Array<'cli-cpu' | 'cli-ref' | 'lib-cpu' | 'lib-ref'>;
  f16?: boolean; // rewrite the generated f32 checkpoint as F16 (gen-model writes f32/bf16 only)
  long?: boolean; // 24 positions instead of 7 (through the CLI only: a native hang cannot block the suite)
}

// per architecture: 3 f32 seeds (one skewed, one sharded) and 1 bf16 seed
const CASES: Case[] = [
  { name: 'f32 seed 1', gen: { seed: 1, dtype: 'f32' }, via: ['cli-cpu', 'cli-ref', 'lib-cpu'] },
  { name: 'f32 seed 2 skew 2', gen: { seed: 2, dtype: 'f32', skew: 2 }, via: ['lib-cpu', 'lib-ref'] },
  { name: 'f32 seed 3 sharded', gen: { seed: 3, dtype: 'f32', shardMb: 0.25 }, via: ['lib-cpu'] },
  { name: 'bf16 seed 4', gen: { seed: 4, dtype: 'bf16' }, via: ['lib-cpu', 'lib-ref'] },
  { name: 'f16 seed 6 (converted)', gen: { seed: 6, dtype: 'f32' }, via: ['lib-cpu', 'lib-ref'], f16: true },
  { name: 'f32 seed 5, 24 positions', gen: { seed: 5, dtype: 'f32' }, via: ['cli-cpu'], long: true },
  // gen-model --experts / --layers: many experts (as the expert-cache tests use), one more layer
  { name: 'f32 seed 8, 40 experts, 3 layers', gen: { seed: 8, dtype: 'f32', experts: 40, layers: 3 }, via: ['lib-cpu', 'lib-ref'] },
];

const seen: string[] = [];
let worstF32 = 0;
let worstBf16 = 0;

function idsFor(ref: RefModel, long = false): number[] {
  const V = ref.cfg.vocab;
  if (long) return Array.from({ length: 24 }, (_, i) => (i * 131 + 7) % V);
  // 7 positions: BOS-like 1, a repeated token, the last vocabulary id
  return [1, 17, 300 % V, 42, V - 1, 7, 7];
}

async function engineRows(via: Case['via'][number], dir: string, ids: number[]): Promise<ArrayLike<ArrayLike<number>>> {
  switch (via) {
    case 'cli-cpu':
      return cliLogits(dir, ids);
    case 'cli-ref':
      return cliLogits(dir, ids, 'ref');
    case 'lib-cpu':
      return libLogits(dir, ids, 'cpu');
    case 'lib-ref':
      return libLogits(dir, ids, 'ref');
  }
}

function describeErr(c: Compare, V: number): string {
  return `max rel err ${c.maxErr.toExponential(2)} at position ${c.worstRow}, vocab ${c.worstCol}/${V}: engine ${c.engineAt} vs reference ${c.refAt}`;
}

const root = tempDir('moesaic-logits-');
after(() => {
  removeDir(root);
  console.log(`# logits vs reference: worst f32 ${worstF32.toExponential(2)}, worst bf16/f16 ${worstBf16.toExponential(2)}`);
  for (const s of seen) console.log(`#   ${s}`);
});

for (const arch of ARCHS) {
  describe(arch, () => {
    for (const c of CASES) {
      describe(c.name, () => {
        const dir = join(root, `${arch}-${c.name.replace(/\W+/g, '_')}`);
        let ref: RefModel;
        let ids: number[];
        let expected: Float64Array[];
        before(async () => {
          await genModel(dir, arch, c.gen);
          if (c.f16) {
            const file = join(dir, 'model.safetensors');
            const tensors = readSafetensorsFile(file);
            writeSafetensors(file, [...tensors].map(([name, t]) => ({ name, shape: t.shape, values: t.data, dtype: 'F16' as const })));
          }
          ref = loadReference(dir);
          ids = idsFor(ref, c.long);
          expected = referenceLogits(ref, ids);
        });
        if (c.gen.shardMb !== undefined) {
          test('checkpoint is sharded with an index', () => {
            assert.ok(existsSync(join(dir, 'model.safetensors.index.json')), 'no model.safetensors.index.json');
            const shards = readdirSync(dir).filter((f) => /^model-\d+-of-\d+\.safetensors$/.test(f));
            assert.ok(shards.length >= 2, `expected >= 2 shards, got ${shards.join(',')}`);
          });
        }
        for (const via of c.via) {
          test(`${via} matches the float64 reference`, async () => {
            const rows = await engineRows(via, dir, ids);
            assert.equal(rows.length, ids.length, 'one row per input position');
            for (let t = 0; t < rows.length; t++) assert.equal(rows[t].length, ref.cfg.vocab, 'row length = vocab_size');
            const cmp = compareRows(rows, expected);
            const tol = c.f16 ? TOL.bf16 : TOL[c.gen.dtype ?? 'f32'];
            if (c.gen.dtype === 'bf16' || c.f16) worstBf16 = Math.max(worstBf16, cmp.maxErr);
            else worstF32 = Math.max(worstF32, cmp.maxErr);
            seen.push(`${arch} ${c.name} ${via}: ${cmp.maxErr.toExponential(2)}`);
            assert.ok(cmp.maxErr < tol, `${arch} ${c.name} ${via}: ${describeErr(cmp, ref.cfg.vocab)} (tolerance ${tol})`);
          });
        }
      });
    }
  });
}

// Config fields that the generated tiny models leave at their defaults, switched on by editing
// config.json (a field set to undefined is removed): each must change the reference's logits (so the
// comparison has teeth) and the engine must follow. `same: true` marks fields that transformers
// ignores (the reference logits must stay those of the unedited model), and the engine must too.
const VARIANTS: Array<{ arch: (typeof ARCHS)[number]; name: string; patch: Record<string, unknown>; same?: boolean }> = [
  { arch: 'mixtral', name: 'sliding_window 4', patch: { sliding_window: 4 } },
  { arch: 'olmoe', name: 'clip_qkv 0.3', patch: { clip_qkv: 0.3 } },
  { arch: 'olmoe', name: 'norm_topk_prob true', patch: { norm_topk_prob: true } },
  { arch: 'qwen2_moe', name: 'norm_topk_prob true', patch: { norm_topk_prob: true } },
  { arch: 'qwen3_moe', name: 'norm_topk_prob false', patch: { norm_topk_prob: false } },
  // MixtralConfig's defaults are rope_theta 1e6 and rms_norm_eps 1e-5 (gen-model writes 10000)
  { arch: 'mixtral', name: 'no rope_theta / rms_norm_eps (class defaults)', patch: { rope_theta: undefined, rms_norm_eps: undefined } },
  // transformers 5 forms: RoPE in rope_parameters, dtype for torch_dtype, head_dim null, canonical alias names
  {
    arch: 'mixtral',
    name: 'transformers 5: rope_parameters, dtype, head_dim null',
    patch: { rope_theta: undefined, rope_parameters: { rope_theta: 1e6, rope_type: 'default' }, torch_dtype: undefined, dtype: 'float32', head_dim: null },
  },
  {
    arch: 'qwen3_moe',
    name: 'transformers 5: num_local_experts, rope_parameters',
    patch: { num_experts: undefined, num_local_experts: 8, rope_theta: undefined, rope_parameters: { rope_theta: 10000, rope_type: 'default' } },
  },
  { arch: 'olmoe', name: 'num_local_experts alias, rope_theta 500', patch: { num_experts: undefined, num_local_experts: 8, rope_theta: 500 } },
  { arch: 'qwen2_moe', name: 'qkv_bias false', patch: { qkv_bias: false } },
  { arch: 'qwen2_moe', name: 'sliding_window 4 with use_sliding_window false', patch: { sliding_window: 4, use_sliding_window: false }, same: true },
  { arch: 'qwen3_moe', name: 'sliding_window 4 with use_sliding_window false', patch: { sliding_window: 4, use_sliding_window: false }, same: true },
  { arch: 'olmoe', name: 'sliding_window 4 (OLMoE has none)', patch: { sliding_window: 4 }, same: true },
];

describe('config variants', () => {
  const bases = new Map<string, string>();
  const baseFor = async (arch: (typeof ARCHS)[number]): Promise<string> => {
    let base = bases.get(arch);
    if (!base) {
      base = await genModel(join(root, `variant-base-${arch}`), arch, { seed: 7 });
      bases.set(arch, base);
    }
    return base;
  };
  for (const v of VARIANTS) {
    test(`${v.arch} ${v.name}: the engine matches the reference`, async () => {
      const base = await baseFor(v.arch);
      const dir = join(root, `variant-${v.arch}-${v.name.replace(/\W+/g, '_')}`);
      cpSync(base, dir, { recursive: true });
      const cfgPath = join(dir, 'config.json');
      writeFileSync(cfgPath, JSON.stringify({ ...JSON.parse(readFileSync(cfgPath, 'utf8')), ...v.patch }, null, 2));
      const ref = loadReference(dir);
      const ids = [...idsFor(ref), 99, 3]; // 9 positions (more than the sliding window)
      const expected = referenceLogits(ref, ids);
      const effect = compareRows(referenceLogits(loadReference(base), ids), expected).maxErr;
      if (v.same) assert.equal(effect, 0, `${v.name} must not change the reference logits (changed by ${effect})`);
      else assert.ok(effect > 1e-3, `${v.name} should change the reference logits (changed by ${effect})`);
      const cmp = compareRows(await libLogits(dir, ids, 'cpu'), expected);
      worstF32 = Math.max(worstF32, cmp.maxErr);
      seen.push(`${v.arch} ${v.name} lib-cpu: ${cmp.maxErr.toExponential(2)}`);
      assert.ok(cmp.maxErr < TOL.f32, `${v.arch} ${v.name}: ${describeErr(cmp, ref.cfg.vocab)}`);
    });
  }
});

// Checkpoints gen-model does not write, from the reference's own tools: head_dim != hidden_size /
// num_attention_heads (every family's attention reads config.head_dim; gen-model decouples it only for
// qwen3_moe), and attention_bias, which LlamaAttention-based families apply to q, k, v and o_proj.
describe('checkpoints from the reference tools', () => {
  const cases: Array<[string, RefArch, RandomOpts]> = [
    ['mixtral head_dim 6', 'mixtral', { headDim: 6 }],
    ['qwen2_moe head_dim 6', 'qwen2_moe', { headDim: 6 }],
    ['qwen3_moe attention_bias true', 'qwen3_moe', { configOverrides: { attention_bias: true } }],
    ['olmoe attention_bias true', 'olmoe', { configOverrides: { attention_bias: true } }],
  ];
  for (const [name, arch, opts] of cases) {
    test(`${name}: the engine matches the reference`, async () => {
      const dir = join(root, `tools-${name.replace(/\W+/g, '_')}`);
      writeRandomCheckpoint(dir, arch, { seed: 12, ...opts });
      const ref = loadReference(dir);
      if (opts.headDim) assert.equal(ref.cfg.headDim, opts.headDim);
      if (opts.configOverrides?.attention_bias) assert.ok(ref.cfg.oBias && ref.tensors.has('model.layers.0.self_attn.o_proj.bias'));
      const ids = [1, 5, 9, 2, 30, 7];
      const cmp = compareRows(await libLogits(dir, ids, 'cpu'), referenceLogits(ref, ids));
      seen.push(`${name} lib-cpu: ${cmp.maxErr.toExponential(2)}`);
      assert.ok(cmp.maxErr < TOL.f32, `${name}: ${describeErr(cmp, ref.cfg.vocab)}`);
    });
  }
});
