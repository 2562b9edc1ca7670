import type { Weight } from '../tensor/weight.js';

/**
 * The result of routing T tokens: assignment a = t*k + j is token t's j-th choice, in descending
 * router weight. `experts[a] = -1` marks an empty slot (weight 0): expert-choice routing (Zhou et al.,
 * arXiv 2202.09368) gives each token anywhere from 0 to E experts, so its k is the largest number any
 * token got in the batch and the other tokens' rows are padded with -1. Every other router fills all
 * k slots. Dispatch policies skip empty slots; they are neither routed nor dropped.
 */
export interface Routing {
  readonly tokens: number;
  readonly k: number;
  /** [tokens * k] expert ids, -1 = empty slot */
  readonly experts: Int32Array;
  /** [tokens * k] combine weights */
  readonly weights: Float32Array;
}

/** Per-layer router parameters beyond the gate matrix; absent ones get each router's documented default. */
export interface RouterWeights {
  /** [experts, hidden] the gate matrix the layer multiplies into `logits` */
  readonly router: Weight;
  /** [experts] DeepSeek-V3's `e_score_correction_bias` (choice only, never weights) */
  readonly routerBias?: Weight;
  /** [rank, hidden] X-MoE's low-rank projection */
  readonly xmoeProjection?: Weight;
  /** [experts, rank] X-MoE's expert embeddings */
  readonly xmoeExperts?: Weight;
}

/** Everything a routing function may read for one layer and batch. */
export interface RouterInput {
  /** [tokens, experts] x · W_routerᵀ, computed by the layer (the "gate" module) */
  readonly logits: Float32Array;
  /** [tokens, hidden] the normed hidden states the layer routes */
  readonly hidden: Float32Array;
  readonly tokens: number;
  readonly numExperts: number;
  /** experts per token from the config; a router may override it (Switch: 1, GShard: 2) */
  readonly k: number;
  readonly layer: number;
  readonly weights: RouterWeights;
  /** a decode-only step: every token is the next token of a sequence already in its KV cache */
  readonly decode?: boolean;
}

/**
 * A routing function: router input -> experts and combine weights per token. Implementations live
 * one per file (router-*.ts) and register in routers.ts; architectures pick theirs from config.
 */
export interface Router {
  readonly name: string;
  route(input: RouterInput): Routing;
  /**
   * Set by a router whose routing is a softmax, then the top-k of each token alone (softmaxTopKRouter):
   * the fused decode step (src/model/fused-decode.ts) routes its token with softmaxTopKRow directly.
   */
  readonly softmaxTopK?: SoftmaxTopK;
}

/** How a softmax-then-top-k router picks (see softmaxTopKRow). */
export interface SoftmaxTopK {
  readonly renormalize: boolean;
  /** k whatever the config says, when set */
  readonly fixedK?: number;
}

export function allocRouting(tokens: number, k: number): Routing {
  return { tokens, k, experts: new Int32Array(tokens * k), weights: new Float32Array(tokens * k) };
}

/**
 * Indices of the k largest of values[off .. off+n) in descending order, ties to the lower index;
 * entries equal to -Infinity are never chosen (masked), so fewer than k may come back.
 * Selection for small k (routers: k <= 8 of E), a sort otherwise (expert-choice: top-C tokens).
 */
export function topK(values: ArrayLike<number>, off: number, n: number, k: number): number[] {
  if (k <= 8) {
    const idx = new Int32Array(k);
    const found = topKInto(values, off, n, k, idx, 0, new Float64Array(k));
    return Array.from(idx.subarray(0, found));
  }
  const idx: number[] = [];
  for (let i = 0; i < n; i++) if (values[off + i]! !== -Infinity) idx.push(i);
  idx.sort((a, b) => values[off + b]! - values[off + a]! || a - b);
  return idx.slice(0, k);
}

/**
 * topK's selection for small k, written into idx[at .. at + found) instead of a new array, so a router
 * fills its routing rows directly (one call per token and layer on the decode path). One pass keeps
 * the best k in descending order; an equal value lands after the earlier index. `val` [k] is scratch.
 * Returns how many were found (fewer than k only when entries are masked with -Infinity or n < k).
 */
export function topKInto(values: ArrayLike<number>, off: number, n: number, k: number, idx: Int32Array, at: number, val: Float64Array): number {
  let found = 0;
  for (let i = 0; i < n; i++) {
    const v = values[off + i]!;
    if (v === -Infinity || (found === k && !(v > val[k - 1]!))) continue;
    let p = found < k ? found++ : k - 1;
    for (; p > 0 && v > val[p - 1]!; p--) {
      idx[at + p] = idx[at + p - 1]!;
      val[p] = val[p - 1]!;
    }
    idx[at + p] = i;
    val[p] = v;
  }
  return found;
}

/** Softmax of one row into a float64 array (max-subtracted). */
export function softmaxRow(logits: ArrayLike<number>, off: number, n: number, dst: Float64Array): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[off + i]!);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += dst[i] = Math.exp(logits[off + i]! - max);
  for (let i = 0; i < n; i++) dst[i]! /= sum;
}
