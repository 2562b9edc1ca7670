import { rowRange } from './buffers.js';
import type { DispatchPlan } from './dispatch.js';
import type { Routing } from './routing.js';

/**
 * The combine of dynamic gating in token order (Huang et al., arXiv 2303.06182, §4): for each token t,
 * out[t] += Σ_j w[t,j] · ys[slotOf[t,j]] over its placed assignments j, in j order, each addition
 * rounded to f32 as a plain `out[i] += w · y` loop would. Two assignments go through one pass over the
 * row (the top-2 of a decode token in one pass): the sum is the same, addition by addition, but the
 * output row is read and written half as often, and that traffic was most of the combine's time.
 */
export function combineTokenOrder(
  out: Float32Array, // [tokens, hidden], accumulated into
  ys: Float32Array, // [slots, hidden] expert outputs in slot order
  routing: Routing,
  plan: DispatchPlan,
  tokens: number,
  hidden: number,
): void {
  const { k, weights } = routing;
  const slotOf = plan.slotOf;
  for (let t = 0; t < tokens; t++) {
    const o = t * hidden;
    const row = rowRange(out, o, o + hidden);
    let held = -1; // a placed slot waiting for a partner
    let heldWeight = 0;
    for (let a = t * k; a < (t + 1) * k; a++) {
      const s = slotOf[a]!;
      if (s < 0) continue;
      if (held < 0) {
        held = s;
        heldWeight = weights[a]!;
      } else {
        addTwoRows(row, rowRange(ys, held * hidden, (held + 1) * hidden), heldWeight, rowRange(ys, s * hidden, (s + 1) * hidden), weights[a]!);
        held = -1;
      }
    }
    if (held >= 0) addRow(out, o, ys, held * hidden, heldWeight, hidden);
  }
}

/** out[o + i] += w · ys[y + i] for i < n. */
export function addRow(out: Float32Array, o: number, ys: Float32Array, y: number, w: number, n: number): void {
  for (let i = 0; i < n; i++) out[o + i]! += w * ys[y + i]!;
}

/**
 * out[i] += w0 · y0[i], then += w1 · y1[i], each rounded to f32, in one pass over rows of one length.
 * Rows as views indexed from 0 up to out.length: the compiled loop then drops its index checks,
 * which pays for making the views.
 */
function addTwoRows(out: Float32Array, y0: Float32Array, w0: number, y1: Float32Array, w1: number): void {
  for (let i = 0; i < out.length; i++) out[i] = Math.fround(out[i]! + w0 * y0[i]!) + w1 * y1[i]!;
}
