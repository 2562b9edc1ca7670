import { fail } from '../errors.js';
import { expertChoiceRouter } from './router-expert-choice.js';
import { sigmoidGroupRouter } from './router-sigmoid-group.js';
import { softmaxTopKRouter } from './router-softmax-topk.js';
import { topKSoftmaxRouter } from './router-topk-softmax.js';
import { xmoeRouter } from './router-xmoe.js';
import type { RouterSettings } from './router-settings.js';
import type { Router } from './routing.js';

/**
 * Routing functions by name (`--router`). Each checkpoint family has its own, chosen from its
 * `RouterSettings` (`routerForConfig`); `--router NAME` overrides it for experiments. A new routing function
 * is one file plus one line here.
 */
const ROUTERS: Record<string, (s: RouterSettings) => Router> = {
  'softmax-topk': () => softmaxTopKRouter(false),
  'softmax-topk-norm': () => softmaxTopKRouter(true),
  'topk-softmax': () => topKSoftmaxRouter,
  // Switch Transformer (Fedus et al., arXiv 2101.03961): top-1 of the softmax, weight = its probability
  'switch-top1': () => softmaxTopKRouter(false, 'switch-top1', 1),
  // GShard (Lepikhin et al., arXiv 2006.16668): top-2, g_i / (g_1 + g_2); its noise and random second-expert
  // dispatch are training-time regularisers, off at inference, so inference top-2 is exactly this
  'gshard-top2': () => softmaxTopKRouter(true, 'gshard-top2', 2),
  'sigmoid-group': (s) => sigmoidGroupRouter(s.sigmoid),
  'xmoe-cosine': (s) => xmoeRouter({ ...s.xmoe, renormalize: s.normTopK }),
  'expert-choice': () => expertChoiceRouter,
};

export const ROUTER_NAMES = Object.keys(ROUTERS);

/**
 * The family's own routing function: sigmoid + group-limited top-k when the checkpoint's scoring is
 * sigmoid (DeepSeek-V3 layout), else softmax then top-k, renormalised when `normTopK`.
 */
export function routerForConfig(cfg: { readonly routing: RouterSettings }, override?: string): Router {
  const settings = cfg.routing;
  if (override === undefined) {
    return settings.scoring === 'sigmoid' ? sigmoidGroupRouter(settings.sigmoid) : softmaxTopKRouter(settings.normTopK);
  }
  const make = ROUTERS[override];
  if (!make) fail('E_BAD_OPTION', `unknown router '${override}' (available: ${ROUTER_NAMES.join(', ')})`);
  return make(settings);
}
