import { fail } from '../errors.js';
import type { Router, RouterInput, Routing } from './routing.js';

export interface LynxOptions {
  /** share of the batch-wide expert score the kept experts must cover, in (0, 1]; 1 = exact routing */
  readonly threshold: number;
  /** bins per nat of router-logit gap to the token's top-1 (bin width 1/alpha) */
  readonly alpha?: number;
  /** bins that score at all; an expert further than beta/alpha nats below a token's top-1 gets nothing from it */
  readonly beta?: number;
}

/** Conservative defaults (the paper does not publish its constants): half-nat bins, three of them. */
export const LYNX_DEFAULTS = { threshold: 0.95, alpha: 2, beta: 3 } as const;

/**
 * Lynx's batch-aware expert selection (Gupta et al., arXiv 2411.08982; techniques.md §5). Decode is
 * memory-bound, so a decode step's time grows with the number of distinct experts the batch
 * activates. In decode-only steps (prefill is left alone), each token's affinity to each expert is
 * its router-logit gap to its top-1 (the log-ratio of softmax probabilities; for sigmoid routers the
 * difference of pre-sigmoid scores), binned at width 1/alpha (bin 0 = within 1/alpha of the top-1).
 * An expert's batch-wide score is Σ_tokens B^-bin (B = batch size), so one token's top choice
 * outweighs every token's weaker preferences together. The experts kept are the highest-scoring ones
 * covering `threshold` of the total score (the count follows the score distribution, not a constant),
 * among the experts the exact routing activates (so the set only shrinks), plus the top-1 of every
 * confident token (its runner-up is not in bin 0), and at least k. Then the
 * wrapped router runs again on logits with the other experts masked (-inf), so each token still gets
 * k experts, re-chosen among the kept ones, with the router's own weights renormalised over them.
 * Routers that do not route from the logits (X-MoE, expert-choice) come back unchanged: if any
 * re-routed choice falls outside the kept set, the exact routing is used.
 */
export function lynxRouter(inner: Router, opts: LynxOptions): Router {
  const threshold = opts.threshold;
  const alpha = opts.alpha ?? LYNX_DEFAULTS.alpha;
  const beta = opts.beta ?? LYNX_DEFAULTS.beta;
  if (!(threshold > 0 && threshold <= 1)) fail('E_BAD_OPTION', `the Lynx threshold must be in (0, 1], got ${threshold}`);
  if (!(alpha > 0) || !Number.isInteger(beta) || beta < 1) fail('E_BAD_OPTION', `Lynx needs alpha > 0 and an integer beta >= 1, got ${alpha}, ${beta}`);
  // per-layer working buffers, grown on demand: the router runs on one thread, one layer at a time
  let masked = new Float32Array(0);
  let score = new Float64Array(0);
  let keep = new Uint8Array(0);
  let active = new Uint8Array(0);
  let order: number[] = [];
  return {
    name: `lynx(${inner.name})`,
    route(input: RouterInput): Routing {
      const exact = inner.route(input);
      const { logits, tokens: T, numExperts: E } = input;
      if (!input.decode || T < 2 || threshold >= 1) return exact;
      if (score.length < E) {
        score = new Float64Array(E);
        keep = new Uint8Array(E);
        active = new Uint8Array(E);
        order = Array.from({ length: E }, (_, e) => e);
      }
      // candidates: the experts the exact routing activates (Lynx only ever removes experts)
      score.fill(0, 0, E);
      keep.fill(0, 0, E);
      active.fill(0, 0, E);
      for (const e of exact.experts) if (e >= 0) active[e] = 1;
      for (let t = 0; t < T; t++) {
        const row = t * E;
        let top = 0;
        for (let e = 1; e < E; e++) if (logits[row + e]! > logits[row + top]!) top = e;
        let runnerUpBin = Infinity;
        for (let e = 0; e < E; e++) {
          const bin = Math.floor((logits[row + top]! - logits[row + e]!) * alpha);
          if (e !== top) runnerUpBin = Math.min(runnerUpBin, bin);
          if (bin < beta && active[e]) score[e]! += T ** -bin;
        }
        if (runnerUpBin >= 1 && active[top]) keep[top] = 1; // confident: its top-1 stays whatever the batch says
      }
      let total = 0;
      for (let e = 0; e < E; e++) total += score[e]!;
      const ranked = order.slice(0, E).filter((e) => active[e]).sort((a, b) => score[b]! - score[a]! || a - b);
      let covered = 0;
      let taken = 0;
      for (const e of ranked) {
        if (taken >= exact.k && covered >= threshold * total) break;
        covered += score[e]!;
        keep[e] = 1;
        taken++;
      }
      let changed = false;
      for (let e = 0; e < E; e++) if (active[e] && !keep[e]) changed = true;
      if (!changed) return exact;
      if (masked.length < T * E) masked = new Float32Array(T * E);
      const m = masked.subarray(0, T * E); // [T, E] logits, -inf outside the kept set
      for (let t = 0; t < T; t++) for (let e = 0; e < E; e++) m[t * E + e] = keep[e] ? logits[t * E + e]! : -Infinity;
      const restricted = inner.route({ ...input, logits: m });
      for (const e of restricted.experts) if (e >= 0 && !keep[e]) return exact;
      return restricted;
    },
  };
}
