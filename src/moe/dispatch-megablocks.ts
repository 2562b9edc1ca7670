import { fail } from '../errors.js';
import type { DispatchPlan, DispatchPolicy, LayerShape } from './dispatch.js';
import { buildPlan, groupedBytes } from './dispatch.js';
import { exactGroups } from './dispatch-dynamic.js';
import { paddedStages } from './dispatch-padded.js';
import type { Routing } from './routing.js';

/**
 * MegaBlocks (Gale et al., arXiv 2211.15841): dropless; tokens grouped per expert and each group
 * padded up to a multiple of the block size (128 on GPUs, where a block is a tensor-core tile), then
 * one grouped (block-sparse) product over all groups. Experts with no tokens get no blocks. On CPU the
 * natural block is a kernel's row tile, so the default here is 16 (`--block-size` changes it).
 */
export function megablocksDispatch(blockSize = 16): DispatchPolicy {
  if (!Number.isInteger(blockSize) || blockSize < 1) fail('E_BAD_OPTION', `--block-size must be an integer >= 1, got ${blockSize}`);
  return {
    name: 'megablocks',
    dropless: true,
    plan(routing: Routing, shape: LayerShape): DispatchPlan {
      const { counts, groups } = exactGroups(routing, shape.experts);
      const padded = groups.map((g) => {
        const p = new Int32Array(Math.ceil(g.length / blockSize) * blockSize).fill(-1);
        p.set(g);
        return p;
      });
      return buildPlan(routing, shape, counts, padded, 0, (rows, largest) => groupedBytes(rows, largest, shape));
    },
    ...paddedStages,
  };
}
