import { fail } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import type { ModelWeights } from '../model/layer-weights.js';
import type { Router } from '../moe/routing.js';
import type { Backend } from '../tensor/backend.js';
import { BufferedExperts } from './buffered-experts.js';
import type { CacheBudget, CacheSizing } from './cache-budget.js';
import { fmtBytes, sizeCache } from './cache-budget.js';
import type { MappedFiles } from './mapped-files.js';

/** The eviction rule used when --cache-policy is not given: the lowest measured miss rate on the trained
 *  model's decode (docs/memory.md); LIFO, the paper's rule, suits a batch that activates most experts. */
export const DEFAULT_CACHE_POLICY = 'lfu';

/** The expert-buffering run-time options (entries of src/options/run-options.ts). */
export interface ExpertCacheOptions {
  readonly expertCache?: CacheBudget;
  readonly expertCacheSlots?: number;
  readonly cachePolicy?: string;
  readonly prefetch?: string;
}

/** A model's expert cache and the sizes it was given. */
export interface ExpertCache {
  readonly provider: BufferedExperts;
  readonly sizing: CacheSizing;
  readonly policy: string;
  readonly prefetch: string;
  /** one line for the user: slots, bytes, share of the model's experts, rule, prefetch, read mode */
  readonly summary: string;
}

/**
 * The expert cache the options ask for, or undefined (no --expert-cache / --expert-cache-slots: every
 * expert stays memory-mapped, exactly as without this module). --cache-policy and --prefetch alone are
 * refused rather than ignored.
 */
export function expertCacheFor(
  o: ExpertCacheOptions,
  cfg: ModelConfig,
  weights: ModelWeights,
  files: MappedFiles,
  run: { readonly router: Router; readonly backend: Backend },
): ExpertCache | undefined {
  if (o.expertCache !== undefined && o.expertCacheSlots !== undefined) fail('E_BAD_OPTION', 'give one of --expert-cache or --expert-cache-slots, not both');
  if (o.expertCache === undefined && o.expertCacheSlots === undefined) {
    if (o.cachePolicy !== undefined) fail('E_BAD_OPTION', '--cache-policy needs an expert cache: add --expert-cache SIZE|N% or --expert-cache-slots N');
    if (o.prefetch !== undefined) fail('E_BAD_OPTION', '--prefetch needs an expert cache: add --expert-cache SIZE|N% or --expert-cache-slots N');
    return undefined;
  }
  const moe = weights.layers.flatMap((l) => (l.moe ? [l.moe] : []));
  if (moe.length === 0) fail('E_BAD_OPTION', '--expert-cache: the model has no MoE layers');
  const e0 = moe[0]!.experts[0]!;
  const expertBytes = e0.gate.data.byteLength + e0.up.data.byteLength + e0.down.data.byteLength;
  const sizing = sizeCache(o.expertCacheSlots !== undefined ? { slots: o.expertCacheSlots } : o.expertCache!, moe.length, cfg.numExperts, expertBytes);
  const policy = o.cachePolicy ?? DEFAULT_CACHE_POLICY;
  const prefetch = o.prefetch ?? 'none';
  const provider = new BufferedExperts(
    weights.layers.map((l) => l.moe),
    files,
    { router: run.router, k: cfg.topK, backend: run.backend },
    { slots: sizing.slotsPerLayer, policy, prefetch },
  );
  const share = ((100 * sizing.cacheBytes) / sizing.modelExpertBytes).toFixed(1);
  const summary =
    `expert cache: ${sizing.slotsPerLayer} of ${cfg.numExperts} experts per MoE layer x ${sizing.moeLayers} layers = ` +
    `${fmtBytes(sizing.cacheBytes)} (${share}% of ${fmtBytes(sizing.modelExpertBytes)} of experts), ` +
    `policy ${policy}, prefetch ${prefetch}, ${provider.store.readMode}`;
  return { provider, sizing, policy, prefetch, summary };
}
