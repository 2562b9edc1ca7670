import type { Prefetcher, PrefetchContext } from './prefetch.js';

/**
 * Pre-gating: apply MoE layer l+1's router to layer l's input to guess layer l+1's experts, as
 * mixtral-offloading (Eliseev & Mazur, arXiv 2312.17238) and Pre-gated MoE (Hwang et al., arXiv
 * 2308.12066) do; consecutive layers' hidden states are close through the residual stream, so the guess
 * is often right. Predicts the union over tokens of the k experts the router picks, in order of the
 * number of tokens choosing each.
 */
export class PregatePrefetcher implements Prefetcher {
  readonly name = 'pregate';
  private logits = new Float32Array(0); // [tokens, experts] reused
  private votes = new Int32Array(0); // [experts]

  constructor(private readonly ctx: PrefetchContext) {}

  predict(_layer: number, next: number, hidden: Float32Array, tokens: number, _active: readonly number[], out: number[]): void {
    const w = this.ctx.layers[next];
    if (!w) return;
    const E = w.router.shape[0]!;
    if (this.logits.length < tokens * E) this.logits = new Float32Array(tokens * E);
    if (this.votes.length < E) this.votes = new Int32Array(E);
    const logits = this.logits.subarray(0, tokens * E);
    this.ctx.backend.matmul(logits, hidden, w.router, tokens);
    const routing = this.ctx.router.route({ logits, hidden, tokens, numExperts: E, k: this.ctx.k, layer: next, weights: w });
    const votes = this.votes.fill(0, 0, E);
    for (const e of routing.experts) if (e >= 0) votes[e]!++;
    for (let e = 0; e < E; e++) if (votes[e]! > 0) out.push(e);
    out.sort((a, b) => votes[b]! - votes[a]! || a - b);
  }
}
