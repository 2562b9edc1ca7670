import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from '../errors.js';
import type { ArchSpec } from './architectures.js';
import { ARCHS, archByModelType } from './architectures.js';

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
  /** The raw JSON, for fields only some commands care about. */
  readonly raw: Readonly<Record<string, unknown>>;
}

export function readConfig(dir: string): ModelConfig {
  const path = join(dir, 'config.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    fail('E_BAD_CONFIG', `cannot read ${path}: is --model a Hugging Face checkpoint folder?`);
  }
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    fail('E_BAD_CONFIG', `${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('E_BAD_CONFIG', `${path} is not a JSON object`);
  return parseConfig(raw, path);
}

export function parseConfig(raw: Record<string, unknown>, source = 'config.json'): ModelConfig {
  const modelType = String(raw.model_type ?? '');
  const arch = archByModelType(modelType);
  if (!arch) {
    fail(
      'E_UNSUPPORTED_ARCH',
      `${source}: model_type '${modelType}' is not supported (supported: ${Object.keys(ARCHS).join(', ')})`,
    );
  }
  const int = (field: string, fallback?: number, min = 1): number => {
    const v = raw[field] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      fail('E_BAD_CONFIG', `${source}: field '${field}' must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const num = (field: string, fallback: number): number => {
    const v = raw[field] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      fail('E_BAD_CONFIG', `${source}: field '${field}' must be a positive number, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const bool = (field: string, fallback: boolean): boolean => {
    const v = raw[field] ?? fallback;
    if (typeof v !== 'boolean') fail('E_BAD_CONFIG', `${source}: field '${field}' must be true or false`);
    return v;
  };

  const act = raw.hidden_act ?? 'silu';
  if (act !== 'silu') fail('E_BAD_CONFIG', `${source}: hidden_act '${String(act)}' is not supported (only silu)`);
  const scaling = raw.rope_scaling as { type?: string; rope_type?: string } | null | undefined;
  const scalingType = scaling ? (scaling.rope_type ?? scaling.type) : undefined;
  if (scaling && scalingType !== 'default') {
    fail('E_BAD_CONFIG', `${source}: rope_scaling '${String(scalingType)}' is not supported yet`);
  }
  if (raw.use_sliding_window === true) {
    fail('E_BAD_CONFIG', `${source}: use_sliding_window=true is not supported for ${modelType}`);
  }

  const hiddenSize = int('hidden_size');
  const numLayers = int('num_hidden_layers');
  const numHeads = int('num_attention_heads');
  const numKvHeads = int('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    fail('E_BAD_CONFIG', `${source}: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  }
  const headDim = raw.head_dim == null ? hiddenSize / numHeads : int('head_dim');
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    fail('E_BAD_CONFIG', `${source}: head dimension ${headDim} must be an even integer`);
  }
  const numExperts = int(arch.numExpertsField);
  const topK = int('num_experts_per_tok');
  if (topK > numExperts) fail('E_BAD_CONFIG', `${source}: num_experts_per_tok ${topK} > ${arch.numExpertsField} ${numExperts}`);

  const sparse: boolean[] = [];
  const step = arch.hasDenseLayers ? int('decoder_sparse_step', 1) : 1;
  const mlpOnly = arch.hasDenseLayers ? ((raw.mlp_only_layers as number[] | undefined) ?? []) : [];
  if (!Array.isArray(mlpOnly)) fail('E_BAD_CONFIG', `${source}: mlp_only_layers must be a list`);
  for (let i = 0; i < numLayers; i++) sparse.push(!mlpOnly.includes(i) && (i + 1) % step === 0);

  const vocabSize = int('vocab_size');
  const eos = raw.eos_token_id;
  const eosTokenIds = eos == null ? [] : Array.isArray(eos) ? (eos as number[]) : [eos as number];
  for (const id of eosTokenIds) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) fail('E_BAD_CONFIG', `${source}: eos_token_id ${JSON.stringify(id)} is outside the vocabulary [0, ${vocabSize})`);
  }
  const window = raw.sliding_window;

  return {
    arch,
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    vocabSize,
    maxPositions: int('max_position_embeddings', 4096),
    rmsEps: num('rms_norm_eps', 1e-6),
    ropeTheta: num('rope_theta', 10000),
    tieEmbeddings: bool('tie_word_embeddings', false),
    slidingWindow: typeof window === 'number' && window > 0 ? window : 0,
    attentionBias: arch.name === 'qwen2_moe' ? true : bool('attention_bias', arch.defaultAttentionBias),
    clipQkv: typeof raw.clip_qkv === 'number' ? raw.clip_qkv : 0,
    numExperts,
    topK,
    expertFfn: int(arch.expertFfnField),
    normTopK: arch.normTopKField ? bool(arch.normTopKField, arch.defaultNormTopK) : arch.defaultNormTopK,
    denseFfn: arch.hasDenseLayers ? int('intermediate_size') : 0,
    sharedExpertFfn: arch.hasSharedExpert ? int('shared_expert_intermediate_size', 0, 0) : 0,
    sparse,
    bosTokenId: typeof raw.bos_token_id === 'number' ? raw.bos_token_id : null,
    eosTokenIds,
    raw,
  };
}
