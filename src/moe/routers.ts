import { fail } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import type { Router } from './routing.js';
import { softmaxTopKRouter } from './router-softmax-topk.js';

/**
 * Routing functions by name (`--router`). Each checkpoint family has its own from config
 * (`routerForConfig`); `--router NAME` overrides it for experiments. A new routing function is one
 * file plus one line here.
 */
const ROUTERS: Record<string, (cfg: ModelConfig) => Router> = {
  'softmax-topk': () => softmaxTopKRouter(false),
  'softmax-topk-norm': () => softmaxTopKRouter(true),
};

export const ROUTER_NAMES = Object.keys(ROUTERS);

/** The family's own routing function: softmax then top-k, renormalised when norm_topk_prob. */
export function routerForConfig(cfg: ModelConfig, override?: string): Router {
  if (override === undefined) return softmaxTopKRouter(cfg.normTopK);
  const make = ROUTERS[override];
  if (!make) fail('E_BAD_OPTION', `unknown router '${override}' (available: ${ROUTER_NAMES.join(', ')})`);
  return make(cfg);
}
