import { fail } from '../../errors.js';
import type { ArchName } from '../architectures.js';
import { ARCHS } from '../architectures.js';
import type { ModelConfig } from '../config.js';
import type { Metadata, MetaValue } from './format.js';
import type { QuantMix } from './quant-mix.js';
import { FILE_TYPE, metaArray, metaNumber, metaString, ValueType } from './format.js';
import { GGUF_ARCH } from './names.js';
import type { GgufFile } from './reader.js';

/**
 * Model hyperparameters between GGUF metadata (`<arch>.block_count`, ...) and a Hugging Face config.json
 * object. Reading builds the config object and hands it to parseConfig, so a GGUF model is validated by
 * exactly the rules a Hugging Face folder is.
 */

/**
 * Whether llama.cpp renormalises the top-k routing weights of each family when the file has no
 * `<arch>.expert_weights_norm` key (its graph code hard-wires it per architecture).
 */
const LLAMA_CPP_NORM_TOPK: Readonly<Record<ArchName, boolean>> = {
  mixtral: true,
  qwen2_moe: false,
  qwen3_moe: true,
  olmoe: false,
};

function archFromGguf(file: GgufFile): ArchName {
  const name = metaString(file.metadata, 'general.architecture');
  if (name === undefined) fail('E_BAD_CONFIG', `${file.path}: metadata 'general.architecture' is missing`);
  const found = (Object.keys(GGUF_ARCH) as ArchName[]).find((a) => GGUF_ARCH[a].name === name);
  if (!found) {
    const known = Object.values(GGUF_ARCH).map((a) => a.name).join(', ');
    fail('E_UNSUPPORTED_ARCH', `${file.path}: general.architecture '${name}' is not supported (supported: ${known}; llama only with experts)`);
  }
  if (found === 'mixtral' && !(metaNumber(file.metadata, 'llama.expert_count')! > 0)) {
    fail('E_UNSUPPORTED_ARCH', `${file.path}: a dense llama model (no llama.expert_count): moesaic runs Mixture-of-Experts models only`);
  }
  return found;
}

/** The Hugging Face config.json object equivalent to the file's metadata and tensor layout. */
export function configFromGguf(file: GgufFile): Record<string, unknown> {
  const arch = archFromGguf(file);
  const spec = ARCHS[arch];
  const p = GGUF_ARCH[arch].name;
  const meta = file.metadata;
  const has = (t: string) => file.tensors.has(t);
  /** a number, or one number repeated per layer (llama.cpp allows per-layer arrays for some keys) */
  const opt = (key: string): number | undefined => {
    const arr = metaArray(meta, `${p}.${key}`);
    if (arr) {
      const vals = [...new Set(arr.map(Number))];
      if (vals.length !== 1) fail('E_BAD_CONFIG', `${file.path}: metadata '${p}.${key}' differs between layers (${vals.join(', ')}): not supported`);
      return vals[0];
    }
    return metaNumber(meta, `${p}.${key}`);
  };
  const req = (key: string): number => {
    const v = opt(key);
    if (v === undefined) fail('E_BAD_CONFIG', `${file.path}: metadata '${p}.${key}' is missing or not a number`);
    return v;
  };
  /** the expert FFN width from a merged expert tensor when the metadata does not say: ne = [H, F, E] */
  const dimOf = (tensor: string, axis: number) => file.tensors.get(tensor)?.ne[axis];

  const layers = req('block_count');
  const hidden = req('embedding_length');
  const heads = req('attention.head_count');
  const kvHeads = opt('attention.head_count_kv') ?? heads;
  const headDim = opt('attention.key_length') ?? hidden / heads;
  const valueDim = opt('attention.value_length') ?? headDim;
  if (valueDim !== headDim) fail('E_BAD_CONFIG', `${file.path}: attention.value_length ${valueDim} differs from key_length ${headDim}: not supported`);
  const ropeDims = opt('rope.dimension_count') ?? headDim;
  if (ropeDims !== headDim) fail('E_BAD_CONFIG', `${file.path}: ${p}.rope.dimension_count ${ropeDims} < head size ${headDim} (partial rotary) is not supported`);
  const scaling = metaString(meta, `${p}.rope.scaling.type`);
  const experts = req('expert_count');
  const firstMoe = [...Array(layers).keys()].find((l) => has(`blk.${l}.ffn_gate_inp.weight`)) ?? 0;
  const expertFfn =
    opt('expert_feed_forward_length') ??
    (arch === 'mixtral' || arch === 'olmoe' ? opt('feed_forward_length') : undefined) ??
    dimOf(`blk.${firstMoe}.ffn_gate_exps.weight`, 1) ??
    req('expert_feed_forward_length');

  const tokens = metaArray(meta, 'tokenizer.ggml.tokens');
  const vocab = tokens?.length ?? opt('vocab_size') ?? dimOf('token_embd.weight', 1);
  if (vocab === undefined) fail('E_BAD_CONFIG', `${file.path}: no tokenizer.ggml.tokens, ${p}.vocab_size or token_embd.weight to size the vocabulary`);
  const bos = metaNumber(meta, 'tokenizer.ggml.bos_token_id');
  const eos = metaNumber(meta, 'tokenizer.ggml.eos_token_id');
  const normKey = meta.get(`${p}.expert_weights_norm`)?.value;

  const raw: Record<string, unknown> = {
    architectures: [spec.hfClass],
    model_type: arch,
    vocab_size: vocab,
    hidden_size: hidden,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    hidden_act: 'silu',
    max_position_embeddings: opt('context_length') ?? 4096,
    rms_norm_eps: opt('attention.layer_norm_rms_epsilon') ?? 1e-6,
    rope_theta: opt('rope.freq_base') ?? 10000,
    rope_scaling: scaling && scaling !== 'none' ? { rope_type: scaling } : null,
    // llama.cpp's converter writes no output.weight when lm_head is tied to the embedding
    tie_word_embeddings: !has('output.weight'),
    [spec.attentionBiasField ?? 'attention_bias']: has('blk.0.attn_q.bias'),
    num_experts_per_tok: req('expert_used_count'),
    [spec.numExpertsField]: experts,
    [spec.expertFfnField]: expertFfn,
    bos_token_id: bos ?? null,
    eos_token_id: eos ?? null,
  };
  const clip = opt('attention.clamp_kqv');
  if (clip) raw.clip_qkv = clip;
  if (spec.normTopKField) raw[spec.normTopKField] = typeof normKey === 'boolean' ? normKey : LLAMA_CPP_NORM_TOPK[arch];
  if (spec.hasDenseLayers) {
    // llama.cpp itself makes every layer sparse; a moesaic export keeps dense layers as ffn_gate/up/down
    raw.decoder_sparse_step = 1;
    const dense = [...Array(layers).keys()].filter((l) => !has(`blk.${l}.ffn_gate_inp.weight`));
    raw.mlp_only_layers = dense;
    raw.intermediate_size = opt('feed_forward_length') ?? dimOf(`blk.${dense[0] ?? 0}.ffn_gate.weight`, 1) ?? expertFfn;
  }
  if (spec.hasSharedExpert) {
    raw.shared_expert_intermediate_size =
      opt('expert_shared_feed_forward_length') ?? dimOf(`blk.${firstMoe}.ffn_gate_shexp.weight`, 1) ?? 0;
  }
  return raw;
}

/** The export's type: float, or a quantized mix (quant-mix.ts). */
export type ExportType = 'f32' | 'bf16' | QuantMix;

const u32 = (value: number): MetaValue => ({ type: ValueType.U32, value });
const f32 = (value: number): MetaValue => ({ type: ValueType.F32, value: Math.fround(value) });
const str = (value: string): MetaValue => ({ type: ValueType.STRING, value });
const bool = (value: boolean): MetaValue => ({ type: ValueType.BOOL, value });

/**
 * The `general.*` and `<arch>.*` keys llama.cpp reads for the family (tokenizer keys are added by
 * tokenizer.ts). Keys llama.cpp does not know are ignored by it, so moesaic writes every hyperparameter
 * it needs to rebuild the config, e.g. expert_weights_norm.
 */
export function ggufModelMetadata(cfg: ModelConfig, name: string, type: ExportType): Metadata {
  const p = GGUF_ARCH[cfg.arch.name].name;
  const m: Metadata = new Map();
  m.set('general.architecture', str(p));
  m.set('general.name', str(name));
  m.set('general.file_type', u32(FILE_TYPE[type]));
  if (type !== 'f32' && type !== 'bf16') m.set('general.quantization_version', u32(2));
  m.set('general.alignment', u32(32));
  m.set(`${p}.vocab_size`, u32(cfg.vocabSize));
  m.set(`${p}.context_length`, u32(cfg.maxPositions));
  m.set(`${p}.embedding_length`, u32(cfg.hiddenSize));
  m.set(`${p}.block_count`, u32(cfg.numLayers));
  // llama.cpp's llama and olmoe graphs size the experts by feed_forward_length; Qwen's by expert_*
  const denseFirst = cfg.arch.hasDenseLayers;
  m.set(`${p}.feed_forward_length`, u32(denseFirst ? cfg.denseFfn : cfg.expertFfn));
  m.set(`${p}.expert_feed_forward_length`, u32(cfg.expertFfn));
  if (cfg.arch.hasSharedExpert) m.set(`${p}.expert_shared_feed_forward_length`, u32(cfg.sharedExpertFfn));
  m.set(`${p}.attention.head_count`, u32(cfg.numHeads));
  m.set(`${p}.attention.head_count_kv`, u32(cfg.numKvHeads));
  m.set(`${p}.attention.key_length`, u32(cfg.headDim));
  m.set(`${p}.attention.value_length`, u32(cfg.headDim));
  m.set(`${p}.attention.layer_norm_rms_epsilon`, f32(cfg.rmsEps));
  if (cfg.clipQkv) m.set(`${p}.attention.clamp_kqv`, f32(cfg.clipQkv));
  m.set(`${p}.rope.dimension_count`, u32(cfg.headDim));
  m.set(`${p}.rope.freq_base`, f32(cfg.ropeTheta));
  m.set(`${p}.expert_count`, u32(cfg.numExperts));
  m.set(`${p}.expert_used_count`, u32(cfg.topK));
  m.set(`${p}.expert_weights_norm`, bool(cfg.normTopK));
  return m;
}

/** Reasons llama.cpp will refuse or mis-run an export that moesaic itself reads back fine. */
export function llamaCppCaveats(cfg: ModelConfig): string[] {
  const out: string[] = [];
  if (cfg.sparse.some((s) => !s)) out.push('dense (non-MoE) layers: llama.cpp makes every layer of this family an MoE layer');
  if (cfg.normTopK !== LLAMA_CPP_NORM_TOPK[cfg.arch.name]) {
    out.push(`top-k renormalisation ${cfg.normTopK}: llama.cpp hard-wires ${LLAMA_CPP_NORM_TOPK[cfg.arch.name]} for ${cfg.arch.name}`);
  }
  if (cfg.arch.name === 'olmoe' && cfg.numKvHeads !== cfg.numHeads) {
    out.push('grouped-query attention: llama.cpp sizes OLMoE k_norm by the full embedding width');
  }
  return out;
}
