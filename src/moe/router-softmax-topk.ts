import type { Router, Routing } from './routing.js';
import { allocRouting } from './routing.js';

/**
 * Softmax over all experts, then top-k (GShard / Mixtral / Qwen-MoE / OLMoE). With `renormalize` the
 * k kept probabilities are divided by their sum (Mixtral always; Qwen and OLMoE when
 * `norm_topk_prob`); without it they are the raw softmax probabilities, so a token's weights sum to
 * less than 1. Ties go to the lower expert id.
 */
export function softmaxTopKRouter(renormalize: boolean): Router {
  return {
    name: renormalize ? 'softmax-topk-norm' : 'softmax-topk',
    route(logits, tokens, numExperts, k): Routing {
      const out = allocRouting(tokens, k);
      const probs = new Float64Array(numExperts);
      for (let t = 0; t < tokens; t++) {
        const row = t * numExperts;
        let max = -Infinity;
        for (let e = 0; e < numExperts; e++) max = Math.max(max, logits[row + e]!);
        let sum = 0;
        for (let e = 0; e < numExperts; e++) {
          probs[e] = Math.exp(logits[row + e]! - max);
          sum += probs[e]!;
        }
        let kept = 0;
        for (let j = 0; j < k; j++) {
          let best = -1;
          for (let e = 0; e < numExperts; e++) {
            if (probs[e]! >= 0 && (best < 0 || probs[e]! > probs[best]!)) best = e;
          }
          out.experts[t * k + j] = best;
          out.weights[t * k + j] = probs[best]! / sum;
          kept += probs[best]! / sum;
          probs[best] = -1; // taken
        }
        if (renormalize) for (let j = 0; j < k; j++) out.weights[t * k + j]! /= kept;
      }
      return out;
    },
  };
}
