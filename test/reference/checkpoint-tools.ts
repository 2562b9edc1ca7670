/**
 * Test helpers that write and rewrite safetensors checkpoints without the engine: a plain writer
 * (F32 / BF16 / F16), a raw-byte rewrite that drops one tensor, and a seeded random checkpoint for
 * each architecture (used to check the reference on its own, before and independently of gen-model).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RefArch } from './hf-reference.js';
import { readSafetensorsFile } from './safetensors.js';
import { rng } from '../helpers/random.js';

export interface TensorSpec {
  name: string;
  shape: number[];
  values: ArrayLike<number>;
  dtype?: 'F32' | 'BF16' | 'F16';
}

function toBf16Bits(v: number): number {
  const b = Buffer.alloc(4);
  b.writeFloatLE(v, 0);
  const u = b.readUInt32LE(0);
  // round to nearest even
  const r = (u + 0x7fff + ((u >>> 16) & 1)) >>> 0;
  return r >>> 16;
}

function toF16Bits(v: number): number {
  if (Number.isNaN(v)) return 0x7e00;
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a === Infinity || a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -24 / 2) return sign;
  if (a < 2 ** -14) return sign | Math.round(a / 2 ** -24);
  let e = Math.floor(Math.log2(a));
  let m = Math.round((a / 2 ** e - 1) * 1024);
  if (m === 1024) {
    m = 0;
    e++;
  }
  return sign | ((e + 15) << 10) | m;
}

/** Serialises tensors into one safetensors file (header padded to 8 bytes, offsets in order). */
export function writeSafetensors(path: string, tensors: TensorSpec[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const parts: Buffer[] = [];
  let off = 0;
  for (const t of tensors) {
    const dtype = t.dtype ?? 'F32';
    const n = t.values.length;
    const bytes = Buffer.alloc(n * (dtype === 'F32' ? 4 : 2));
    for (let i = 0; i < n; i++) {
      if (dtype === 'F32') bytes.writeFloatLE(t.values[i], i * 4);
      else if (dtype === 'BF16') bytes.writeUInt16LE(toBf16Bits(t.values[i]), i * 2);
      else bytes.writeUInt16LE(toF16Bits(t.values[i]), i * 2);
    }
    header[t.name] = { dtype, shape: t.shape, data_offsets: [off, off + bytes.length] };
    parts.push(bytes);
    off += bytes.length;
  }
  writeRaw(path, header, parts);
}

function writeRaw(path: string, header: Record<string, unknown>, parts: Buffer[]): void {
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)), 0);
  writeFileSync(path, Buffer.concat([len, Buffer.from(json, 'utf8'), ...parts]));
}

/** Rewrites a safetensors file byte for byte without the tensor `drop` (dtype and data untouched). */
export function rewriteWithout(src: string, dst: string, drop: string): void {
  const buf = readFileSync(src);
  const hl = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + hl).toString('utf8')) as Record<string, any>;
  if (!(drop in header)) throw new Error(`${drop} not in ${src}`);
  const base = 8 + hl;
  const out: Record<string, unknown> = {};
  const parts: Buffer[] = [];
  let off = 0;
  const names = Object.keys(header).filter((k) => k !== '__metadata__' && k !== drop);
  names.sort((a, b) => header[a].data_offsets[0] - header[b].data_offsets[0]);
  if (header.__metadata__) out.__metadata__ = header.__metadata__;
  for (const k of names) {
    const [b, e] = header[k].data_offsets as [number, number];
    const bytes = buf.subarray(base + b, base + e);
    out[k] = { dtype: header[k].dtype, shape: header[k].shape, data_offsets: [off, off + bytes.length] };
    parts.push(Buffer.from(bytes));
    off += bytes.length;
  }
  writeRaw(dst, out, parts);
}

export { rng };

export interface RandomOpts {
  seed?: number;
  dtype?: 'F32' | 'BF16' | 'F16';
  tie?: boolean;
  configOverrides?: Record<string, unknown>;
  shards?: number; // write model-0000i-of-0000n.safetensors + index
  headDim?: number; // config.head_dim, decoupled from hidden / heads (qwen3_moe: 6 unless given)
}

/**
 * A seeded random checkpoint of one architecture with tiny dimensions (hidden 16, 4 heads, 2 kv heads,
 * 2-3 layers, 4 experts top-2, vocab 40). For reference self-tests only.
 */
export function writeRandomCheckpoint(dir: string, arch: RefArch, opts: RandomOpts = {}): Record<string, unknown> {
  mkdirSync(dir, { recursive: true });
  const r = rng(opts.seed ?? 1);
  const H = 16;
  const heads = 4;
  const kv = 2;
  const D = opts.headDim ?? (arch === 'qwen3_moe' ? 6 : H / heads); // qwen3: head_dim != hidden/heads
  const V = 40;
  const E = 4;
  const L = arch === 'qwen2_moe' ? 3 : 2;
  const I = 12;
  const MI = 8;
  const cfg: Record<string, unknown> = {
    architectures: [
      { mixtral: 'MixtralForCausalLM', qwen2_moe: 'Qwen2MoeForCausalLM', qwen3_moe: 'Qwen3MoeForCausalLM', olmoe: 'OlmoeForCausalLM' }[arch],
    ],
    model_type: arch,
    hidden_size: H,
    num_hidden_layers: L,
    num_attention_heads: heads,
    num_key_value_heads: kv,
    vocab_size: V,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    max_position_embeddings: 64,
    tie_word_embeddings: opts.tie ?? false,
    hidden_act: 'silu',
    num_experts_per_tok: 2,
    intermediate_size: I,
    eos_token_id: 39,
  };
  if (arch === 'mixtral') cfg.num_local_experts = E;
  else cfg.num_experts = E;
  if (arch === 'qwen2_moe' || arch === 'qwen3_moe') {
    cfg.moe_intermediate_size = MI;
    cfg.norm_topk_prob = arch === 'qwen3_moe';
    cfg.decoder_sparse_step = 1;
    cfg.mlp_only_layers = arch === 'qwen2_moe' ? [1] : [];
  }
  if (arch === 'qwen2_moe') cfg.shared_expert_intermediate_size = 10;
  if (arch === 'qwen3_moe' || opts.headDim !== undefined) cfg.head_dim = D;
  if (arch === 'qwen3_moe') cfg.attention_bias = false;
  if (arch === 'olmoe') {
    cfg.norm_topk_prob = false;
    cfg.clip_qkv = null;
    cfg.attention_bias = false;
  }
  Object.assign(cfg, opts.configOverrides ?? {});
  const ts: TensorSpec[] = [];
  const add = (name: string, shape: number[], scale = 0.3, offset = 0): void => {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = offset + (r() * 2 - 1) * scale;
    ts.push({ name, shape, values, dtype: opts.dtype });
  };
  add('model.embed_tokens.weight', [V, H], 1);
  const expertInter = arch === 'mixtral' || arch === 'olmoe' ? I : MI;
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    add(p + 'input_layernorm.weight', [H], 0.2, 1);
    add(p + 'post_attention_layernorm.weight', [H], 0.2, 1);
    add(p + 'self_attn.q_proj.weight', [heads * D, H]);
    add(p + 'self_attn.k_proj.weight', [kv * D, H]);
    add(p + 'self_attn.v_proj.weight', [kv * D, H]);
    add(p + 'self_attn.o_proj.weight', [H, heads * D]);
    // Qwen2-MoE: q/k/v biases (qkv_bias, default true); Qwen3-MoE / OLMoE: q/k/v/o with attention_bias
    const withBias = arch === 'qwen2_moe' ? cfg.qkv_bias !== false : arch !== 'mixtral' && cfg.attention_bias === true;
    if (withBias) {
      add(p + 'self_attn.q_proj.bias', [heads * D], 0.1);
      add(p + 'self_attn.k_proj.bias', [kv * D], 0.1);
      add(p + 'self_attn.v_proj.bias', [kv * D], 0.1);
      if (arch !== 'qwen2_moe') add(p + 'self_attn.o_proj.bias', [H], 0.1);
    }
    if (arch === 'qwen3_moe') {
      add(p + 'self_attn.q_norm.weight', [D], 0.2, 1);
      add(p + 'self_attn.k_norm.weight', [D], 0.2, 1);
    }
    if (arch === 'olmoe') {
      add(p + 'self_attn.q_norm.weight', [heads * D], 0.2, 1);
      add(p + 'self_attn.k_norm.weight', [kv * D], 0.2, 1);
    }
    const dense = arch === 'qwen2_moe' && (cfg.mlp_only_layers as number[]).includes(l);
    if (dense) {
      add(p + 'mlp.gate_proj.weight', [I, H]);
      add(p + 'mlp.up_proj.weight', [I, H]);
      add(p + 'mlp.down_proj.weight', [H, I]);
      continue;
    }
    const mp = arch === 'mixtral' ? p + 'block_sparse_moe.' : p + 'mlp.';
    add(mp + 'gate.weight', [E, H], 0.5);
    for (let e = 0; e < E; e++) {
      const ep = `${mp}experts.${e}.`;
      if (arch === 'mixtral') {
        add(ep + 'w1.weight', [expertInter, H]);
        add(ep + 'w2.weight', [H, expertInter]);
        add(ep + 'w3.weight', [expertInter, H]);
      } else {
        add(ep + 'gate_proj.weight', [expertInter, H]);
        add(ep + 'up_proj.weight', [expertInter, H]);
        add(ep + 'down_proj.weight', [H, expertInter]);
      }
    }
    if (arch === 'qwen2_moe') {
      add(mp + 'shared_expert.gate_proj.weight', [10, H]);
      add(mp + 'shared_expert.up_proj.weight', [10, H]);
      add(mp + 'shared_expert.down_proj.weight', [H, 10]);
      add(mp + 'shared_expert_gate.weight', [1, H]);
    }
  }
  add('model.norm.weight', [H], 0.2, 1);
  if (!opts.tie) add('lm_head.weight', [V, H]);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg, null, 2));
  const shards = opts.shards ?? 1;
  if (shards <= 1) {
    writeSafetensors(join(dir, 'model.safetensors'), ts, { format: 'pt' });
  } else {
    const per = Math.ceil(ts.length / shards);
    const weightMap: Record<string, string> = {};
    for (let s = 0; s < shards; s++) {
      const f = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
      const part = ts.slice(s * per, (s + 1) * per);
      for (const t of part) weightMap[t.name] = f;
      writeSafetensors(join(dir, f), part, { format: 'pt' });
    }
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  }
  return cfg;
}

/**
 * Gives a tied checkpoint (single model.safetensors, no lm_head.weight) its own random F32
 * lm_head.weight (scale 0.1) and sets tie_word_embeddings false. With tied embeddings a random tiny
 * model mostly predicts its own last token; an untied head makes greedy decoding discriminative.
 */
export function untie(dir: string, seed: number): void {
  const file = join(dir, 'model.safetensors');
  const tensors = readSafetensorsFile(file);
  const emb = tensors.get('model.embed_tokens.weight');
  if (!emb) throw new Error('untie: no model.embed_tokens.weight');
  if (tensors.has('lm_head.weight')) throw new Error('untie: lm_head.weight already present');
  const r = rng(seed);
  const head = new Float32Array(emb.data.length);
  for (let i = 0; i < head.length; i++) head[i] = (r() * 2 - 1) * 0.1;
  const dtypes = headerDtypes(file);
  const specs: TensorSpec[] = [];
  for (const [name, t] of tensors) specs.push({ name, shape: t.shape, values: t.data, dtype: dtypes[name] ?? 'F32' });
  specs.push({ name: 'lm_head.weight', shape: emb.shape, values: head, dtype: 'F32' });
  writeSafetensors(file, specs);
  const cfgPath = join(dir, 'config.json');
  writeFileSync(cfgPath, JSON.stringify({ ...JSON.parse(readFileSync(cfgPath, 'utf8')), tie_word_embeddings: false }, null, 2));
}

function headerDtypes(file: string): Record<string, 'F32' | 'BF16' | 'F16'> {
  const buf = readFileSync(file);
  const hl = Number(buf.readBigUInt64LE(0));
  const h = JSON.parse(buf.subarray(8, 8 + hl).toString('utf8')) as Record<string, { dtype?: 'F32' | 'BF16' | 'F16' }>;
  const out: Record<string, 'F32' | 'BF16' | 'F16'> = {};
  for (const [k, v] of Object.entries(h)) if (k !== '__metadata__' && v.dtype) out[k] = v.dtype;
  return out;
}
