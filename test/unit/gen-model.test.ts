import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateModel } from '../../src/gen/gen-model.js';
import type { GenModelOptions } from '../../src/gen/gen-model.js';
import { MoesaicError } from '../../src/errors.js';

/** Minimal independent safetensors reader: header JSON plus raw bytes per tensor. */
interface StTensor {
  dtype: string;
  shape: number[];
  bytes: Buffer;
  begin: number; // absolute file offset
}
function readSafetensors(path: string): Map<string, StTensor> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  assert.equal((8 + n) % 8, 0, `${path}: data section not 8-aligned`);
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  assert.deepEqual(header['__metadata__'], { format: 'pt' });
  const out = new Map<string, StTensor>();
  const spans: [number, number][] = [];
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const t = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const [b, e] = t.data_offsets;
    const elem = t.dtype === 'F32' ? 4 : t.dtype === 'BF16' ? 2 : NaN;
    assert.equal(e - b, t.shape.reduce((a, c) => a * c, 1) * elem, `${name}: byte span != shape`);
    assert.equal((8 + n + b) % 8, 0, `${name}: data not 8-byte aligned`);
    spans.push([b, e]);
    out.set(name, { dtype: t.dtype, shape: t.shape, bytes: buf.subarray(8 + n + b, 8 + n + e), begin: 8 + n + b });
  }
  // safetensors requires the tensors to cover the data section exactly, without gaps or overlaps
  spans.sort((x, y) => x[0] - y[0]);
  let end = 0;
  for (const [b, e] of spans) {
    assert.equal(b, end, `${path}: gap or overlap at ${b}`);
    end = e;
  }
  assert.equal(8 + n + end, buf.length, `${path}: trailing bytes`);
  return out;
}

function f32(t: StTensor): Float32Array {
  assert.equal(t.dtype, 'F32');
  return new Float32Array(t.bytes.buffer.slice(t.bytes.byteOffset, t.bytes.byteOffset + t.bytes.length));
}

/** The tensor names and shapes each architecture must have, written from the Hugging Face modelling code. */
function expectedTensors(arch: string, c: Record<string, any>): Map<string, number[]> {
  const H = c.hidden_size, V = c.vocab_size, nh = c.num_attention_heads, nkv = c.num_key_value_heads;
  const hd = c.head_dim ?? H / nh;
  const E = c.num_local_experts ?? c.num_experts;
  const m = new Map<string, number[]>();
  m.set('model.embed_tokens.weight', [V, H]);
  m.set('model.norm.weight', [H]);
  if (!c.tie_word_embeddings) m.set('lm_head.weight', [V, H]);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}.`;
    m.set(p + 'input_layernorm.weight', [H]);
    m.set(p + 'post_attention_layernorm.weight', [H]);
    m.set(p + 'self_attn.q_proj.weight', [nh * hd, H]);
    m.set(p + 'self_attn.k_proj.weight', [nkv * hd, H]);
    m.set(p + 'self_attn.v_proj.weight', [nkv * hd, H]);
    m.set(p + 'self_attn.o_proj.weight', [H, nh * hd]);
    if (arch === 'qwen2_moe') {
      m.set(p + 'self_attn.q_proj.bias', [nh * hd]);
      m.set(p + 'self_attn.k_proj.bias', [nkv * hd]);
      m.set(p + 'self_attn.v_proj.bias', [nkv * hd]);
    }
    if (arch === 'qwen3_moe') {
      m.set(p + 'self_attn.q_norm.weight', [hd]);
      m.set(p + 'self_attn.k_norm.weight', [hd]);
    }
    if (arch === 'olmoe') {
      m.set(p + 'self_attn.q_norm.weight', [nh * hd]);
      m.set(p + 'self_attn.k_norm.weight', [nkv * hd]);
    }
    if (arch === 'mixtral') {
      const F = c.intermediate_size;
      m.set(p + 'block_sparse_moe.gate.weight', [E, H]);
      for (let e = 0; e < E; e++) {
        m.set(p + `block_sparse_moe.experts.${e}.w1.weight`, [F, H]);
        m.set(p + `block_sparse_moe.experts.${e}.w3.weight`, [F, H]);
        m.set(p + `block_sparse_moe.experts.${e}.w2.weight`, [H, F]);
      }
      continue;
    }
    const sparse = arch === 'olmoe' || (!c.mlp_only_layers.includes(i) && E > 0 && (i + 1) % c.decoder_sparse_step === 0);
    if (!sparse) {
      m.set(p + 'mlp.gate_proj.weight', [c.intermediate_size, H]);
      m.set(p + 'mlp.up_proj.weight', [c.intermediate_size, H]);
      m.set(p + 'mlp.down_proj.weight', [H, c.intermediate_size]);
      continue;
    }
    const F = arch === 'olmoe' ? c.intermediate_size : c.moe_intermediate_size;
    m.set(p + 'mlp.gate.weight', [E, H]);
    for (let e = 0; e < E; e++) {
      m.set(p + `mlp.experts.${e}.gate_proj.weight`, [F, H]);
      m.set(p + `mlp.experts.${e}.up_proj.weight`, [F, H]);
      m.set(p + `mlp.experts.${e}.down_proj.weight`, [H, F]);
    }
    if (arch === 'qwen2_moe') {
      const S = c.shared_expert_intermediate_size;
      m.set(p + 'mlp.shared_expert.gate_proj.weight', [S, H]);
      m.set(p + 'mlp.shared_expert.up_proj.weight', [S, H]);
      m.set(p + 'mlp.shared_expert.down_proj.weight', [H, S]);
      m.set(p + 'mlp.shared_expert_gate.weight', [1, H]);
    }
  }
  return m;
}

const root = mkdtempSync(join(tmpdir(), 'moesaic-gen-test-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));
let counter = 0;
async function gen(opts: Omit<GenModelOptions, 'out'>): Promise<string> {
  const out = join(root, `m${counter++}`);
  await generateModel({ ...opts, out });
  return out;
}
const readJson = (dir: string, f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8'));
function stddev(a: ArrayLike<number>): { mean: number; std: number } {
  let s = 0, s2 = 0;
  for (let i = 0; i < a.length; i++) (s += a[i]!), (s2 += a[i]! * a[i]!);
  const mean = s / a.length;
  return { mean, std: Math.sqrt(s2 / a.length - mean * mean) };
}

const ARCH_CLASS = { mixtral: 'MixtralForCausalLM', qwen2_moe: 'Qwen2MoeForCausalLM', qwen3_moe: 'Qwen3MoeForCausalLM', olmoe: 'OlmoeForCausalLM' } as const;

for (const arch of Object.keys(ARCH_CLASS) as (keyof typeof ARCH_CLASS)[]) {
  test(`tiny ${arch}: config fields and exact HF tensor names/shapes`, async () => {
    const dir = await gen({ arch, size: 'tiny', seed: 1 });
    const c = readJson(dir, 'config.json');
    assert.deepEqual(c.architectures, [ARCH_CLASS[arch]]);
    assert.equal(c.model_type, arch);
    assert.equal(c.hidden_size, 64);
    assert.equal(c.vocab_size, 512);
    assert.equal(c.max_position_embeddings, 256);
    assert.equal(c.num_attention_heads, 4);
    assert.equal(c.num_key_value_heads, 2);
    assert.equal(c.num_experts_per_tok, 2);
    assert.equal(c.torch_dtype, 'float32');
    assert.equal(c.hidden_act, 'silu');
    assert.equal(c.sliding_window, null);
    assert.equal(c.rope_scaling, null);
    for (const k of ['rms_norm_eps', 'rope_theta', 'bos_token_id', 'eos_token_id', 'tie_word_embeddings', 'attention_dropout']) {
      assert.ok(k in c, `config.json lacks ${k}`);
    }
    if (arch === 'mixtral') assert.equal(c.num_local_experts, 8);
    else assert.equal(c.num_experts, 8);
    if (arch === 'qwen3_moe') {
      assert.equal(c.head_dim, 32);
      assert.notEqual(c.head_dim, c.hidden_size / c.num_attention_heads);
      assert.equal(c.norm_topk_prob, true);
      assert.equal(c.tie_word_embeddings, true);
    } else {
      assert.equal(c.tie_word_embeddings, false);
      assert.ok(!('head_dim' in c));
    }
    if (arch === 'qwen2_moe') {
      assert.equal(c.num_hidden_layers, 3);
      assert.deepEqual(c.mlp_only_layers, [1]);
      assert.equal(c.norm_topk_prob, false);
      assert.equal(c.use_sliding_window, false);
      assert.equal(c.shared_expert_intermediate_size, 48);
    }
    if (arch === 'olmoe') assert.equal(c.clip_qkv, null);

    const st = readSafetensors(join(dir, 'model.safetensors'));
    const expected = expectedTensors(arch, c);
    assert.deepEqual([...st.keys()].sort(), [...expected.keys()].sort());
    for (const [name, shape] of expected) assert.deepEqual(st.get(name)!.shape, shape, name);

    // values: not degenerate, on the intended scales
    const q = stddev(f32(st.get('model.layers.0.self_attn.q_proj.weight')!));
    assert.ok(Math.abs(q.std - 1 / 8) < 0.02, `q_proj std ${q.std}`);
    const g = stddev(f32(st.get('model.layers.0.input_layernorm.weight')!));
    assert.ok(Math.abs(g.mean - 1) < 0.05 && g.std > 0.01 && g.std < 0.2, `norm gain mean ${g.mean} std ${g.std}`);
    const emb = stddev(f32(st.get('model.embed_tokens.weight')!));
    assert.ok(emb.std > 0.8 && emb.std < 1.5, `embedding std ${emb.std}`);
    const genCfg = readJson(dir, 'generation_config.json');
    assert.equal(genCfg.bos_token_id, c.bos_token_id);
    assert.equal(genCfg.eos_token_id, c.eos_token_id);
    // nothing but DIR is left in the parent: the temporary build directory was renamed away
    assert.deepEqual(readdirSync(root).filter((f) => f.startsWith('.')), []);
  });
}

test('small olmoe bf16: dims of the small size', async () => {
  const dir = await gen({ arch: 'olmoe', size: 'small', dtype: 'bf16', seed: 2 });
  const c = readJson(dir, 'config.json');
  assert.equal(c.torch_dtype, 'bfloat16');
  assert.deepEqual([c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads], [256, 4, 8, 4]);
  assert.deepEqual([c.num_experts, c.num_experts_per_tok, c.intermediate_size, c.vocab_size, c.max_position_embeddings], [8, 2, 512, 2048, 1024]);
  const st = readSafetensors(join(dir, 'model.safetensors'));
  const expected = expectedTensors('olmoe', c);
  assert.deepEqual([...st.keys()].sort(), [...expected.keys()].sort());
  for (const [name, t] of st) {
    assert.equal(t.dtype, 'BF16', name);
    assert.deepEqual(t.shape, expected.get(name), name);
  }
});

test('same seed gives identical bytes; another seed gives other weights', async () => {
  const a = await gen({ arch: 'mixtral', size: 'tiny', seed: 7, skew: 1 });
  const b = await gen({ arch: 'mixtral', size: 'tiny', seed: 7, skew: 1 });
  const c = await gen({ arch: 'mixtral', size: 'tiny', seed: 8, skew: 1 });
  const files = readdirSync(a).sort();
  assert.deepEqual(readdirSync(b).sort(), files);
  for (const f of files) assert.ok(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), `${f} differs between runs`);
  const ta = readSafetensors(join(a, 'model.safetensors'));
  const tc = readSafetensors(join(c, 'model.safetensors'));
  for (const [name, t] of ta) assert.ok(!t.bytes.equals(tc.get(name)!.bytes), `${name} identical for seeds 7 and 8`);
  assert.ok(readFileSync(join(a, 'tokenizer.json')).equals(readFileSync(join(c, 'tokenizer.json'))));
});

test('bf16 weights are the f32 weights rounded to nearest even', async () => {
  const a = readSafetensors(join(await gen({ arch: 'qwen2_moe', size: 'tiny', seed: 3 }), 'model.safetensors'));
  const b = readSafetensors(join(await gen({ arch: 'qwen2_moe', size: 'tiny', seed: 3, dtype: 'bf16' }), 'model.safetensors'));
  const view = new DataView(new ArrayBuffer(4));
  let checked = 0;
  for (const [name, t] of a) {
    const src = f32(t);
    const h = b.get(name)!;
    assert.equal(h.dtype, 'BF16');
    for (let i = 0; i < src.length; i++) {
      view.setFloat32(0, src[i]!);
      const bits = view.getUint32(0);
      const lower = bits & 0xffff;
      let top = bits >>> 16;
      if (lower > 0x8000 || (lower === 0x8000 && (top & 1) === 1)) top += 1;
      assert.equal(h.bytes.readUInt16LE(2 * i), top, `${name}[${i}]`);
      checked++;
    }
  }
  assert.ok(checked > 100000);
});

test('sharded output: HF index, shard names, and shards union to the unsharded tensors', async () => {
  const whole = readSafetensors(join(await gen({ arch: 'mixtral', size: 'tiny', seed: 5 }), 'model.safetensors'));
  const dir = await gen({ arch: 'mixtral', size: 'tiny', seed: 5, shardMb: 0.2 });
  assert.ok(!existsSync(join(dir, 'model.safetensors')));
  const index = readJson(dir, 'model.safetensors.index.json');
  const files = [...new Set(Object.values(index.weight_map as Record<string, string>))].sort();
  assert.ok(files.length >= 3, `only ${files.length} shards`);
  files.forEach((f, i) => assert.equal(f, `model-${String(i + 1).padStart(5, '0')}-of-${String(files.length).padStart(5, '0')}.safetensors`));
  assert.deepEqual(Object.keys(index.weight_map).sort(), [...whole.keys()].sort());
  let total = 0;
  const seen = new Set<string>();
  for (const f of files) {
    const shard = readSafetensors(join(dir, f));
    let shardBytes = 0;
    for (const [name, t] of shard) {
      assert.equal(index.weight_map[name], f, `${name} listed in another file`);
      assert.ok(t.bytes.equals(whole.get(name)!.bytes), `${name} differs from the unsharded tensor`);
      assert.deepEqual(t.shape, whole.get(name)!.shape);
      seen.add(name);
      shardBytes += t.bytes.length;
    }
    // no shard exceeds the limit unless it holds a single tensor bigger than the limit
    assert.ok(shardBytes <= 0.2e6 || shard.size === 1, `${f} holds ${shardBytes} bytes`);
    total += shardBytes;
  }
  assert.equal(seen.size, whole.size);
  assert.equal(index.metadata.total_size, total);
});

/** Per-expert mean router logit of layer 0 over embedding rows put through RMSNorm (gain ignored). */
function routerMeans(dir: string): { spread: number; topCounts: number[] } {
  const st = readSafetensors(join(dir, 'model.safetensors'));
  const emb = f32(st.get('model.embed_tokens.weight')!);
  const gate = f32(st.get('model.layers.0.block_sparse_moe.gate.weight')!);
  const H = 64, E = 8, rows = 512;
  const sums = new Float64Array(E);
  const topCounts = new Array<number>(E).fill(0);
  for (let r = 0; r < rows; r++) {
    const x = emb.subarray(r * H, (r + 1) * H);
    let ms = 0;
    for (const v of x) ms += v * v;
    const inv = 1 / Math.sqrt(ms / H + 1e-5);
    let best = 0, bestV = -Infinity;
    for (let e = 0; e < E; e++) {
      let dot = 0;
      for (let j = 0; j < H; j++) dot += gate[e * H + j]! * x[j]! * inv;
      sums[e]! += dot;
      if (dot > bestV) (bestV = dot), (best = e);
    }
    topCounts[best]!++;
  }
  const means = [...sums].map((s) => s / rows);
  return { spread: Math.max(...means) - Math.min(...means), topCounts };
}

test('--skew makes expert popularity uneven and changes only the routers', async () => {
  const flatDir = await gen({ arch: 'mixtral', size: 'tiny', seed: 11, skew: 0 });
  const skewDir = await gen({ arch: 'mixtral', size: 'tiny', seed: 11, skew: 3 });
  const flat = routerMeans(flatDir);
  const skewed = routerMeans(skewDir);
  assert.ok(skewed.spread > 1.5, `skewed spread ${skewed.spread}`);
  assert.ok(skewed.spread > 5 * flat.spread, `spread ${skewed.spread} vs ${flat.spread} at skew 0`);
  // with no skew every expert wins top-1 for some rows; with skew the favourite wins far more than 1/8
  assert.ok(Math.min(...flat.topCounts) > 0, `skew 0 top-1 counts ${flat.topCounts}`);
  assert.ok(Math.max(...skewed.topCounts) > 2 * Math.max(...flat.topCounts), `top-1 counts ${skewed.topCounts} vs ${flat.topCounts}`);
  const a = readSafetensors(join(flatDir, 'model.safetensors'));
  const b = readSafetensors(join(skewDir, 'model.safetensors'));
  for (const [name, t] of a) {
    assert.equal(t.bytes.equals(b.get(name)!.bytes), !name.endsWith('block_sparse_moe.gate.weight'), name);
  }
});

test('refuses a non-empty foreign directory; replaces an earlier gen-model output', async () => {
  const foreign = join(root, 'foreign');
  mkdirSync(foreign);
  writeFileSync(join(foreign, 'notes.txt'), 'keep me');
  await assert.rejects(generateModel({ arch: 'olmoe', size: 'tiny', out: foreign }), (e: unknown) => {
    assert.ok(e instanceof MoesaicError && e.code === 'E_BAD_OPTION', String(e));
    assert.match((e as Error).message, /foreign/);
    return true;
  });
  assert.deepEqual(readdirSync(foreign), ['notes.txt']);

  const dir = await gen({ arch: 'olmoe', size: 'tiny', seed: 1 });
  await generateModel({ arch: 'mixtral', size: 'tiny', seed: 1, out: dir });
  assert.equal(readJson(dir, 'config.json').model_type, 'mixtral');
  assert.deepEqual(readdirSync(root).filter((f) => f.startsWith('.')), []);
});

test('library rejects bad options with E_BAD_OPTION naming the option', async () => {
  const out = join(root, 'never');
  const cases: [Partial<GenModelOptions>, RegExp][] = [
    [{ size: 'huge' as never }, /--size/],
    [{ arch: 'gpt2' as never }, /--arch/],
    [{ skew: -1 }, /--skew/],
    [{ seed: 1.5 }, /--seed/],
    [{ shardMb: 0 }, /--shard-mb/],
    [{ dtype: 'f16' as never }, /--dtype/],
    [{ experts: 1 }, /--experts must be an integer in \[2, 1024\]/],
    [{ experts: 1025 }, /--experts/],
    [{ experts: 2.5 }, /--experts/],
    [{ layers: 0 }, /--layers must be an integer in \[1, 256\]/],
    [{ layers: 257 }, /--layers/],
  ];
  for (const [bad, re] of cases) {
    await assert.rejects(generateModel({ arch: 'mixtral', size: 'tiny', out, ...bad }), (e: unknown) => {
      assert.ok(e instanceof MoesaicError && e.code === 'E_BAD_OPTION', String(e));
      assert.match((e as Error).message, re);
      return true;
    });
  }
  assert.ok(!existsSync(out));
});

test('a temporary folder left by a killed run is removed by the next run; a live one is kept', async () => {
  const parent = mkdtempSync(join(tmpdir(), 'moesaic-stale-'));
  try {
    const dead = join(parent, '.m.moesaic-tmp-999999999-1'); // no such process
    const live = join(parent, `.m.moesaic-tmp-${process.pid}-1`); // this process: alive
    mkdirSync(dead);
    mkdirSync(live);
    await generateModel({ arch: 'olmoe', size: 'tiny', out: join(parent, 'm') });
    assert.ok(!existsSync(dead), 'stale temp folder removed');
    assert.ok(existsSync(live), 'a running process keeps its temp folder');
    assert.ok(existsSync(join(parent, 'm', 'config.json')));
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});

// The fields each transformers config class annotates as float (configuration_mixtral.py etc.; in 4.x
// rope_theta too): transformers 5 refuses an int there ("expected float, got int"), so the text must
// carry a decimal point or an exponent, as Python's json writes floats.
const HF_FLOAT_FIELDS = {
  mixtral: ['initializer_range', 'rms_norm_eps', 'rope_theta', 'attention_dropout', 'router_aux_loss_coef', 'router_jitter_noise'],
  qwen2_moe: ['initializer_range', 'rms_norm_eps', 'rope_theta', 'attention_dropout', 'router_aux_loss_coef'],
  qwen3_moe: ['initializer_range', 'rms_norm_eps', 'rope_theta', 'attention_dropout', 'router_aux_loss_coef'],
  olmoe: ['initializer_range', 'rms_norm_eps', 'rope_theta', 'attention_dropout', 'router_aux_loss_coef', 'clip_qkv'],
} as const;

test('config.json writes float fields as JSON floats (0.0, 1e-05) and int fields as ints, for every architecture', async () => {
  for (const arch of Object.keys(HF_FLOAT_FIELDS) as (keyof typeof HF_FLOAT_FIELDS)[]) {
    const dir = await gen({ arch, size: 'tiny', seed: 1 });
    const text = readFileSync(join(dir, 'config.json'), 'utf8');
    const c = JSON.parse(text) as Record<string, unknown>;
    let floats = 0;
    for (const field of HF_FLOAT_FIELDS[arch]) {
      if (typeof c[field] !== 'number') continue;
      floats++;
      const m = new RegExp(`\n  "${field}": (\\S+?),?\n`).exec(text);
      assert.ok(m, `${arch}: ${field} not on its own line`);
      assert.match(m[1]!, /^-?\d+(\.\d+(e[-+]\d{2,})?|e[-+]\d{2,})$/, `${arch}: ${field} written as ${m[1]}, not a float`);
    }
    assert.ok(floats >= 5, `${arch}: only ${floats} float fields checked`);
    assert.match(text, /\n  "attention_dropout": 0\.0,\n/);
    assert.match(text, /\n  "hidden_size": 64,\n/);
    assert.match(text, new RegExp(`\n  "rms_norm_eps": ${arch === 'mixtral' || arch === 'olmoe' ? '1e-05' : '1e-06'},\n`));
    if (arch === 'mixtral') assert.match(text, /\n  "router_jitter_noise": 0\.0\n/);
  }
});

test('--experts and --layers override the size table; the tensors follow the config', async () => {
  for (const arch of ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe'] as const) {
    const dir = await gen({ arch, size: 'tiny', seed: 4, experts: 36, layers: 3 });
    const c = readJson(dir, 'config.json');
    assert.equal(arch === 'mixtral' ? c.num_local_experts : c.num_experts, 36);
    assert.equal(c.num_hidden_layers, 3);
    const st = readSafetensors(join(dir, 'model.safetensors'));
    const expected = expectedTensors(arch, c);
    assert.deepEqual([...st.keys()].sort(), [...expected.keys()].sort());
    for (const [name, shape] of expected) assert.deepEqual(st.get(name)!.shape, shape, name);
    const marker = readJson(dir, 'moesaic-gen.json');
    assert.deepEqual([marker.experts, marker.layers], [36, 3]);
  }
  const one = readJson(await gen({ arch: 'qwen2_moe', size: 'tiny', layers: 1 }), 'config.json');
  assert.deepEqual([one.num_hidden_layers, one.mlp_only_layers], [1, []]); // the dense layer 1 does not exist
});
