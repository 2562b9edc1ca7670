import type { Router, RouterInput, Routing } from './routing.js';
import { allocRouting, softmaxRow, topKInto } from './routing.js';

/**
 * Softmax over all experts, then top-k (GShard, Lepikhin et al. arXiv 2006.16668; Mixtral, Qwen-MoE,
 * OLMoE): p = softmax(logits), keep the k largest p. With `renormalize` the k kept probabilities are
 * divided by their sum (Mixtral always; Qwen and OLMoE when `norm_topk_prob`); without it they are the
 * raw probabilities, so a token's weights sum to less than 1. Ties go to the lower expert id.
 * `fixedK` pins k whatever the config says (Switch top-1, GShard top-2).
 */
export function softmaxTopKRouter(renormalize: boolean, name?: string, fixedK?: number): Router {
  return {
    name: name ?? (renormalize ? 'softmax-topk-norm' : 'softmax-topk'),
    softmaxTopK: { renormalize, fixedK },
    route({ logits, tokens, numExperts: E, k: cfgK }: RouterInput): Routing {
      const k = Math.min(fixedK ?? cfgK, E);
      const out = allocRouting(tokens, k);
      const probs = new Float64Array(E); // [E] one token's probabilities
      const top = new Float64Array(k); // topKInto's scratch
      for (let t = 0; t < tokens; t++) softmaxTopKRow(logits, t * E, E, k, renormalize, probs, top, out.experts, out.weights, t * k);
      return out;
    },
  };
}

/**
 * One token: p = softmax(logits[off, off + E)), its k largest into experts/weights[row, row + k)
 * (renormalised to sum 1 when asked). probs [E] and top [k] are scratch. Returns how many were found.
 */
export function softmaxTopKRow(
  logits: ArrayLike<number>,
  off: number,
  E: number,
  k: number,
  renormalize: boolean,
  probs: Float64Array,
  top: Float64Array,
  experts: Int32Array,
  weights: Float32Array,
  row: number,
): number {
  softmaxRow(logits, off, E, probs);
  const found = topKInto(probs, 0, E, k, experts, row, top);
  let kept = 0;
  for (let j = 0; j < found; j++) kept += probs[experts[row + j]!]!;
  for (let j = 0; j < found; j++) {
    const p = probs[experts[row + j]!]!;
    weights[row + j] = renormalize ? p / kept : p;
  }
  return found;
}
