import { join } from 'node:path';
import { fail, showValue } from '../errors.js';
import type { RouterSettings } from '../moe/router-settings.js';
import type { ArchSpec } from './architectures.js';
import { ARCHS, archByModelType } from './architectures.js';
import { readRegularJson } from './checkpoint-files.js';
import { ConfigFields } from './config-fields.js';

/** A Hugging Face config.json reduced to what the engine needs, every field validated. */
export interface ModelConfig {
  readonly arch: ArchSpec;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly vocabSize: number;
  readonly maxPositions: number;
  readonly rmsEps: number;
  readonly ropeTheta: number;
  readonly tieEmbeddings: boolean;
  /** 0 = full causal attention. */
  readonly slidingWindow: number;
  readonly attentionBias: boolean;
  /** 0 = no clipping (OLMoE's clip_qkv). */
  readonly clipQkv: number;
  readonly numExperts: number;
  readonly topK: number;
  readonly expertFfn: number;
  readonly normTopK: boolean;
  readonly denseFfn: number;
  readonly sharedExpertFfn: number;
  /** sparse[i]: layer i is an MoE layer (else a dense SwiGLU MLP). */
  readonly sparse: readonly boolean[];
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  /** The routing function's settings (scoring, groups, X-MoE space), read from config.json once. */
  readonly routing: RouterSettings;
  /** The raw JSON, for fields only some commands care about. */
  readonly raw: Readonly<Record<string, unknown>>;
}

export function readConfig(dir: string): ModelConfig {
  const path = join(dir, 'config.json');
  const raw = readRegularJson(path, 'E_BAD_CONFIG', 'is --model a Hugging Face checkpoint folder?');
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('E_BAD_CONFIG', `${path} is not a JSON object`);
  return parseConfig(raw as Record<string, unknown>, path);
}

/**
 * Reads config.json as transformers does: a field that is absent takes the default of the family's
 * config class (ArchSpec.defaults), and both spellings transformers may write are read:
 * `num_experts` / `num_local_experts` (attribute_map aliases), RoPE in `rope_parameters`
 * (transformers 5) or `rope_theta` (4.x), `head_dim: null` = hidden_size / num_attention_heads.
 * `dtype` / `torch_dtype` are not needed: each tensor's dtype comes from its file.
 */
export function parseConfig(raw: Record<string, unknown>, source = 'config.json'): ModelConfig {
  const modelType = String(raw.model_type ?? '');
  const arch = archByModelType(modelType);
  if (!arch) {
    fail(
      'E_UNSUPPORTED_ARCH',
      `${source}: model_type '${modelType}' is not supported (supported: ${Object.keys(ARCHS).join(', ')})`,
    );
  }
  const f = new ConfigFields(raw, source);
  const d = arch.defaults;

  const act = f.get('hidden_act') ?? 'silu';
  if (act !== 'silu') fail('E_BAD_CONFIG', `${source}: hidden_act '${String(act)}' is not supported (only silu)`);
  const ropeTheta = readRope(f, d.ropeTheta);

  const hiddenSize = f.int('hidden_size', d.hiddenSize);
  const numLayers = f.int('num_hidden_layers', d.numLayers);
  const numHeads = f.int('num_attention_heads', d.numHeads);
  const numKvHeads = f.int('num_key_value_heads', d.numKvHeads ?? numHeads);
  if (numHeads % numKvHeads !== 0) {
    const defaulted = f.get('num_key_value_heads') === undefined ? ` (${arch.hfClass.replace('ForCausalLM', 'Config')}'s default: config.json does not set it)` : '';
    fail('E_BAD_CONFIG', `${source}: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}${defaulted}`);
  }
  const headDim = f.get('head_dim') === undefined ? hiddenSize / numHeads : f.int('head_dim');
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    fail('E_BAD_CONFIG', `${source}: head dimension ${headDim} must be an even integer`);
  }
  const numExperts = f.int(EXPERT_COUNT_NAMES, d.numExperts);
  const topK = f.int('num_experts_per_tok', d.topK);
  if (topK > numExperts) fail('E_BAD_CONFIG', `${source}: num_experts_per_tok ${topK} > ${arch.numExpertsField} ${numExperts}`);

  const sparse: boolean[] = [];
  const step = arch.hasDenseLayers ? f.int('decoder_sparse_step', 1) : 1;
  const mlpOnly = arch.hasDenseLayers ? (f.get('mlp_only_layers') ?? []) : [];
  if (!Array.isArray(mlpOnly)) fail('E_BAD_CONFIG', `${source}: mlp_only_layers must be a list`);
  for (let i = 0; i < numLayers; i++) sparse.push(!mlpOnly.includes(i) && (i + 1) % step === 0);

  const vocabSize = f.int('vocab_size', d.vocabSize);
  const normTopK = arch.normTopKField ? f.bool(arch.normTopKField, arch.defaultNormTopK) : arch.defaultNormTopK;
  const clip = f.get('clip_qkv');
  if (clip !== undefined && (typeof clip !== 'number' || !(clip > 0) || !Number.isFinite(clip))) {
    fail('E_BAD_CONFIG', `${source}: field 'clip_qkv' must be a positive number or null, got ${showValue(clip)}`);
  }

  return {
    arch,
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    vocabSize,
    maxPositions: f.int('max_position_embeddings', d.maxPositions),
    rmsEps: f.positive('rms_norm_eps', d.rmsEps),
    ropeTheta,
    tieEmbeddings: f.bool('tie_word_embeddings', false),
    slidingWindow: slidingWindow(f, arch, numLayers),
    attentionBias: arch.attentionBiasField ? f.bool(arch.attentionBiasField, arch.defaultAttentionBias) : arch.defaultAttentionBias,
    clipQkv: arch.clipQkv && typeof clip === 'number' ? clip : 0,
    numExperts,
    topK,
    expertFfn: f.int(arch.expertFfnField, arch.expertFfnField === 'intermediate_size' ? d.intermediateSize : d.moeIntermediateSize),
    normTopK,
    denseFfn: arch.hasDenseLayers ? f.int('intermediate_size', d.intermediateSize) : 0,
    sharedExpertFfn: arch.hasSharedExpert ? f.int('shared_expert_intermediate_size', d.sharedExpertFfn, 0) : 0,
    sparse,
    ...specialTokens(f, d.bosTokenId, d.eosTokenId, vocabSize),
    routing: routerSettings(f, normTopK),
    raw,
  };
}

/** The two spellings of the expert count (transformers' attribute_map makes them aliases). */
const EXPERT_COUNT_NAMES = ['num_experts', 'num_local_experts'] as const;

/**
 * RoPE base frequency: transformers 5 writes `rope_parameters: {rope_theta, rope_type}`, 4.x writes
 * `rope_theta` (and `rope_scaling`); the former wins, as in transformers 5. Only plain RoPE is
 * implemented, so any other rope_type is refused.
 */
function readRope(f: ConfigFields, fallback: number): number {
  for (const name of ['rope_parameters', 'rope_scaling']) {
    const p = f.object(name);
    const type = p ? (p.rope_type ?? p.type) : undefined;
    if (p && type !== undefined && type !== 'default') fail('E_BAD_CONFIG', `${f.source}: ${name} rope_type '${String(type)}' is not supported yet`);
    if (name === 'rope_scaling' && p && type === undefined) fail('E_BAD_CONFIG', `${f.source}: rope_scaling without a rope_type is not supported`);
  }
  const params = new ConfigFields(f.object('rope_parameters') ?? {}, `${f.source} rope_parameters`);
  return params.get('rope_theta') !== undefined ? params.positive('rope_theta', fallback) : f.positive('rope_theta', fallback);
}

/** Tokens a query may see (0 = all), by the family's rule for `sliding_window` (ArchSpec.slidingWindow). */
function slidingWindow(f: ConfigFields, arch: ArchSpec, layers: number): number {
  const enabled = f.bool('use_sliding_window', false);
  const types = f.get('layer_types');
  if (types !== undefined && (!Array.isArray(types) || types.length !== layers)) {
    fail('E_BAD_CONFIG', `${f.source}: layer_types must be a list of ${layers} entries`);
  }
  const slidingLayers = Array.isArray(types) && types.includes('sliding_attention');
  if (arch.slidingWindow === 'never') return 0;
  if (arch.slidingWindow === 'when-enabled' && (enabled || slidingLayers)) {
    fail('E_BAD_CONFIG', `${f.source}: sliding-window attention on some layers (use_sliding_window / layer_types) is not supported for ${arch.name}`);
  }
  if (arch.slidingWindow === 'when-enabled') return 0;
  const w = f.get('sliding_window');
  if (w === undefined) return 0;
  if (typeof w !== 'number' || !Number.isInteger(w) || w < 0) fail('E_BAD_CONFIG', `${f.source}: field 'sliding_window' must be an integer >= 0 or null, got ${showValue(w)}`);
  return w;
}

/**
 * bos/eos ids. An explicit id must be inside the vocabulary; a class default (Mixtral's 1 / 2,
 * OLMoE's eos 50279) applies only where it is, since a model with a smaller vocabulary can never
 * produce it. An explicit null means none.
 */
function specialTokens(f: ConfigFields, bosDefault: number | null, eosDefault: number | null, vocab: number) {
  const given = (name: string) => name in f.raw;
  const inVocab = (id: number) => Number.isInteger(id) && id >= 0 && id < vocab;
  const bos = given('bos_token_id') ? f.raw.bos_token_id : bosDefault;
  const eos = given('eos_token_id') ? f.raw.eos_token_id : eosDefault;
  const eosTokenIds = eos == null ? [] : Array.isArray(eos) ? (eos as number[]) : [eos as number];
  if (given('eos_token_id')) {
    for (const id of eosTokenIds) {
      if (!inVocab(id)) fail('E_BAD_CONFIG', `${f.source}: eos_token_id ${JSON.stringify(id)} is outside the vocabulary [0, ${vocab})`);
    }
  }
  return {
    bosTokenId: typeof bos === 'number' && inVocab(bos) ? bos : null,
    eosTokenIds: eosTokenIds.filter(inVocab),
  };
}

/** Routing settings beyond the family's softmax top-k (DeepSeek-V3 sigmoid groups, X-MoE cosine space). */
function routerSettings(f: ConfigFields, normTopK: boolean): RouterSettings {
  const scoring = f.get('scoring_func') ?? 'softmax';
  if (scoring !== 'softmax' && scoring !== 'sigmoid') fail('E_BAD_CONFIG', `${f.source}: scoring_func '${String(scoring)}' is not supported (softmax or sigmoid)`);
  return {
    scoring,
    normTopK,
    sigmoid: {
      groups: f.int('n_group', 1),
      topGroups: f.int('topk_group', 1),
      normalize: f.bool('norm_topk_prob', true),
      scale: f.positive('routed_scaling_factor', 1),
    },
    xmoe: {
      rank: f.int('xmoe_rank', 16),
      temperature: f.positive('xmoe_temperature', 0.07),
      seed: f.int('xmoe_seed', 0, 0),
    },
  };
}
