import type { Router, RouterInput, Routing } from './routing.js';
import { allocRouting, softmaxRow, topK } from './routing.js';

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
    route({ logits, tokens, numExperts: E, k: cfgK }: RouterInput): Routing {
      const k = Math.min(fixedK ?? cfgK, E);
      const out = allocRouting(tokens, k);
      const probs = new Float64Array(E); // [E] one token's probabilities
      for (let t = 0; t < tokens; t++) {
        softmaxRow(logits, t * E, E, probs);
        const chosen = topK(probs, 0, E, k);
        let kept = 0;
        for (const e of chosen) kept += probs[e]!;
        chosen.forEach((e, j) => {
          out.experts[t * k + j] = e;
          out.weights[t * k + j] = renormalize ? probs[e]! / kept : probs[e]!;
        });
      }
      return out;
    },
  };
}
