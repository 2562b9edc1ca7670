import { fail } from '../errors.js';
import { weightAt } from '../tensor/weight.js';
import type { Router, RouterInput, Routing } from './routing.js';
import { allocRouting, topK } from './routing.js';

export interface SigmoidGroupOptions {
  /** expert groups (DeepSeek-V3: n_group = 8); 1 = no group limit */
  readonly groups: number;
  /** groups a token may use (topk_group = 4) */
  readonly topGroups: number;
  /** divide the k weights by their sum (norm_topk_prob) */
  readonly normalize: boolean;
  /** routed_scaling_factor (2.5 in DeepSeek-V3) */
  readonly scale: number;
}

/**
 * DeepSeek-V3 routing (arXiv 2412.19437 §2.1.2, auxiliary-loss-free balancing): s = sigmoid(logits);
 * the choice uses s + b with the per-expert correction bias b (`e_score_correction_bias`), the
 * weights never do. Group-limited: experts are split into `groups` equal groups, a group's score is
 * the sum of its two largest s + b, only the `topGroups` best groups stay eligible, and the top-k
 * of s + b among them are chosen. Weights = s of the chosen, divided by their sum when `normalize`,
 * times `scale`. Masked experts are excluded outright (-inf, as DeepSeek's inference code does),
 * so a negative bias can never make a masked expert win. Without a bias tensor b = 0.
 */
export function sigmoidGroupRouter(o: SigmoidGroupOptions): Router {
  return {
    name: 'sigmoid-group',
    route({ logits, tokens, numExperts: E, k: cfgK, weights }: RouterInput): Routing {
      const { groups, topGroups } = o;
      if (E % groups !== 0) fail('E_BAD_CONFIG', `n_group ${groups} does not divide the ${E} experts`);
      if (topGroups < 1 || topGroups > groups) fail('E_BAD_CONFIG', `topk_group ${topGroups} must be in [1, n_group ${groups}]`);
      const size = E / groups;
      const k = Math.min(cfgK, topGroups * size);
      const bias = weights.routerBias;
      if (bias && bias.shape[0] !== E) fail('E_BAD_CHECKPOINT', `${bias.name}: expected [${E}], got [${bias.shape.join(', ')}]`);
      const out = allocRouting(tokens, k);
      const s = new Float64Array(E); // [E] sigmoid scores
      const choice = new Float64Array(E); // [E] s + b, -inf where the group is masked
      const groupScore = new Float64Array(groups); // [groups]
      for (let t = 0; t < tokens; t++) {
        for (let e = 0; e < E; e++) {
          s[e] = 1 / (1 + Math.exp(-logits[t * E + e]!));
          choice[e] = s[e]! + (bias ? weightAt(bias, e) : 0);
        }
        for (let g = 0; g < groups; g++) {
          let sum = 0;
          for (const i of topK(choice, g * size, size, Math.min(2, size))) sum += choice[g * size + i]!;
          groupScore[g] = sum;
        }
        const keep = new Set(topK(groupScore, 0, groups, topGroups));
        for (let g = 0; g < groups; g++) if (!keep.has(g)) choice.fill(-Infinity, g * size, (g + 1) * size);
        const chosen = topK(choice, 0, E, k);
        let sum = 0;
        for (const e of chosen) sum += s[e]!;
        const denom = o.normalize ? sum + 1e-20 : 1;
        chosen.forEach((e, j) => {
          out.experts[t * k + j] = e;
          out.weights[t * k + j] = (s[e]! / denom) * o.scale;
        });
      }
      return out;
    },
  };
}
