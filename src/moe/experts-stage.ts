import type { Backend } from '../tensor/backend.js';
import type { Buffers } from './buffers.js';
import type { ExpertRows } from './dispatch.js';
import type { ExpertProvider } from './expert-provider.js';
import { swiglu } from './swiglu.js';

/**
 * The Experts stage: one grouped SwiGLU product per non-empty expert group of `rows` (rows
 * [offsets[e], offsets[e+1]) of xs into the same rows of ys), weights from the provider. The provider
 * picks the order (a cache runs resident experts while others load) and sees each expert pinned from
 * acquire to release. Rows of padding are computed like any other row: that is the cost of padding.
 */
export function runExperts(provider: ExpertProvider, layer: number, rows: ExpertRows, backend: Backend, buffers: Buffers): void {
  const { offsets, xs, ys } = rows;
  const H = rows.hidden;
  const pending: number[] = [];
  for (let e = 0; e + 1 < offsets.length; e++) if (offsets[e + 1]! > offsets[e]!) pending.push(e);
  while (pending.length > 0) {
    const e = provider.next ? provider.next(layer, pending) : pending[0]!;
    const at = pending.indexOf(e);
    if (at < 0) throw new Error(`expert provider chose expert ${e}, which is not pending in layer ${layer}`);
    pending.splice(at, 1);
    const a = offsets[e]!;
    const n = offsets[e + 1]! - a;
    const w = provider.acquire(layer, e);
    try {
      swiglu(backend, buffers, 'moe.expert', ys.subarray(a * H, (a + n) * H), xs.subarray(a * H, (a + n) * H), n, w);
    } finally {
      provider.release(layer, e);
    }
  }
}
