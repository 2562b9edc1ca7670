import type { SwiGluWeights } from './swiglu.js';

/**
 * Where a MoE layer's expert weights come from: the memory-mapped checkpoint (the default), a bounded
 * cache of expert slots in front of a slow tier (expert buffering, Huang et al., arXiv 2303.06182 §5),
 * or, under expert parallelism, the share of experts a rank holds. The Experts stage asks for each
 * expert it runs and releases it right after, so a cache knows which experts are pinned.
 */
export interface ExpertProvider {
  /**
   * Hook after Plan, before Experts: this step's active experts of `layer` (ascending global ids). A
   * cache starts every missing load here, so reads overlap the products of resident experts.
   */
  beginLayer?(layer: number, active: readonly number[]): void;
  /**
   * Which of `pending` (non-empty, ascending) to run next; default pending[0]. A cache answers with a
   * resident expert first, else the first load to arrive.
   */
  next?(layer: number, pending: readonly number[]): number;
  /** Weights of (layer, expert), resident where the products run; pinned until `release`. May block until a load completes. */
  acquire(layer: number, expert: number): SwiGluWeights;
  release(layer: number, expert: number): void;
  /** After the layer's experts ran; `hidden` [tokens, hidden] is the layer's input (a prefetcher may look ahead to layer + 1). */
  endLayer?(layer: number, hidden: Float32Array, tokens: number): void;
}

/** The default provider: every expert's weights as resolved at load (memory-mapped, zero-copy). */
export class MappedExperts implements ExpertProvider {
  /** @param layers per layer its experts by global id (undefined for dense layers) */
  constructor(private readonly layers: readonly (readonly SwiGluWeights[] | undefined)[]) {}

  acquire(layer: number, expert: number): SwiGluWeights {
    const w = this.layers[layer]?.[expert];
    if (!w) throw new Error(`no weights for expert ${expert} of layer ${layer}`);
    return w;
  }

  release(): void {}
}
