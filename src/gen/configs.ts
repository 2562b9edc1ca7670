import { fail } from '../errors.js';

/**
 * The synthetic model family: one table of sizes shared by every architecture, and per architecture
 * the exact config.json that the matching transformers config class (MixtralConfig, Qwen2MoeConfig,
 * Qwen3MoeConfig, OlmoeConfig) writes, so loaders are tested against the real field names.
 */
export const ARCHS = ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe'] as const;
export type Arch = (typeof ARCHS)[number];
export const SIZES = ['tiny', 'small', 'bench'] as const;
export type Size = (typeof SIZES)[number];

/** Special token ids, shared by config.json, generation_config.json and tokenizer.json. */
export const PAD_ID = 0;
export const BOS_ID = 1;
export const EOS_ID = 2;

/** The dimensions every later step (tensor plan, tokenizer) needs, resolved for one arch and size. */
export interface ModelDims {
  readonly arch: Arch;
  readonly size: Size;
  readonly hidden: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly experts: number;
  readonly topK: number;
  readonly expertInter: number; // F of one routed expert
  readonly denseInter: number; // F of a dense (non-MoE) MLP layer (qwen2_moe / qwen3_moe only)
  readonly sharedInter: number; // F of the shared expert (qwen2_moe only)
  readonly vocab: number;
  readonly maxPos: number;
  readonly tied: boolean;
  readonly mlpOnlyLayers: readonly number[];
  readonly decoderSparseStep: number;
}

interface SizeRow {
  hidden: number;
  layers: number;
  qwen2Layers: number; // qwen2_moe gets an extra dense layer in tiny
  heads: number;
  kvHeads: number;
  experts: number;
  topK: number;
  expertInter: number;
  denseInter: number;
  sharedInter: number;
  vocab: number;
  maxPos: number;
}

// Every dimension is a multiple of 4, so every tensor's byte size is a multiple of 8 in f32 and bf16:
// safetensors stores tensors back to back, and this keeps every data offset 8-byte aligned.
const SIZE_TABLE: Record<Size, SizeRow> = {
  tiny: { hidden: 64, layers: 2, qwen2Layers: 3, heads: 4, kvHeads: 2, experts: 8, topK: 2, expertInter: 32, denseInter: 96, sharedInter: 48, vocab: 512, maxPos: 256 },
  small: { hidden: 256, layers: 4, qwen2Layers: 4, heads: 8, kvHeads: 4, experts: 8, topK: 2, expertInter: 512, denseInter: 1024, sharedInter: 512, vocab: 2048, maxPos: 1024 },
  bench: { hidden: 1024, layers: 8, qwen2Layers: 8, heads: 16, kvHeads: 4, experts: 8, topK: 2, expertInter: 2048, denseInter: 4096, sharedInter: 2048, vocab: 8192, maxPos: 4096 },
};

export function isArch(v: unknown): v is Arch {
  return typeof v === 'string' && (ARCHS as readonly string[]).includes(v);
}

export function isSize(v: unknown): v is Size {
  return typeof v === 'string' && (SIZES as readonly string[]).includes(v);
}

/** Bounds of the `--experts` / `--layers` overrides (well beyond the expert-cache tests' 32-128 experts). */
export const MAX_EXPERTS = 1024;
export const MAX_LAYERS = 256;

/** Dimensions that replace the size table's (e.g. many experts for expert-cache tests). */
export interface DimOverrides {
  readonly experts?: number;
  readonly layers?: number;
}

export function modelDims(arch: Arch, size: Size, over: DimOverrides = {}): ModelDims {
  if (!isArch(arch)) fail('E_BAD_OPTION', `arch must be one of ${ARCHS.join('|')}, got '${String(arch)}'`);
  if (!isSize(size)) fail('E_BAD_OPTION', `size must be one of ${SIZES.join('|')}, got '${String(size)}'`);
  const r = SIZE_TABLE[size];
  const { experts = r.experts, layers = arch === 'qwen2_moe' ? r.qwen2Layers : r.layers } = over;
  if (!Number.isInteger(experts) || experts < r.topK || experts > MAX_EXPERTS) {
    fail('E_BAD_OPTION', `--experts must be an integer in [${r.topK}, ${MAX_EXPERTS}] (at least the ${r.topK} experts each token uses), got ${experts}`);
  }
  if (!Number.isInteger(layers) || layers < 1 || layers > MAX_LAYERS) fail('E_BAD_OPTION', `--layers must be an integer in [1, ${MAX_LAYERS}], got ${layers}`);
  const plainHeadDim = r.hidden / r.heads;
  return {
    arch,
    size,
    hidden: r.hidden,
    layers,
    heads: r.heads,
    kvHeads: r.kvHeads,
    // Qwen3-MoE decouples head_dim from hidden/heads (Qwen3-30B-A3B: 2048 / 32 heads, head_dim 128);
    // doubling it here makes a loader that assumes hidden/heads fail loudly.
    headDim: arch === 'qwen3_moe' ? 2 * plainHeadDim : plainHeadDim,
    experts,
    topK: r.topK,
    expertInter: r.expertInter,
    denseInter: r.denseInter,
    sharedInter: r.sharedInter,
    vocab: r.vocab,
    maxPos: r.maxPos,
    tied: arch === 'qwen3_moe',
    // the tiny qwen2_moe has a dense middle layer so the dense-MLP path of that family is exercised
    // (when it has more than one layer)
    mlpOnlyLayers: arch === 'qwen2_moe' && size === 'tiny' && layers > 1 ? [1] : [],
    decoderSparseStep: 1,
  };
}

/** Whether layer i has a sparse MoE block, by the transformers rule for qwen2_moe / qwen3_moe. */
export function isSparseLayer(d: ModelDims, i: number): boolean {
  if (d.arch === 'mixtral' || d.arch === 'olmoe') return true;
  return !d.mlpOnlyLayers.includes(i) && d.experts > 0 && (i + 1) % d.decoderSparseStep === 0;
}

/**
 * The config.json fields each transformers config class declares as float (`rope_theta` as in 4.x),
 * which must be written as JSON floats (`0.0`, not `0`): transformers 5 refuses an int there.
 */
export const FLOAT_FIELDS: Readonly<Record<Arch, readonly string[]>> = {
  mixtral: ['initializer_range', 'rms_norm_eps', 'rope_theta', 'attention_dropout', 'router_aux_loss_coef', 'router_jitter_noise'],
  qwen2_moe: ['initializer_range', 'rms_norm_eps', 'rope_theta', 'attention_dropout', 'router_aux_loss_coef'],
  qwen3_moe: ['initializer_range', 'rms_norm_eps', 'rope_theta', 'attention_dropout', 'router_aux_loss_coef'],
  olmoe: ['initializer_range', 'rms_norm_eps', 'rope_theta', 'attention_dropout', 'router_aux_loss_coef', 'clip_qkv'],
};

/** config.json exactly as the transformers config class of the architecture serialises it. */
export function configJson(d: ModelDims, dtype: 'f32' | 'bf16'): Record<string, unknown> {
  const common = {
    vocab_size: d.vocab,
    hidden_size: d.hidden,
    num_hidden_layers: d.layers,
    num_attention_heads: d.heads,
    num_key_value_heads: d.kvHeads,
    hidden_act: 'silu',
    max_position_embeddings: d.maxPos,
    initializer_range: 0.02,
    use_cache: true,
    tie_word_embeddings: d.tied,
    bos_token_id: BOS_ID,
    eos_token_id: EOS_ID,
    attention_dropout: 0.0,
    sliding_window: null,
    rope_scaling: null,
    output_router_logits: false,
    router_aux_loss_coef: d.arch === 'olmoe' ? 0.01 : 0.001,
    torch_dtype: dtype === 'bf16' ? 'bfloat16' : 'float32',
    transformers_version: '4.51.0',
  };
  switch (d.arch) {
    case 'mixtral':
      return {
        architectures: ['MixtralForCausalLM'],
        model_type: 'mixtral',
        ...common,
        intermediate_size: d.expertInter,
        rms_norm_eps: 1e-5,
        rope_theta: 10000.0,
        pad_token_id: null,
        num_local_experts: d.experts,
        num_experts_per_tok: d.topK,
        router_aux_loss_coef: 0.02,
        router_jitter_noise: 0.0,
      };
    case 'qwen2_moe':
      return {
        architectures: ['Qwen2MoeForCausalLM'],
        model_type: 'qwen2_moe',
        ...common,
        intermediate_size: d.denseInter,
        rms_norm_eps: 1e-6,
        rope_theta: 10000.0,
        use_sliding_window: false,
        max_window_layers: d.layers,
        decoder_sparse_step: d.decoderSparseStep,
        moe_intermediate_size: d.expertInter,
        shared_expert_intermediate_size: d.sharedInter,
        num_experts: d.experts,
        num_experts_per_tok: d.topK,
        norm_topk_prob: false,
        mlp_only_layers: [...d.mlpOnlyLayers],
      };
    case 'qwen3_moe':
      return {
        architectures: ['Qwen3MoeForCausalLM'],
        model_type: 'qwen3_moe',
        ...common,
        intermediate_size: d.denseInter,
        head_dim: d.headDim,
        rms_norm_eps: 1e-6,
        rope_theta: 1000000.0,
        attention_bias: false,
        use_sliding_window: false,
        max_window_layers: d.layers,
        decoder_sparse_step: d.decoderSparseStep,
        moe_intermediate_size: d.expertInter,
        num_experts: d.experts,
        num_experts_per_tok: d.topK,
        norm_topk_prob: true,
        mlp_only_layers: [...d.mlpOnlyLayers],
      };
    case 'olmoe':
      return {
        architectures: ['OlmoeForCausalLM'],
        model_type: 'olmoe',
        ...common,
        intermediate_size: d.expertInter,
        rms_norm_eps: 1e-5,
        rope_theta: 10000.0,
        pad_token_id: PAD_ID,
        attention_bias: false,
        clip_qkv: null,
        num_experts: d.experts,
        num_experts_per_tok: d.topK,
        norm_topk_prob: false,
      };
  }
}
