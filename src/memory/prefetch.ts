import type { MoeWeights } from '../moe/moe-layer.js';
import type { Router } from '../moe/routing.js';
import type { Backend } from '../tensor/backend.js';

/** What a prefetcher may read: the model's MoE layers, its routing function and kernels. */
export interface PrefetchContext {
  /** per layer its MoE weights (undefined: dense layer) */
  readonly layers: readonly (MoeWeights | undefined)[];
  readonly router: Router;
  /** the config's experts per token */
  readonly k: number;
  readonly backend: Backend;
}

/**
 * Predicts the experts of the next MoE layer while the current one runs, so their reads overlap
 * compute. One implementation per file (prefetch-<name>.ts), registered in prefetchers.ts.
 */
export interface Prefetcher {
  readonly name: string;
  /**
   * Layer `layer` ran on `hidden` [tokens, hidden] (its input) with experts `active`: fill `out` with
   * the experts of MoE layer `next` to load now (most likely first; the cache loads at most its slots).
   */
  predict(layer: number, next: number, hidden: Float32Array, tokens: number, active: readonly number[], out: number[]): void;
  /** Every MoE layer's active experts, in layer order within each step (for statistics). */
  observe?(layer: number, active: readonly number[]): void;
}
