import type { Backend } from '../tensor/backend.js';
import type { Buffers } from './buffers.js';
import { rowRange } from './buffers.js';
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
  const E = offsets.length - 1;
  let largest = 0;
  for (let e = 0; e < E; e++) largest = Math.max(largest, offsets[e + 1]! - offsets[e]!);
  if (largest === 0) return;
  const limit = actRows(rows.rows, largest);
  if (!provider.next) return runGrouped(provider, layer, rows, limit, backend, buffers);
  const pending: number[] = [];
  for (let e = 0; e < E; e++) if (offsets[e + 1]! > offsets[e]!) pending.push(e);
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

/**
 * The experts with rows, ascending (so their rows are contiguous), in calls of at most `limit` rows:
 * each call takes experts [first, end) while their rows fit (an expert larger than `limit` goes alone).
 */
function runGrouped(provider: ExpertProvider, layer: number, rows: ExpertRows, limit: number, backend: Backend, buffers: Buffers): void {
  const { offsets } = rows;
  const E = offsets.length - 1;
  let first = 0;
  for (;;) {
    while (first < E && offsets[first + 1] === offsets[first]) first++;
    if (first === E) return;
    let end = first + 1;
    while (end < E && offsets[end + 1]! - offsets[first]! <= limit) end++;
    runCall(provider, layer, rows, first, end, limit, backend, buffers);
    first = end;
  }
}

/** One grouped call over the experts with rows among [first, end). */
function runCall(provider: ExpertProvider, layer: number, rows: ExpertRows, first: number, end: number, limit: number, backend: Backend, buffers: Buffers): void {
  const { offsets, xs, ys } = rows;
  const H = rows.hidden;
  const base = offsets[first]!;
  const stop = offsets[end]!;
  let count = 0;
  for (let e = first; e < end; e++) if (offsets[e + 1]! > offsets[e]!) count++;
  const starts = new Int32Array(count + 1);
  const experts: SwiGluWeights[] = [];
  try {
    for (let e = first; e < end; e++) {
      if (offsets[e + 1] === offsets[e]) continue;
      starts[experts.length] = offsets[e]! - base;
      experts.push(provider.acquire(layer, e));
    }
    starts[count] = stop - base;
    const F = experts[0]!.gate.shape[0]!;
    const act = buffers.get('moe.expert.act', limit * F);
    backend.swiGluExperts(rowRange(ys, base * H, stop * H), rowRange(xs, base * H, stop * H), act, experts, starts);
  } finally {
    // release exactly the experts acquired, in the same order
    let released = 0;
    for (let e = first; e < end && released < experts.length; e++) {
      if (offsets[e + 1] === offsets[e]) continue;
      provider.release(layer, e);
      released++;
    }
  }
}
