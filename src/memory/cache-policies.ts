import { fail } from '../errors.js';
import { BeladyPolicy } from './cache-policy-belady.js';
import { FifoPolicy } from './cache-policy-fifo.js';
import { LfuPolicy } from './cache-policy-lfu.js';
import { LifoPolicy } from './cache-policy-lifo.js';
import { LruPolicy } from './cache-policy-lru.js';
import { CACHE_POLICIES, type CachePolicy, type CachePolicyName } from './cache-policy.js';

export { CACHE_POLICIES, type CachePolicy, type CachePolicyName } from './cache-policy.js';

/** The eviction rules by name; `online: false` = needs the future, so the simulator only. */
const REGISTRY: Record<CachePolicyName, { online: boolean; create: (experts: number) => CachePolicy }> = {
  lifo: { online: true, create: (n) => new LifoPolicy(n) },
  lru: { online: true, create: (n) => new LruPolicy(n) },
  lfu: { online: true, create: (n) => new LfuPolicy(n) },
  fifo: { online: true, create: (n) => new FifoPolicy(n) },
  belady: { online: false, create: (n) => new BeladyPolicy(n) },
};

/** The rules a running engine can use (every one but Belady's MIN, which needs the future). */
export const ONLINE_CACHE_POLICIES = CACHE_POLICIES.filter((p) => REGISTRY[p].online);

/** A fresh rule for one cache over expert ids 0..experts-1. `online` refuses the off-line rules. */
export function createCachePolicy(name: string, experts: number, opts: { online?: boolean } = {}): CachePolicy {
  const entry = (REGISTRY as Record<string, (typeof REGISTRY)[CachePolicyName] | undefined>)[name];
  if (entry === undefined) fail('E_BAD_OPTION', `unknown cache policy '${name}' (expected ${CACHE_POLICIES.join(', ')})`);
  if (opts.online && !entry.online) fail('E_BAD_OPTION', `cache policy '${name}' needs the future requests: it exists only in 'simulate cache' (use ${ONLINE_CACHE_POLICIES.join(', ')})`);
  return entry.create(experts);
}
