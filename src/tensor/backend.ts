import type { Weight } from './weight.js';

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
   * x[tokens, heads, headDim]; token t sits at position pos0 + t; inv_freq[i] = theta^(-2i/headDim).
   */
  rope(x: Float32Array, tokens: number, heads: number, headDim: number, pos0: number, theta: number): void;

  /**
   * Causal grouped-query attention for one sequence. q[tokens, heads*headDim] holds the queries of
   * positions pos0 .. pos0+tokens-1; kCache/vCache[ctx, kvHeads*headDim] hold keys/values of positions
   * 0 .. pos0+tokens-1. Query head h reads kv head floor(h / (heads/kvHeads)). Scale 1/sqrt(headDim).
   * window > 0 limits each query to the last `window` positions (sliding-window attention).
   * out[tokens, heads*headDim].
   */
  attention(
    out: Float32Array,
    q: Float32Array,
    kCache: Float32Array,
    vCache: Float32Array,
    tokens: number,
    pos0: number,
    heads: number,
    kvHeads: number,
    headDim: number,
    window: number,
  ): void;

  /** out[i] = silu(gate[i]) * up[i] for i < n (SwiGLU). out may alias gate or up. */
  siluMul(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;

  /**
   * The first half of a SwiGLU FFN fused: out[rows, F] = silu(x · Wgᵀ) * (x · Wuᵀ), with Wg and Wu
   * stored [F, K] (K = x's row length). Equal to matmul, matmul, siluMul; one pass for the kernels.
   */
  swiGlu(out: Float32Array, x: Float32Array, gate: Weight, up: Weight, rows: number): void;
}
