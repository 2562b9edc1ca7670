import { fail } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import { expertChoiceRouter } from './router-expert-choice.js';
import { sigmoidGroupRouter } from './router-sigmoid-group.js';
import { softmaxTopKRouter } from './router-softmax-topk.js';
import { topKSoftmaxRouter } from './router-topk-softmax.js';
import { xmoeRouter } from './router-xmoe.js';
import type { Router } from './routing.js';

/**
 * Routing functions by name (`--router`). Each checkpoint family has its own from config
 * (`routerForConfig`); `--router NAME` overrides it for experiments. A new routing function is one
 * file plus one line here. Only the config's `raw` fields are read here; the routers stay pure.
 */
const ROUTERS: Record<string, (cfg: ModelConfig) => Router> = {
  'softmax-topk': () => softmaxTopKRouter(false),
  'softmax-topk-norm': () => softmaxTopKRouter(true),
  'topk-softmax': () => topKSoftmaxRouter,
  // Switch Transformer (Fedus et al., arXiv 2101.03961): top-1 of the softmax, weight = its probability
  'switch-top1': () => softmaxTopKRouter(false, 'switch-top1', 1),
  // GShard (Lepikhin et al., arXiv 2006.16668): top-2, g_i / (g_1 + g_2); its noise and random second-expert
  // dispatch are training-time regularisers, off at inference, so inference top-2 is exactly this
  'gshard-top2': () => softmaxTopKRouter(true, 'gshard-top2', 2),
  'sigmoid-group': (cfg) => sigmoidGroupRouter(sigmoidOptions(cfg)),
  'xmoe-cosine': (cfg) =>
    xmoeRouter({ rank: rawNumber(cfg, 'xmoe_rank', 16), temperature: rawNumber(cfg, 'xmoe_temperature', 0.07), renormalize: cfg.normTopK, seed: rawSeed(cfg) }),
  'expert-choice': () => expertChoiceRouter,
};

export const ROUTER_NAMES = Object.keys(ROUTERS);

/**
 * The family's own routing function: sigmoid + group-limited top-k when config.json says
 * `scoring_func: "sigmoid"` (DeepSeek-V3 layout), else softmax then top-k, renormalised when
 * norm_topk_prob (or always, for Mixtral).
 */
export function routerForConfig(cfg: ModelConfig, override?: string): Router {
  if (override === undefined) {
    return cfg.raw.scoring_func === 'sigmoid' ? sigmoidGroupRouter(sigmoidOptions(cfg)) : softmaxTopKRouter(cfg.normTopK);
  }
  const make = ROUTERS[override];
  if (!make) fail('E_BAD_OPTION', `unknown router '${override}' (available: ${ROUTER_NAMES.join(', ')})`);
  return make(cfg);
}

function sigmoidOptions(cfg: ModelConfig) {
  return {
    groups: rawNumber(cfg, 'n_group', 1),
    topGroups: rawNumber(cfg, 'topk_group', 1),
    normalize: typeof cfg.raw.norm_topk_prob === 'boolean' ? cfg.raw.norm_topk_prob : true,
    scale: rawNumber(cfg, 'routed_scaling_factor', 1),
  };
}

function rawNumber(cfg: ModelConfig, field: string, fallback: number): number {
  const v = cfg.raw[field] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail('E_BAD_CONFIG', `config field '${field}' must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

function rawSeed(cfg: ModelConfig): number {
  const v = cfg.raw.xmoe_seed ?? 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail('E_BAD_CONFIG', `config field 'xmoe_seed' must be an integer >= 0, got ${JSON.stringify(v)}`);
  return v;
}
