import { fail } from '../errors.js';
import { HistoryPrefetcher } from './prefetch-history.js';
import { PregatePrefetcher } from './prefetch-pregate.js';
import type { Prefetcher, PrefetchContext } from './prefetch.js';

/** The prefetch modes by name (`--prefetch`); 'none' loads only what a layer asks for. */
const PREFETCHERS: Record<string, ((ctx: PrefetchContext) => Prefetcher) | null> = {
  none: null,
  pregate: (ctx) => new PregatePrefetcher(ctx),
  history: (ctx) => new HistoryPrefetcher(ctx),
};

export const PREFETCH_NAMES: readonly string[] = Object.keys(PREFETCHERS);

export function createPrefetcher(name: string, ctx: PrefetchContext): Prefetcher | null {
  if (!(name in PREFETCHERS)) fail('E_BAD_OPTION', `unknown prefetch mode '${name}' (expected ${PREFETCH_NAMES.join(', ')})`);
  return PREFETCHERS[name]!?.(ctx) ?? null;
}
