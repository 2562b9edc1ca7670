/**
 * An independent float64 implementation of the Hugging Face forward pass of four MoE architectures
 * (MixtralForCausalLM, Qwen2MoeForCausalLM, Qwen3MoeForCausalLM, OlmoeForCausalLM), written from the
 * semantics of the transformers modeling code in the plainest form: loops over tokens, heads and
 * experts, every expert evaluated densely and selected by the routing weights. It imports nothing
 * from the engine (src/ or dist/src/): it has its own safetensors reader and config reading, so a
 * shared misunderstanding can only come from the specification, not from shared code.
 *
 * Full causal forward of the whole sequence each call (no KV cache); slow, obviously right, tiny
 * models only.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCheckpoint, type RefTensor } from './safetensors.js';

export type RefArch = 'mixtral' | 'qwen2_moe' | 'qwen3_moe' | 'olmoe';

export interface RefConfig {
  arch: RefArch;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  eps: number;
  ropeTheta: number;
  maxPos: number;
  tie: boolean;
  numExperts: number;
  topK: number;
  normTopk: boolean; // renormalise the top-k probabilities to sum 1
  denseIntermediate: number; // qwen dense layers
  expertIntermediate: number; // each routed expert
  sparseStep: number;
  mlpOnlyLayers: number[];
  slidingWindow: number | null; // tokens a query may see, itself included
  slidingFromLayer: number; // qwen: sliding window only for layers >= max_window_layers
  clipQkv: number | null; // olmoe
  qkvBias: boolean; // q/k/v biases
  oBias: boolean; // o_proj bias
  eos: number[];
}

export interface RefModel {
  dir: string;
  cfg: RefConfig;
  raw: Record<string, unknown>;
  tensors: Map<string, RefTensor>;
}

// ---------------------------------------------------------------------------------------------
// config

const ARCHS: Record<string, RefArch> = {
  MixtralForCausalLM: 'mixtral',
  Qwen2MoeForCausalLM: 'qwen2_moe',
  Qwen3MoeForCausalLM: 'qwen3_moe',
  OlmoeForCausalLM: 'olmoe',
};

function num(c: Record<string, unknown>, key: string, dflt?: number): number {
  const v = c[key];
  if (v === undefined || v === null) {
    if (dflt === undefined) throw new Error(`config.json: missing ${key}`);
    return dflt;
  }
  if (typeof v !== 'number') throw new Error(`config.json: ${key} is not a number`);
  return v;
}

// Defaults of the transformers config classes (MixtralConfig, Qwen2MoeConfig, Qwen3MoeConfig,
// OlmoeConfig) for the fields a tiny test config may leave out. kvHeads null: = num_attention_heads.
const DEFAULTS: Record<RefArch, { eps: number; theta: number; maxPos: number; kvHeads: number | null; topK: number; experts: number }> = {
  mixtral: { eps: 1e-5, theta: 1e6, maxPos: 131072, kvHeads: 8, topK: 2, experts: 8 },
  qwen2_moe: { eps: 1e-6, theta: 10000, maxPos: 32768, kvHeads: 16, topK: 4, experts: 60 },
  qwen3_moe: { eps: 1e-6, theta: 10000, maxPos: 32768, kvHeads: 4, topK: 8, experts: 128 },
  olmoe: { eps: 1e-5, theta: 10000, maxPos: 4096, kvHeads: null, topK: 8, experts: 64 },
};

export function readRefConfig(c: Record<string, unknown>): RefConfig {
  const mt = c.model_type as string;
  const archName = Array.isArray(c.architectures) ? (c.architectures[0] as string) : undefined;
  const arch = (['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe'] as string[]).includes(mt)
    ? (mt as RefArch)
    : undefined;
  if (!arch) throw new Error(`reference: unsupported model_type ${mt}`);
  if (archName !== undefined && ARCHS[archName] !== arch) {
    throw new Error(`reference: architectures[0]=${archName} does not match model_type=${mt}`);
  }
  const dflt = DEFAULTS[arch];
  if (c.rope_scaling !== undefined && c.rope_scaling !== null) throw new Error('reference: rope_scaling unsupported');
  // transformers 5: rope_parameters {rope_theta, rope_type}; 4.x: a top-level rope_theta
  const rope = (c.rope_parameters ?? {}) as Record<string, unknown>;
  if (rope.rope_type !== undefined && rope.rope_type !== 'default') throw new Error('reference: only default RoPE');
  const act = (c.hidden_act ?? 'silu') as string;
  if (act !== 'silu') throw new Error(`reference: hidden_act ${act} unsupported`);
  const hidden = num(c, 'hidden_size');
  const heads = num(c, 'num_attention_heads');
  const kvHeads = num(c, 'num_key_value_heads', dflt.kvHeads ?? heads);
  // every family's attention reads config.head_dim when set (LlamaAttention: getattr(config, "head_dim", ...))
  const headDim = num(c, 'head_dim', Math.floor(hidden / heads));
  const eosRaw = c.eos_token_id;
  const eos = Array.isArray(eosRaw) ? (eosRaw as number[]) : typeof eosRaw === 'number' ? [eosRaw] : [];
  const qwen = arch === 'qwen2_moe' || arch === 'qwen3_moe';
  // Qwen-MoE: sliding_window only with use_sliding_window; OLMoE builds a plain causal mask
  const useSliding = qwen ? c.use_sliding_window === true : arch === 'mixtral';
  const sw = c.sliding_window;
  const attnBias = c.attention_bias === true;
  // num_experts and num_local_experts are attribute_map aliases of each other
  const experts = c.num_experts ?? c.num_local_experts;
  return {
    arch,
    hidden,
    layers: num(c, 'num_hidden_layers'),
    heads,
    kvHeads,
    headDim,
    vocab: num(c, 'vocab_size'),
    eps: num(c, 'rms_norm_eps', dflt.eps),
    ropeTheta: num(rope, 'rope_theta', num(c, 'rope_theta', dflt.theta)),
    maxPos: num(c, 'max_position_embeddings', dflt.maxPos),
    tie: c.tie_word_embeddings === true,
    numExperts: typeof experts === 'number' ? experts : dflt.experts,
    topK: num(c, 'num_experts_per_tok', dflt.topK),
    normTopk: arch === 'mixtral' ? true : c.norm_topk_prob === true,
    denseIntermediate: num(c, 'intermediate_size'),
    expertIntermediate: qwen ? num(c, 'moe_intermediate_size') : num(c, 'intermediate_size'),
    sparseStep: qwen ? num(c, 'decoder_sparse_step', 1) : 1,
    mlpOnlyLayers: qwen && Array.isArray(c.mlp_only_layers) ? (c.mlp_only_layers as number[]) : [],
    slidingWindow: useSliding && typeof sw === 'number' ? sw : null,
    slidingFromLayer: qwen ? num(c, 'max_window_layers', 0) : 0,
    clipQkv: arch === 'olmoe' && typeof c.clip_qkv === 'number' ? c.clip_qkv : null,
    // Qwen2-MoE: q/k/v biases unless qkv_bias is false; Mixtral: never
    qkvBias: arch === 'qwen2_moe' ? c.qkv_bias !== false : arch === 'mixtral' ? false : attnBias,
    oBias: arch === 'mixtral' || arch === 'qwen2_moe' ? false : attnBias,
    eos,
  };
}

export function loadReference(dir: string): RefModel {
  const raw = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const cfg = readRefConfig(raw);
  return { dir, cfg, raw, tensors: readCheckpoint(dir) };
}

// ---------------------------------------------------------------------------------------------
// building blocks, float64, plain loops

function W(m: RefModel, name: string, shape?: number[]): Float64Array {
  const t = m.tensors.get(name);
  if (!t) throw new Error(`reference: missing tensor ${name}`);
  if (shape && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
    throw new Error(`reference: ${name} has shape [${t.shape}], expected [${shape}]`);
  }
  return t.data;
}

/** y = W x (+ b), W is [out, in] row-major. */
function linear(w: Float64Array, x: Float64Array, out: number, inp: number, b?: Float64Array): Float64Array {
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = 0;
    for (let i = 0; i < inp; i++) s += w[o * inp + i] * x[i];
    y[o] = b ? s + b[o] : s;
  }
  return y;
}

/** x / sqrt(mean(x^2) + eps) * w over x[off .. off+n). */
export function rmsNorm(x: Float64Array, w: Float64Array, eps: number, off = 0, n = x.length): Float64Array {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[off + i] * x[off + i];
  const r = 1 / Math.sqrt(ss / n + eps);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = x[off + i] * r * w[i];
  return y;
}

function silu(v: number): number {
  return v / (1 + Math.exp(-v));
}

function sigmoid(v: number): number {
  return 1 / (1 + Math.exp(-v));
}

export function softmax(x: ArrayLike<number>): Float64Array {
  let mx = -Infinity;
  for (let i = 0; i < x.length; i++) mx = Math.max(mx, x[i]);
  const y = new Float64Array(x.length);
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    y[i] = Math.exp(x[i] - mx);
    s += y[i];
  }
  for (let i = 0; i < x.length; i++) y[i] /= s;
  return y;
}

/** down(silu(gate x) * up x); gate/up are [inter, hidden], down is [hidden, inter]. */
function swiglu(gate: Float64Array, up: Float64Array, down: Float64Array, x: Float64Array, hidden: number, inter: number): Float64Array {
  const g = linear(gate, x, inter, hidden);
  const u = linear(up, x, inter, hidden);
  const a = new Float64Array(inter);
  for (let i = 0; i < inter; i++) a[i] = silu(g[i]) * u[i];
  return linear(down, a, hidden, inter);
}

/** Rotate-half RoPE of one head vector in place: inv_freq[i] = theta^(-2i/d), position p. */
function rope(v: Float64Array, off: number, d: number, p: number, theta: number): void {
  const half = d / 2;
  for (let i = 0; i < half; i++) {
    const ang = p * Math.pow(theta, (-2 * i) / d);
    const c = Math.cos(ang);
    const s = Math.sin(ang);
    const a = v[off + i];
    const b = v[off + i + half];
    v[off + i] = a * c - b * s;
    v[off + i + half] = b * c + a * s;
  }
}

/** Indices of the k largest values, largest first; ties go to the lower index. */
export function topK(p: Float64Array, k: number): number[] {
  const idx = Array.from(p.keys());
  idx.sort((a, b) => (p[b] !== p[a] ? p[b] - p[a] : a - b));
  return idx.slice(0, k);
}

export function isSparseLayer(cfg: RefConfig, i: number): boolean {
  if (cfg.arch === 'mixtral' || cfg.arch === 'olmoe') return true;
  return cfg.numExperts > 0 && !cfg.mlpOnlyLayers.includes(i) && (i + 1) % cfg.sparseStep === 0;
}

// ---------------------------------------------------------------------------------------------
// the model

function attention(m: RefModel, l: number, hs: Float64Array[]): Float64Array[] {
  const c = m.cfg;
  const T = hs.length;
  const H = c.hidden;
  const D = c.headDim;
  const p = `model.layers.${l}.self_attn.`;
  const qDim = c.heads * D;
  const kvDim = c.kvHeads * D;
  const wq = W(m, p + 'q_proj.weight', [qDim, H]);
  const wk = W(m, p + 'k_proj.weight', [kvDim, H]);
  const wv = W(m, p + 'v_proj.weight', [kvDim, H]);
  const wo = W(m, p + 'o_proj.weight', [H, qDim]);
  const bq = c.qkvBias ? W(m, p + 'q_proj.bias', [qDim]) : undefined;
  const bk = c.qkvBias ? W(m, p + 'k_proj.bias', [kvDim]) : undefined;
  const bv = c.qkvBias ? W(m, p + 'v_proj.bias', [kvDim]) : undefined;
  const bo = c.oBias ? W(m, p + 'o_proj.bias', [H]) : undefined;

  const Q: Float64Array[] = [];
  const K: Float64Array[] = [];
  const V: Float64Array[] = [];
  for (let t = 0; t < T; t++) {
    let q = linear(wq, hs[t], qDim, H, bq); // [heads*D]
    let k = linear(wk, hs[t], kvDim, H, bk); // [kvHeads*D]
    const v = linear(wv, hs[t], kvDim, H, bv);
    if (c.arch === 'olmoe') {
      // RMSNorm over the full projections, before the split into heads
      q = rmsNorm(q, W(m, p + 'q_norm.weight', [qDim]), c.eps);
      k = rmsNorm(k, W(m, p + 'k_norm.weight', [kvDim]), c.eps);
      if (c.clipQkv !== null) {
        const cl = c.clipQkv;
        for (const arr of [q, k, v]) for (let i = 0; i < arr.length; i++) arr[i] = Math.min(cl, Math.max(-cl, arr[i]));
      }
    } else if (c.arch === 'qwen3_moe') {
      // RMSNorm per head (weight of size head_dim), before RoPE
      const qn = W(m, p + 'q_norm.weight', [D]);
      const kn = W(m, p + 'k_norm.weight', [D]);
      for (let h = 0; h < c.heads; h++) q.set(rmsNorm(q, qn, c.eps, h * D, D), h * D);
      for (let h = 0; h < c.kvHeads; h++) k.set(rmsNorm(k, kn, c.eps, h * D, D), h * D);
    }
    for (let h = 0; h < c.heads; h++) rope(q, h * D, D, t, c.ropeTheta);
    for (let h = 0; h < c.kvHeads; h++) rope(k, h * D, D, t, c.ropeTheta);
    Q.push(q);
    K.push(k);
    V.push(v);
  }

  const window = c.slidingWindow !== null && l >= c.slidingFromLayer ? c.slidingWindow : Infinity;
  const group = c.heads / c.kvHeads;
  const scale = 1 / Math.sqrt(D);
  const out: Float64Array[] = [];
  for (let t = 0; t < T; t++) {
    const attn = new Float64Array(qDim); // [heads*D]
    for (let h = 0; h < c.heads; h++) {
      const kh = Math.floor(h / group);
      const first = Math.max(0, t - window + 1);
      const scores: number[] = [];
      for (let s = first; s <= t; s++) {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += Q[t][h * D + d] * K[s][kh * D + d];
        scores.push(dot * scale);
      }
      const pr = softmax(scores);
      for (let s = first; s <= t; s++) {
        const w = pr[s - first];
        for (let d = 0; d < D; d++) attn[h * D + d] += w * V[s][kh * D + d];
      }
    }
    out.push(linear(wo, attn, H, qDim, bo));
  }
  return out;
}

/** One token's routing at one MoE layer: the selected experts (largest first) and their weights. */
export interface RefRoute {
  experts: number[];
  weights: number[];
  /** probability of the k-th selected expert minus that of the best unselected one */
  margin: number;
}

function moe(m: RefModel, l: number, x: Float64Array, route?: (r: RefRoute) => void): Float64Array {
  const c = m.cfg;
  const H = c.hidden;
  const E = c.numExperts;
  const out = new Float64Array(H);
  const mix = c.arch === 'mixtral';
  const p = mix ? `model.layers.${l}.block_sparse_moe.` : `model.layers.${l}.mlp.`;
  const logits = linear(W(m, p + 'gate.weight', [E, H]), x, E, H); // router logits [E]
  const probs = softmax(logits); // over ALL experts
  const sel = topK(probs, c.topK);
  let denom = 1;
  if (c.normTopk) {
    denom = 0;
    for (const e of sel) denom += probs[e];
  }
  if (route) {
    const next = topK(probs, c.topK + 1)[c.topK];
    route({ experts: sel, weights: sel.map((e) => probs[e] / denom), margin: next === undefined ? Infinity : probs[sel[sel.length - 1]] - probs[next] });
  }
  for (const e of sel) {
    const w = probs[e] / denom;
    const ep = p + `experts.${e}.`;
    const inter = c.expertIntermediate;
    const y = mix
      ? swiglu(W(m, ep + 'w1.weight', [inter, H]), W(m, ep + 'w3.weight', [inter, H]), W(m, ep + 'w2.weight', [H, inter]), x, H, inter)
      : swiglu(W(m, ep + 'gate_proj.weight', [inter, H]), W(m, ep + 'up_proj.weight', [inter, H]), W(m, ep + 'down_proj.weight', [H, inter]), x, H, inter);
    for (let i = 0; i < H; i++) out[i] += w * y[i];
  }
  if (c.arch === 'qwen2_moe') {
    const sp = p + 'shared_expert.';
    const si = num(m.raw, 'shared_expert_intermediate_size');
    const y = swiglu(W(m, sp + 'gate_proj.weight', [si, H]), W(m, sp + 'up_proj.weight', [si, H]), W(m, sp + 'down_proj.weight', [H, si]), x, H, si);
    const g = sigmoid(linear(W(m, p + 'shared_expert_gate.weight', [1, H]), x, 1, H)[0]);
    for (let i = 0; i < H; i++) out[i] += g * y[i];
  }
  return out;
}

function denseMlp(m: RefModel, l: number, x: Float64Array): Float64Array {
  const c = m.cfg;
  const p = `model.layers.${l}.mlp.`;
  const I = c.denseIntermediate;
  const H = c.hidden;
  return swiglu(W(m, p + 'gate_proj.weight', [I, H]), W(m, p + 'up_proj.weight', [I, H]), W(m, p + 'down_proj.weight', [H, I]), x, H, I);
}

/**
 * Logits for every position of `ids` (full causal forward), one Float64Array of vocab_size per position.
 * `routes`, when given, receives each MoE layer's routing: routes.get(layer)[position].
 */
export function referenceLogits(m: RefModel, ids: number[], routes?: Map<number, RefRoute[]>): Float64Array[] {
  const c = m.cfg;
  const H = c.hidden;
  if (ids.length === 0) throw new Error('reference: empty input');
  const emb = W(m, 'model.embed_tokens.weight', [c.vocab, H]);
  let xs = ids.map((id) => {
    if (!Number.isInteger(id) || id < 0 || id >= c.vocab) throw new Error(`reference: id ${id} out of range`);
    return emb.slice(id * H, (id + 1) * H);
  });
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}.`;
    const ln1 = W(m, p + 'input_layernorm.weight', [H]);
    const ln2 = W(m, p + 'post_attention_layernorm.weight', [H]);
    const a = attention(m, l, xs.map((x) => rmsNorm(x, ln1, c.eps)));
    xs = xs.map((x, t) => x.map((v, i) => v + a[t][i]));
    xs = xs.map((x) => {
      const h = rmsNorm(x, ln2, c.eps);
      const y = isSparseLayer(c, l) ? moe(m, l, h, routes && ((r) => routes.set(l, [...(routes.get(l) ?? []), r]))) : denseMlp(m, l, h);
      return x.map((v, i) => v + y[i]);
    });
  }
  const fn = W(m, 'model.norm.weight', [H]);
  // tied: the embedding matrix is the output projection (HF ties even if lm_head.weight is stored)
  const head = c.tie ? emb : W(m, 'lm_head.weight', [c.vocab, H]);
  return xs.map((x) => linear(head, rmsNorm(x, fn, c.eps), c.vocab, H));
}

export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/**
 * Greedy continuation of `ids` by `n` tokens (Hugging Face generate semantics: the EOS token, when
 * produced, is included and ends the continuation).
 */
export function referenceGreedy(m: RefModel, ids: number[], n: number): number[] {
  const seq = ids.slice();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const rows = referenceLogits(m, seq);
    const next = argmax(rows[rows.length - 1]);
    out.push(next);
    seq.push(next);
    if (m.cfg.eos.includes(next)) break;
  }
  return out;
}

/** Greedy continuation with the margin between the best and second-best logit at each step. */
export function referenceGreedyMargins(m: RefModel, ids: number[], n: number): { ids: number[]; margins: number[] } {
  const seq = ids.slice();
  const out: number[] = [];
  const margins: number[] = [];
  for (let i = 0; i < n; i++) {
    const rows = referenceLogits(m, seq);
    const row = rows[rows.length - 1];
    const next = argmax(row);
    let second = -Infinity;
    for (let j = 0; j < row.length; j++) if (j !== next) second = Math.max(second, row[j]);
    out.push(next);
    margins.push(row[next] - second);
    seq.push(next);
    if (m.cfg.eos.includes(next)) break;
  }
  return { ids: out, margins };
}
