/**
 * Architectures as data (style.md §3): everything that differs between the supported Hugging Face MoE
 * families is a field here, and src/model/transformer.ts composes the same blocks for all of them.
 * Tensor names use `{i}` for the layer index and `{e}` for the expert index.
 */
export type ArchName = 'mixtral' | 'qwen2_moe' | 'qwen3_moe' | 'olmoe';

/** Where q/k normalisation sits: none, RMSNorm per head (Qwen3), or over the whole projection (OLMoE). */
export type QkNorm = 'none' | 'per-head' | 'full';

export interface ArchSpec {
  readonly name: ArchName;
  /** The `architectures[0]` value Hugging Face writes for this family. */
  readonly hfClass: string;
  readonly qkNorm: QkNorm;
  /** q/k/v projections carry biases unless config.attention_bias says otherwise. */
  readonly defaultAttentionBias: boolean;
  /** config field holding the expert count. */
  readonly numExpertsField: string;
  /** config field holding each expert's FFN width. */
  readonly expertFfnField: string;
  /** Whether top-k weights are renormalised when the config does not say (`norm_topk_prob`). */
  readonly defaultNormTopK: boolean;
  /** Mixtral always renormalises and has no `norm_topk_prob` field. */
  readonly normTopKField: string | null;
  /** Qwen-MoE's `decoder_sparse_step` / `mlp_only_layers` dense-layer rule applies. */
  readonly hasDenseLayers: boolean;
  readonly hasSharedExpert: boolean;
  readonly names: {
    readonly router: string;
    readonly expertGate: string;
    readonly expertUp: string;
    readonly expertDown: string;
    readonly denseGate: string;
    readonly denseUp: string;
    readonly denseDown: string;
    readonly sharedGate: string;
    readonly sharedUp: string;
    readonly sharedDown: string;
    readonly sharedExpertGate: string;
  };
}

const QWEN_MLP = {
  router: 'model.layers.{i}.mlp.gate.weight',
  expertGate: 'model.layers.{i}.mlp.experts.{e}.gate_proj.weight',
  expertUp: 'model.layers.{i}.mlp.experts.{e}.up_proj.weight',
  expertDown: 'model.layers.{i}.mlp.experts.{e}.down_proj.weight',
  denseGate: 'model.layers.{i}.mlp.gate_proj.weight',
  denseUp: 'model.layers.{i}.mlp.up_proj.weight',
  denseDown: 'model.layers.{i}.mlp.down_proj.weight',
  sharedGate: 'model.layers.{i}.mlp.shared_expert.gate_proj.weight',
  sharedUp: 'model.layers.{i}.mlp.shared_expert.up_proj.weight',
  sharedDown: 'model.layers.{i}.mlp.shared_expert.down_proj.weight',
  sharedExpertGate: 'model.layers.{i}.mlp.shared_expert_gate.weight',
} as const;

export const ARCHS: Readonly<Record<ArchName, ArchSpec>> = {
  mixtral: {
    name: 'mixtral',
    hfClass: 'MixtralForCausalLM',
    qkNorm: 'none',
    defaultAttentionBias: false,
    numExpertsField: 'num_local_experts',
    expertFfnField: 'intermediate_size',
    defaultNormTopK: true,
    normTopKField: null,
    hasDenseLayers: false,
    hasSharedExpert: false,
    names: {
      ...QWEN_MLP,
      router: 'model.layers.{i}.block_sparse_moe.gate.weight',
      expertGate: 'model.layers.{i}.block_sparse_moe.experts.{e}.w1.weight',
      expertUp: 'model.layers.{i}.block_sparse_moe.experts.{e}.w3.weight',
      expertDown: 'model.layers.{i}.block_sparse_moe.experts.{e}.w2.weight',
    },
  },
  qwen2_moe: {
    name: 'qwen2_moe',
    hfClass: 'Qwen2MoeForCausalLM',
    qkNorm: 'none',
    defaultAttentionBias: true,
    numExpertsField: 'num_experts',
    expertFfnField: 'moe_intermediate_size',
    defaultNormTopK: false,
    normTopKField: 'norm_topk_prob',
    hasDenseLayers: true,
    hasSharedExpert: true,
    names: QWEN_MLP,
  },
  qwen3_moe: {
    name: 'qwen3_moe',
    hfClass: 'Qwen3MoeForCausalLM',
    qkNorm: 'per-head',
    defaultAttentionBias: false,
    numExpertsField: 'num_experts',
    expertFfnField: 'moe_intermediate_size',
    defaultNormTopK: false,
    normTopKField: 'norm_topk_prob',
    hasDenseLayers: true,
    hasSharedExpert: false,
    names: QWEN_MLP,
  },
  olmoe: {
    name: 'olmoe',
    hfClass: 'OlmoeForCausalLM',
    qkNorm: 'full',
    defaultAttentionBias: false,
    numExpertsField: 'num_experts',
    expertFfnField: 'intermediate_size',
    defaultNormTopK: false,
    normTopKField: 'norm_topk_prob',
    hasDenseLayers: false,
    hasSharedExpert: false,
    names: QWEN_MLP,
  },
};

/** Attention and norm tensors, the same for every family. */
export const COMMON_NAMES = {
  embed: 'model.embed_tokens.weight',
  finalNorm: 'model.norm.weight',
  lmHead: 'lm_head.weight',
  inputNorm: 'model.layers.{i}.input_layernorm.weight',
  postAttnNorm: 'model.layers.{i}.post_attention_layernorm.weight',
  q: 'model.layers.{i}.self_attn.q_proj',
  k: 'model.layers.{i}.self_attn.k_proj',
  v: 'model.layers.{i}.self_attn.v_proj',
  o: 'model.layers.{i}.self_attn.o_proj',
  qNorm: 'model.layers.{i}.self_attn.q_norm.weight',
  kNorm: 'model.layers.{i}.self_attn.k_norm.weight',
} as const;

export function tensorName(template: string, layer: number, expert = 0): string {
  return template.replace('{i}', String(layer)).replace('{e}', String(expert));
}

export function archByModelType(modelType: string): ArchSpec | undefined {
  return (ARCHS as Record<string, ArchSpec>)[modelType];
}
