import type { ModelDims } from './configs.js';
import { isSparseLayer } from './configs.js';

/**
 * The tensors of a synthetic checkpoint: Hugging Face names and shapes (Linear weights are
 * [out_features, in_features]) and how each one is initialised. Architectures differ only in the
 * table below (name templates and which optional tensors exist), never in the code that walks it.
 */
export type Init =
  | { kind: 'normal'; std: number } // N(0, std^2)
  | { kind: 'gain' } // RMSNorm gain: 1 + small noise
  | { kind: 'embed' } // N(0, 1) plus the shared offset direction (see init.ts)
  | { kind: 'router'; layer: number }; // N(0, 1/H), orthogonal to the offset direction, plus skew

export interface TensorPlan {
  readonly name: string;
  readonly shape: readonly number[];
  readonly init: Init;
  /** Decoder layer the tensor belongs to, or -1 for embeddings, final norm and lm_head. */
  readonly layer: number;
}

interface ArchNames {
  moe: string; // prefix of the sparse block inside a layer
  expert: readonly [gate: string, up: string, down: string];
  qkvBias: boolean;
  qkNorm: 'none' | 'per-head' | 'full';
  sharedExpert: boolean;
}

const NAMES: Record<ModelDims['arch'], ArchNames> = {
  mixtral: { moe: 'block_sparse_moe', expert: ['w1', 'w3', 'w2'], qkvBias: false, qkNorm: 'none', sharedExpert: false },
  qwen2_moe: { moe: 'mlp', expert: ['gate_proj', 'up_proj', 'down_proj'], qkvBias: true, qkNorm: 'none', sharedExpert: true },
  qwen3_moe: { moe: 'mlp', expert: ['gate_proj', 'up_proj', 'down_proj'], qkvBias: false, qkNorm: 'per-head', sharedExpert: false },
  olmoe: { moe: 'mlp', expert: ['gate_proj', 'up_proj', 'down_proj'], qkvBias: false, qkNorm: 'full', sharedExpert: false },
};

/** Std of the biases of qwen2_moe's q/k/v projections: large enough that ignoring them shows. */
const BIAS_STD = 0.1;

export function tensorPlan(d: ModelDims): TensorPlan[] {
  const a = NAMES[d.arch];
  const H = d.hidden;
  const out: TensorPlan[] = [];
  const add = (name: string, shape: number[], init: Init, layer = -1) => out.push({ name, shape, init, layer });
  // Linear init std 1/sqrt(fan_in) keeps activations O(1); projections that write into the residual
  // stream are further scaled by 1/sqrt(2 * layers) (GPT-2 style) so the stream stays dominated by the
  // embedding and its offset direction, which is what makes --skew act in every layer.
  const lin = (fanIn: number): Init => ({ kind: 'normal', std: 1 / Math.sqrt(fanIn) });
  const resid = (fanIn: number): Init => ({ kind: 'normal', std: 1 / Math.sqrt(fanIn) / Math.sqrt(2 * d.layers) });
  const qDim = d.heads * d.headDim;
  const kvDim = d.kvHeads * d.headDim;

  add('model.embed_tokens.weight', [d.vocab, H], { kind: 'embed' });
  for (let i = 0; i < d.layers; i++) {
    const p = `model.layers.${i}`;
    add(`${p}.input_layernorm.weight`, [H], { kind: 'gain' }, i);
    add(`${p}.self_attn.q_proj.weight`, [qDim, H], lin(H), i); // [heads*head_dim, H]
    add(`${p}.self_attn.k_proj.weight`, [kvDim, H], lin(H), i); // [kv_heads*head_dim, H]
    add(`${p}.self_attn.v_proj.weight`, [kvDim, H], lin(H), i);
    if (a.qkvBias) {
      add(`${p}.self_attn.q_proj.bias`, [qDim], { kind: 'normal', std: BIAS_STD }, i);
      add(`${p}.self_attn.k_proj.bias`, [kvDim], { kind: 'normal', std: BIAS_STD }, i);
      add(`${p}.self_attn.v_proj.bias`, [kvDim], { kind: 'normal', std: BIAS_STD }, i);
    }
    add(`${p}.self_attn.o_proj.weight`, [H, qDim], resid(qDim), i);
    if (a.qkNorm === 'per-head') {
      add(`${p}.self_attn.q_norm.weight`, [d.headDim], { kind: 'gain' }, i);
      add(`${p}.self_attn.k_norm.weight`, [d.headDim], { kind: 'gain' }, i);
    } else if (a.qkNorm === 'full') {
      add(`${p}.self_attn.q_norm.weight`, [qDim], { kind: 'gain' }, i);
      add(`${p}.self_attn.k_norm.weight`, [kvDim], { kind: 'gain' }, i);
    }
    add(`${p}.post_attention_layernorm.weight`, [H], { kind: 'gain' }, i);
    if (isSparseLayer(d, i)) {
      const m = `${p}.${a.moe}`;
      add(`${m}.gate.weight`, [d.experts, H], { kind: 'router', layer: i }, i); // [E, H]
      const F = d.expertInter;
      for (let e = 0; e < d.experts; e++) {
        const x = `${m}.experts.${e}`;
        add(`${x}.${a.expert[0]}.weight`, [F, H], lin(H), i); // gate [F, H]
        add(`${x}.${a.expert[1]}.weight`, [F, H], lin(H), i); // up [F, H]
        add(`${x}.${a.expert[2]}.weight`, [H, F], resid(F), i); // down [H, F]
      }
      if (a.sharedExpert) {
        const S = d.sharedInter;
        add(`${m}.shared_expert.gate_proj.weight`, [S, H], lin(H), i);
        add(`${m}.shared_expert.up_proj.weight`, [S, H], lin(H), i);
        add(`${m}.shared_expert.down_proj.weight`, [H, S], resid(S), i);
        add(`${m}.shared_expert_gate.weight`, [1, H], lin(H), i); // [1, H]
      }
    } else {
      const F = d.denseInter;
      add(`${p}.mlp.gate_proj.weight`, [F, H], lin(H), i);
      add(`${p}.mlp.up_proj.weight`, [F, H], lin(H), i);
      add(`${p}.mlp.down_proj.weight`, [H, F], resid(F), i);
    }
  }
  add('model.norm.weight', [H], { kind: 'gain' });
  if (!d.tied) add('lm_head.weight', [d.vocab, H], lin(H));
  return out;
}
