import type { ModelConfig } from '../model/config.js';
import type { ModelWeights } from '../model/layer-weights.js';
import type { SwiGluWeights } from '../moe/swiglu.js';
import { DTYPE_BYTES } from '../tensor/dtype.js';
import type { Weight } from '../tensor/weight.js';
import { numel } from '../tensor/weight.js';
import type { TokenCost } from './protocol.js';

/**
 * What one token costs the engine, counted from the weights actually loaded (their real dtypes), so
 * the achieved GB/s and GFLOP/s are against the model as it runs, not as a nominal size.
 *
 * Decode is memory-bound: the floor on time per token is the bytes of the weights that token must
 * read over memory bandwidth. Those are every layer's attention q/k/v/o (+ biases, q/k norms), both
 * norms, the router, the top-k routed experts' gate/up/down (all experts of a layer have one shape),
 * the shared expert and its gate, or the dense MLP of a dense layer; plus one embedding row, the
 * final norm and the lm_head. The KV cache reads are not counted (they are activations, small at the
 * bench's lengths).
 */
export function tokenCost(cfg: ModelConfig, w: ModelWeights, promptTokens: number): TokenCost {
  let bytes = 0;
  let macs = 0;
  const take = (x: Weight | undefined, asMatrix = true): void => {
    if (!x) return;
    bytes += weightBytes(x);
    if (asMatrix && x.shape.length === 2) macs += numel(x.shape);
  };
  const ffn = (f: SwiGluWeights | undefined, times = 1): void => {
    for (let i = 0; i < times && f; i++) for (const m of [f.gate, f.up, f.down]) take(m);
  };
  for (const lw of w.layers) {
    take(lw.inputNorm);
    take(lw.postAttnNorm);
    const a = lw.attn;
    for (const m of [a.q, a.k, a.v, a.o]) take(m);
    for (const v of [a.qBias, a.kBias, a.vBias, a.qNorm, a.kNorm]) take(v, false);
    if (lw.moe) {
      take(lw.moe.router);
      ffn(lw.moe.experts[0], cfg.topK);
      ffn(lw.moe.shared);
      take(lw.moe.sharedGate);
    } else ffn(lw.dense);
  }
  const H = cfg.hiddenSize;
  bytes += H * DTYPE_BYTES[w.embed.dtype]; // one embedding row (a copy, no MACs)
  take(w.finalNorm);
  take(w.lmHead);
  return { decodeBytesPerToken: bytes, macsPerToken: macs, prefillAttentionMacs: prefillAttentionMacs(cfg, promptTokens) };
}

/**
 * Attention's own products over a prefill of P tokens: token p scores against p+1 keys (or the
 * sliding window) and mixes as many values, headDim MACs each, per query head.
 */
export function prefillAttentionMacs(cfg: ModelConfig, P: number): number {
  let keys = 0;
  for (let p = 0; p < P; p++) keys += cfg.slidingWindow > 0 ? Math.min(p + 1, cfg.slidingWindow) : p + 1;
  return 2 * cfg.numLayers * cfg.numHeads * cfg.headDim * keys;
}

export function weightBytes(x: Weight): number {
  return numel(x.shape) * DTYPE_BYTES[x.dtype];
}

/** FLOPs of a prefill over P tokens: 2 per MAC, weights and attention products both. */
export function prefillFlops(cost: TokenCost, P: number): number {
  return 2 * (cost.macsPerToken * P + cost.prefillAttentionMacs);
}
