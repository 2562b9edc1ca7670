import type { Router, RouterInput, Routing } from './routing.js';
import { softmaxRow, topK } from './routing.js';

/**
 * Expert-choice routing (Zhou et al., arXiv 2202.09368): S = softmax(logits) over experts per token;
 * then each expert takes its top-C tokens by S[:, e], C = ceil(T * k / E) (capacity factor c = k, so
 * on average a token still gets k experts), and the combine weight is S[t, e] unnormalised. A token
 * may get 0..E experts, so the Routing's k is the largest count in the batch and shorter rows end in
 * -1 slots. Load is perfectly balanced by construction; note that a token's experts depend on the
 * other tokens in the batch, so logits are not batch-invariant (nor causal) under this router.
 */
export const expertChoiceRouter: Router = {
  name: 'expert-choice',
  route({ logits, tokens: T, numExperts: E, k: cfgK }: RouterInput): Routing {
    const C = Math.min(T, Math.ceil((T * cfgK) / E));
    const probs = new Float64Array(T * E); // [T, E]
    const row = new Float64Array(E);
    for (let t = 0; t < T; t++) {
      softmaxRow(logits, t * E, E, row);
      probs.set(row, t * E);
    }
    const column = new Float64Array(T); // [T] expert e's affinity for each token
    const picks: Array<Array<[number, number]>> = Array.from({ length: T }, () => []); // token -> [expert, weight]
    for (let e = 0; e < E; e++) {
      for (let t = 0; t < T; t++) column[t] = probs[t * E + e]!;
      for (const t of topK(column, 0, T, C)) picks[t]!.push([e, column[t]!]);
    }
    let k = 0;
    for (const p of picks) k = Math.max(k, p.length);
    const experts = new Int32Array(T * k).fill(-1);
    const weights = new Float32Array(T * k);
    picks.forEach((p, t) => {
      p.sort((a, b) => b[1] - a[1] || a[0] - b[0]); // descending weight, as every Routing row
      p.forEach(([e, w], j) => {
        experts[t * k + j] = e;
        weights[t * k + j] = w;
      });
    });
    return { tokens: T, k, experts, weights };
  },
};
