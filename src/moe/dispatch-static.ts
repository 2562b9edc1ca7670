import { fail } from '../errors.js';
import { f32Weight } from '../tensor/weight.js';
import type { DispatchPlan, DispatchPolicy, ExpertJob, ExpertRows, LayerShape } from './dispatch.js';
import { buildPlan, expertCounts, groupedBytes } from './dispatch.js';
import { timed, tokenOf } from './dispatch-exec.js';
import type { Routing } from './routing.js';

/** Slots per expert under static gating: ceil(C · S), S = tokens in the batch, at least 1. */
export function staticCapacity(capacityFactor: number, tokens: number): number {
  return Math.max(1, Math.ceil(capacityFactor * tokens));
}

/**
 * Static gating, the GShard / fairseq baseline of Huang et al. (arXiv 2303.06182, §3): every expert
 * gets a fixed capacity of ceil(C·S) slots. Slots are handed out as GShard's top-2 gating does
 * (Lepikhin et al., arXiv 2006.16668, Algorithm 1; fairseq `top2gating`): all first choices in token
 * order, then all second choices after them, and so on; an assignment that finds its expert full is
 * dropped. Unlike fairseq we do not renormalise a token's surviving weights after a drop, so the
 * output differs from the dropless policies by exactly the dropped terms.
 *
 * Execution is the dense formulation, with its real cost:
 *  - dispatch: a mask D [S, E, cap] (one 1 per placed assignment) and expert_in[E·cap, H] =
 *    einsum('sec,sm->ecm', D, x), done as one matmul of Dᵀ [E·cap, S] by x: O(S · E·cap · H) =
 *    O(S² · E · H · C);
 *  - experts: every expert runs on all cap rows, padding included (fixed shapes);
 *  - combine: out[S, H] = einsum('sec,ecm->sm', W, expert_out) with the combine weights W [S, E, cap],
 *    one matmul of W [S, E·cap] by expert_out, again O(S² · E · H · C).
 * The masks are f32 (the engine's matmul is f32), as fairseq's combine weights are.
 */
export function staticDispatch(capacityFactor = 1): DispatchPolicy {
  if (!(capacityFactor > 0) || !Number.isFinite(capacityFactor)) fail('E_BAD_OPTION', `--capacity-factor must be a positive number, got ${capacityFactor}`);
  return {
    name: 'static',
    dropless: false,
    plan(routing: Routing, shape: LayerShape): DispatchPlan {
      const { tokens: S, k } = routing;
      const E = shape.experts;
      const cap = staticCapacity(capacityFactor, S);
      const groups = Array.from({ length: E }, () => new Int32Array(cap).fill(-1));
      const fill = new Int32Array(E);
      for (let j = 0; j < k; j++) {
        for (let t = 0; t < S; t++) {
          const e = routing.experts[t * k + j]!;
          if (e < 0 || fill[e]! >= cap) continue; // empty slot, or the expert is full: dropped
          groups[e]![fill[e]!++] = t * k + j;
        }
      }
      const H = shape.hidden;
      const EC = E * cap;
      const masks = 4 * (2 * S * EC + H * S + H * EC); // D, W, xᵀ, expert_outᵀ
      return buildPlan(routing, shape, expertCounts(routing, E), groups, cap, (rows) => masks + groupedBytes(rows, cap, shape));
    },
    /** the dense dispatch einsum; the combine weights W ride along to Finalize */
    prepare(job: ExpertJob): StaticRows {
      const { plan, hidden: H, buffers, routing, backend, tokens: S, times } = job;
      const EC = plan.offsets[plan.numExperts]!;
      const k = routing.k;
      const xs = buffers.get('moe.in', EC * H); // [E·cap, H]
      const combine = buffers.get('moe.static.combine', S * EC); // [S, E, cap] combine weights W
      timed(times, 'order', () => {
        const maskT = buffers.get('moe.static.dispatch', EC * S); // [E·cap, S] dispatch mask Dᵀ
        const xT = buffers.get('moe.static.xT', H * S); // [H, S]
        maskT.fill(0);
        combine.fill(0);
        for (let s = 0; s < EC; s++) {
          const a = plan.slots[s]!;
          if (a < 0) continue;
          const t = tokenOf(a, k);
          maskT[s * S + t] = 1;
          combine[t * EC + s] = routing.weights[a]!;
        }
        transpose(xT, job.x, S, H);
        backend.matmul(xs, maskT, f32Weight('moe.static.xT', [H, S], xT), EC); // einsum sec,sm->ecm
      });
      const ys = buffers.get('moe.out', EC * H); // [E·cap, H]
      return { xs, ys, offsets: plan.offsets, rows: EC, hidden: H, combine };
    },
    /** the dense combine einsum, which writes every output row */
    finalize(job: ExpertJob, rows: ExpertRows): void {
      const { hidden: H, buffers, backend, tokens: S, times } = job;
      const EC = rows.rows;
      timed(times, 'combine', () => {
        const yT = buffers.get('moe.static.yT', H * EC); // [H, E·cap]
        transpose(yT, rows.ys, EC, H);
        backend.matmul(job.out, (rows as StaticRows).combine, f32Weight('moe.static.yT', [H, EC], yT), S); // einsum sec,ecm->sm
      });
    },
  };
}

interface StaticRows extends ExpertRows {
  /** [S, E·cap] the combine weights W */
  readonly combine: Float32Array;
}

/** dst[cols, rows] = srcᵀ, src [rows, cols]. */
function transpose(dst: Float32Array, src: Float32Array, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c]!;
}
