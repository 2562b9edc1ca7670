/**
 * Architectures as data (style.md §3): everything that differs between the supported Hugging Face MoE
 * families is a field here, and src/model/transformer.ts composes the same blocks for all of them.
 * Tensor names use `{i}` for the layer index and `{e}` for the expert index.
 */
export type ArchName = 'mixtral' | 'qwen2_moe' | 'qwen3_moe' | 'olmoe';

/** Where q/k normalisation sits: none, RMSNorm per head (Qwen3), or over the whole projection (OLMoE). */
export type QkNorm = 'none' | 'per-head' | 'full';

/**
 * When config.json's `sliding_window` limits attention, as the family's transformers modeling code
 * decides: always when it is set (Mixtral), only with `use_sliding_window: true` (Qwen-MoE), never
 * (OLMoE builds a plain causal mask whatever the config says).
 */
export type SlidingWindowRule = 'when-set' | 'when-enabled' | 'never';

/**
 * The defaults of the family's transformers config class (MixtralConfig, Qwen2MoeConfig,
 * Qwen3MoeConfig, OlmoeConfig): what a field absent from config.json means. `null` is the class's
 * None (no such token; kv heads = attention heads).
 */
export interface HfDefaults {
  readonly vocabSize: number;
  readonly hiddenSize: number;
  /** `intermediate_size`: the experts' width (Mixtral, OLMoE) or the dense MLP's (Qwen-MoE) */
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number | null;
  readonly maxPositions: number;
  readonly rmsEps: number;
  readonly ropeTheta: number;
  readonly numExperts: number;
  readonly topK: number;
  /** `moe_intermediate_size` (Qwen-MoE only) */
  readonly moeIntermediateSize: number;
  /** `shared_expert_intermediate_size` (Qwen2-MoE only) */
  readonly sharedExpertFfn: number;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
}

export interface ArchSpec {
  readonly name: ArchName;
  /** The `architectures[0]` value Hugging Face writes for this family. */
  readonly hfClass: string;
  readonly qkNorm: QkNorm;
  /** config field that switches the q/k/v biases (`attention_bias`, Qwen2-MoE's `qkv_bias`); null: never biased */
  readonly attentionBiasField: string | null;
  /** q/k/v projections carry biases when the config does not say. */
  readonly defaultAttentionBias: boolean;
  /** The bias switch gives o_proj a bias too (LlamaAttention's attention_bias; not Qwen2-MoE's qkv_bias). */
  readonly outputBias: boolean;
  readonly slidingWindow: SlidingWindowRule;
  /** config.clip_qkv clamps q, k and v (OLMoE); other families have no such field */
  readonly clipQkv: boolean;
  readonly defaults: HfDefaults;
  /**
   * config field holding the expert count, as this moesaic writes it. Readers accept both spellings
   * (`num_experts`, `num_local_experts`): transformers' attribute_map makes them aliases, and which one
   * is canonical differs by family and by transformers version (Qwen3-MoE writes `num_local_experts`
   * since transformers 5).
   */
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
    attentionBiasField: null,
    outputBias: false,
    defaultAttentionBias: false,
    clipQkv: false,
    slidingWindow: 'when-set',
    defaults: {
      vocabSize: 32000, hiddenSize: 4096, intermediateSize: 14336, numLayers: 32, numHeads: 32, numKvHeads: 8,
      maxPositions: 4096 * 32, rmsEps: 1e-5, ropeTheta: 1e6, numExperts: 8, topK: 2, moeIntermediateSize: 0,
      sharedExpertFfn: 0, bosTokenId: 1, eosTokenId: 2,
    },
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
    attentionBiasField: 'qkv_bias',
    outputBias: false,
    defaultAttentionBias: true,
    clipQkv: false,
    slidingWindow: 'when-enabled',
    defaults: {
      vocabSize: 151936, hiddenSize: 2048, intermediateSize: 5632, numLayers: 24, numHeads: 16, numKvHeads: 16,
      maxPositions: 32768, rmsEps: 1e-6, ropeTheta: 10000, numExperts: 60, topK: 4, moeIntermediateSize: 1408,
      sharedExpertFfn: 5632, bosTokenId: null, eosTokenId: null,
    },
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
    attentionBiasField: 'attention_bias',
    outputBias: true,
    defaultAttentionBias: false,
    clipQkv: false,
    slidingWindow: 'when-enabled',
    defaults: {
      vocabSize: 151936, hiddenSize: 2048, intermediateSize: 6144, numLayers: 24, numHeads: 32, numKvHeads: 4,
      maxPositions: 32768, rmsEps: 1e-6, ropeTheta: 10000, numExperts: 128, topK: 8, moeIntermediateSize: 768,
      sharedExpertFfn: 0, bosTokenId: null, eosTokenId: null,
    },
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
    attentionBiasField: 'attention_bias',
    outputBias: true,
    defaultAttentionBias: false,
    clipQkv: true,
    slidingWindow: 'never',
    defaults: {
      vocabSize: 50304, hiddenSize: 2048, intermediateSize: 2048, numLayers: 16, numHeads: 16, numKvHeads: null,
      maxPositions: 4096, rmsEps: 1e-5, ropeTheta: 10000, numExperts: 64, topK: 8, moeIntermediateSize: 0,
      sharedExpertFfn: 0, bosTokenId: null, eosTokenId: 50279,
    },
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
