import type { Weight } from './weight.js';

/** One sequence's rows in a batched call: `tokens` rows at positions pos0, pos0 + 1, ... */
export interface SeqRows {
  readonly tokens: number;
  readonly pos0: number;
}

/** One sequence of a batched attention call, with its KV cache ([ctx, kvHeads*headDim] each). */
export interface AttentionSeq extends SeqRows {
  readonly kCache: Float32Array;
  readonly vCache: Float32Array;
}

/** A gated FFN's three matrices: gate and up [F, K], down [K, F] (experts, shared experts, dense MLPs). */
export interface GatedFfn {
  readonly gate: Weight;
  readonly up: Weight;
  readonly down: Weight;
}

/**
 * The numeric operations a model forward needs. Activations are f32 arrays laid out row-major;
 * weights are stored tensors of any DType. Two implementations exist: `ref` (plain TypeScript,
 * float64 accumulation: the specification) and `cpu` (the native addon: SIMD + threads). Every
 * `cpu` op is tested against `ref` on random inputs (test/backend).
 *
 * Outputs never alias inputs unless an op says so.
 */
export interface Backend {
  readonly name: string;

  /** y[rows, N] = x[rows, K] · Wᵀ (+ bias[N]), W stored [N, K] (Hugging Face Linear layout). */
  matmul(y: Float32Array, x: Float32Array, w: Weight, rows: number, bias?: Weight): void;

  /**
   * RMSNorm over rows of length dim = g.shape[0]:
   * y[r, i] = x[r, i] / sqrt(mean_i(x[r, :]²) + eps) * g[i]. y may alias x.
   */
  rmsNorm(y: Float32Array, x: Float32Array, g: Weight, rows: number, eps: number): void;

  /**
   * Rotary position embedding, rotate-half convention (Hugging Face `rotate_half`), in place on
   * x[tokens, heads, headDim], where the rows are every sequence's tokens one after another: sequence
   * s's token t sits at position seqs[s].pos0 + t; inv_freq[i] = theta^(-2i/headDim). One call for a
   * whole batched step.
   */
  rope(x: Float32Array, seqs: readonly SeqRows[], heads: number, headDim: number, theta: number): void;

  /**
   * Causal grouped-query attention over a batch of sequences, one call for a whole step. q and out
   * [tokens, heads*headDim] hold every sequence's query rows one after another; sequence s's rows are
   * positions pos0 .. pos0+tokens-1 of its own kCache/vCache[ctx, kvHeads*headDim], which hold keys and
   * values of positions 0 .. pos0+tokens-1. Query head h reads kv head floor(h / (heads/kvHeads)). Scale
   * 1/sqrt(headDim). window > 0 limits each query to the last `window` positions (sliding window).
   */
  attention(out: Float32Array, q: Float32Array, seqs: readonly AttentionSeq[], heads: number, kvHeads: number, headDim: number, window: number): void;

  /** out[i] = silu(gate[i]) * up[i] for i < n (SwiGLU). out may alias gate or up. */
  siluMul(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;

  /**
   * The first half of a SwiGLU FFN fused: out[rows, F] = silu(x · Wgᵀ) * (x · Wuᵀ), with Wg and Wu
   * stored [F, K] (K = x's row length). Equal to matmul, matmul, siluMul; one pass for the kernels.
   */
  swiGlu(out: Float32Array, x: Float32Array, gate: Weight, up: Weight, rows: number): void;

  /**
   * A MoE layer's experts in one call: group g's rows [rowStarts[g], rowStarts[g + 1]) of x[rows, K]
   * go through experts[g] (down(silu(x · gateᵀ) * (x · upᵀ))) into the same rows of out[rows, K];
   * act[rows, F] receives the activations. Equal to swiGlu then matmul per group; one call for the
   * kernels instead of two per expert. rowStarts has experts.length + 1 entries.
   */
  swiGluExperts(out: Float32Array, x: Float32Array, act: Float32Array, experts: readonly GatedFfn[], rowStarts: Int32Array): void;
}

/** swiGluExperts as one swiGlu and one matmul per group: the specification, and the path for weights the grouped kernel does not take. */
export function swiGluExpertsByGroup(backend: Backend, out: Float32Array, x: Float32Array, act: Float32Array, experts: readonly GatedFfn[], rowStarts: Int32Array): void {
  for (let g = 0; g < experts.length; g++) {
    const e = experts[g]!;
    const a = rowStarts[g]!;
    const n = rowStarts[g + 1]! - a;
    if (n === 0) continue;
    const K = e.gate.shape[1]!;
    const F = e.gate.shape[0]!;
    backend.swiGlu(act.subarray(a * F, (a + n) * F), x.subarray(a * K, (a + n) * K), e.gate, e.up, n);
    backend.matmul(out.subarray(a * K, (a + n) * K), act.subarray(a * F, (a + n) * F), e.down, n);
  }
}
