import type { Backend } from '../tensor/backend.js';
import type { Buffers } from './buffers.js';
import type { ExpertRows } from './dispatch.js';
import { actRows } from './dispatch.js';
import type { ExpertProvider } from './expert-provider.js';
import type { SwiGluWeights } from './swiglu.js';

/**
 * The Experts stage: every non-empty expert group of `rows` (rows [offsets[e], offsets[e+1]) of xs into
 * the same rows of ys) through its SwiGLU FFN, weights from the provider. Rows of padding are computed
 * like any other row: that is the cost of padding.
 *
 * A provider that picks the order (`next`: a cache runs resident experts while others load) sees each
 * expert pinned from acquire to release, one expert at a time, so a cache smaller than the active set
 * streams experts through. Any other provider (the mapped checkpoint, a rank's experts or its slices of
 * every expert) has every expert at hand: consecutive groups go to the kernels together, up to
 * GROUPED_ROWS rows per call (one call for a decode step), so the threads balance over the whole layer
 * instead of one expert at a time. Both ways use one activation buffer of actRows(...) rows.
 */
export function runExperts(provider: ExpertProvider, layer: number, rows: ExpertRows, backend: Backend, buffers: Buffers): void {
  const { offsets, xs, ys } = rows;
  const H = rows.hidden;
  const pending: number[] = [];
  let largest = 0;
  for (let e = 0; e + 1 < offsets.length; e++) {
    const n = offsets[e + 1]! - offsets[e]!;
    if (n > 0) pending.push(e);
    largest = Math.max(largest, n);
  }
  if (pending.length === 0) return;
  const limit = actRows(rows.rows, largest);
  if (!provider.next) return runGrouped(provider, layer, rows, pending, limit, backend, buffers);
  while (pending.length > 0) {
    const e = provider.next(layer, pending);
    const at = pending.indexOf(e);
    if (at < 0) throw new Error(`expert provider chose expert ${e}, which is not pending in layer ${layer}`);
    pending.splice(at, 1);
    const a = offsets[e]!;
    const n = offsets[e + 1]! - a;
    const w = provider.acquire(layer, e);
    try {
      const F = w.gate.shape[0]!;
      const act = buffers.get('moe.expert.act', limit * F).subarray(0, n * F);
      backend.swiGlu(act, xs.subarray(a * H, (a + n) * H), w.gate, w.up, n);
      backend.matmul(ys.subarray(a * H, (a + n) * H), act, w.down, n);
    } finally {
      provider.release(layer, e);
    }
  }
}

/** `pending` (ascending, so their rows are contiguous) in calls of at most `limit` rows. */
function runGrouped(provider: ExpertProvider, layer: number, rows: ExpertRows, pending: readonly number[], limit: number, backend: Backend, buffers: Buffers): void {
  const { offsets } = rows;
  let from = 0;
  while (from < pending.length) {
    let to = from + 1;
    while (to < pending.length && offsets[pending[to]! + 1]! - offsets[pending[from]!]! <= limit) to++;
    runCall(provider, layer, rows, pending.slice(from, to), limit, backend, buffers);
    from = to;
  }
}

function runCall(provider: ExpertProvider, layer: number, rows: ExpertRows, group: readonly number[], limit: number, backend: Backend, buffers: Buffers): void {
  const { offsets, xs, ys } = rows;
  const H = rows.hidden;
  const base = offsets[group[0]!]!;
  const end = offsets[group[group.length - 1]! + 1]!;
  const starts = new Int32Array(group.length + 1);
  const experts: SwiGluWeights[] = [];
  try {
    for (let g = 0; g < group.length; g++) {
      starts[g] = offsets[group[g]!]! - base;
      experts.push(provider.acquire(layer, group[g]!));
    }
    starts[group.length] = end - base;
    const F = experts[0]!.gate.shape[0]!;
    const act = buffers.get('moe.expert.act', limit * F);
    backend.swiGluExperts(ys.subarray(base * H, end * H), xs.subarray(base * H, end * H), act, experts, starts);
  } finally {
    for (let g = 0; g < experts.length; g++) provider.release(layer, group[g]!);
  }
}
