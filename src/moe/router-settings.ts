import type { SigmoidGroupOptions } from './router-sigmoid-group.js';
import type { XmoeOptions } from './router-xmoe.js';

/**
 * What a checkpoint says about its routing, typed and validated once where config.json is read
 * (src/model/config.ts). Routers are built from this alone, so the routing code never reads raw
 * config.json fields and does not depend on the model loader.
 */
export interface RouterSettings {
  /** `scoring_func`: 'sigmoid' selects DeepSeek-V3's group-limited sigmoid routing; else softmax */
  readonly scoring: 'softmax' | 'sigmoid';
  /** renormalise the kept top-k softmax weights (the family's rule or `norm_topk_prob`) */
  readonly normTopK: boolean;
  /** `n_group`, `topk_group`, `norm_topk_prob` (default true here), `routed_scaling_factor` */
  readonly sigmoid: SigmoidGroupOptions;
  /** `xmoe_rank`, `xmoe_temperature`, `xmoe_seed`; renormalisation follows normTopK */
  readonly xmoe: Omit<XmoeOptions, 'renormalize'>;
}
