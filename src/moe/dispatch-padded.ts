import type { ExpertJob } from './dispatch.js';
import { gatherSlots, groupedExperts, scatterSlots, timed } from './dispatch-exec.js';

/**
 * Execution shared by the padded index-based layouts (tutel, megablocks): gather every slot row into
 * one buffer (padding rows are zeros), one grouped product over all groups, padding included, and a
 * scatter-add of the real rows back to their tokens.
 */
export function executePadded(job: ExpertJob): void {
  const { plan, hidden: H, buffers, out, times } = job;
  const rows = plan.offsets[plan.numExperts]!;
  const xs = buffers.get('moe.in', rows * H); // [rows, H]
  timed(times, 'order', () => gatherSlots(xs, job, 0, rows));
  const ys = buffers.get('moe.out', rows * H); // [rows, H]
  timed(times, 'expert', () => groupedExperts(job, ys, xs));
  timed(times, 'combine', () => {
    out.fill(0, 0, job.tokens * H);
    scatterSlots(job, ys, 0, rows);
  });
}
