import type { DispatchPolicy } from './dispatch.js';
import { gatherPrepare, rowBufferNames, scatterFinalize } from './dispatch-exec.js';

const ROWS = rowBufferNames('moe');

/**
 * Prepare and Finalize shared by the padded index-based layouts (tutel, megablocks): gather every slot
 * row into one buffer (padding rows are zeros; the Experts stage computes them like any row), and
 * scatter-add the real rows back to their tokens.
 */
export const paddedStages: Pick<DispatchPolicy, 'prepare' | 'finalize'> = {
  prepare: (job, from, to) => gatherPrepare(job, from, to, ROWS),
  finalize: scatterFinalize,
};
