import { fail } from '../errors.js';
import type { ExpertProvider } from '../moe/expert-provider.js';
import type { SwiGluWeights } from '../moe/swiglu.js';

/**
 * The ExpertProvider of one rank under expert parallelism: the experts (or, under MoEShard, the
 * expert slices) this rank holds, and nothing else. The others' weights are never touched, so their
 * pages of the memory-mapped file are never read on this rank.
 */
export class RankExperts implements ExpertProvider {
  /** @param layers per model layer, per global expert id: the weights this rank holds (undefined: not here) */
  constructor(
    private layers: readonly (readonly (SwiGluWeights | undefined)[] | null)[],
    private readonly rank: number,
  ) {}

  /** After a rebalance: the experts this rank holds from now on (their pages are read on first use). */
  hold(layers: readonly (readonly (SwiGluWeights | undefined)[] | null)[]): void {
    this.layers = layers;
  }

  acquire(layer: number, expert: number): SwiGluWeights {
    const w = this.layers[layer]?.[expert];
    if (!w) fail('E_BAD_INPUT', `rank ${this.rank} got rows for expert ${expert} of layer ${layer}, which it does not hold`);
    return w;
  }

  release(): void {}

  /** Bytes of the expert weights this rank holds (each held expert or slice once). */
  get bytes(): number {
    let n = 0;
    for (const l of this.layers) for (const w of l ?? []) if (w) n += w.gate.data.byteLength + w.up.data.byteLength + w.down.data.byteLength;
    return n;
  }
}
