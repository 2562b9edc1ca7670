import type { Router, RouterInput, Routing } from './routing.js';
import { allocRouting, topK } from './routing.js';

/**
 * Top-k of the raw logits, then a softmax over only those k (the order Mixtral's reference code and
 * many kernels use): w_j = exp(l_j) / Σ_{i in top-k} exp(l_i). Mathematically equal to softmax->top-k
 * with renormalisation, computed without touching the other E-k experts; kept as its own router so
 * the two orders can be checked against each other and timed.
 */
export const topKSoftmaxRouter: Router = {
  name: 'topk-softmax',
  route({ logits, tokens, numExperts: E, k: cfgK }: RouterInput): Routing {
    const k = Math.min(cfgK, E);
    const out = allocRouting(tokens, k);
    for (let t = 0; t < tokens; t++) {
      const chosen = topK(logits, t * E, E, k);
      const max = logits[t * E + chosen[0]!]!;
      let sum = 0;
      for (const e of chosen) sum += Math.exp(logits[t * E + e]! - max);
      chosen.forEach((e, j) => {
        out.experts[t * k + j] = e;
        out.weights[t * k + j] = Math.exp(logits[t * E + e]! - max) / sum;
      });
    }
    return out;
  },
};
