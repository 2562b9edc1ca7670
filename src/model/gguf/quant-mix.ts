import type { QuantType } from '../../tensor/quant/formats.js';
import { QUANT_FORMATS } from '../../tensor/quant/formats.js';
import type { ModelConfig } from '../config.js';
import { GgmlType } from './format.js';

/**
 * Which type each tensor of a quantized export gets: llama.cpp's rules (llama-quant.cpp,
 * llama_tensor_get_type) for the mixes moesaic writes, so a moesaic Q4_K_M file has the tensor types a
 * llama-quantize Q4_K_M file has:
 *
 * - `output.weight` (or `token_embd.weight` when the head is tied): Q6_K, or Q8_0 in a Q8_0 file.
 * - `_M` mixes (Q4_K_M, Q5_K_M): `attn_v` and every `ffn_down*` (experts and shared expert) of the
 *   layers where use_more_bits holds (the first and last eighth of the layers and every third layer
 *   between) get Q6_K.
 * - models with exactly 8 experts (Mixtral): `attn_v` and `attn_k` get Q8_0; in Q4_K_M `attn_output`
 *   gets Q5_K.
 * - everything else with 2+ dimensions gets the base type (Q4_K, Q5_K, Q6_K, Q8_0, Q4_0); norms, biases
 *   and the router (`ffn_gate_inp`) stay F32.
 * - a row length that is not a multiple of the type's block: llama.cpp falls back to Q5_0 / Q5_1 for
 *   Q4_K / Q5_K, which moesaic does not write; it uses Q8_0 instead (Q6_K -> Q8_0 as llama.cpp), or F32
 *   when even 32 does not divide the row.
 */
export type QuantMix = 'q4_0' | 'q8_0' | 'q4_k_m' | 'q5_k_m' | 'q6_k';

export const QUANT_MIXES: readonly QuantMix[] = ['q4_k_m', 'q5_k_m', 'q6_k', 'q8_0', 'q4_0'];

const BASE: Record<QuantMix, QuantType> = { q4_0: 'q4_0', q8_0: 'q8_0', q4_k_m: 'q4_k', q5_k_m: 'q5_k', q6_k: 'q6_k' };

/** llama.cpp's use_more_bits: the first and last eighth of the layers, and every third one between. */
export function useMoreBits(layer: number, layers: number): boolean {
  return layer < Math.floor(layers / 8) || layer >= Math.floor((7 * layers) / 8) || (layer - Math.floor(layers / 8)) % 3 === 2;
}

/** The quant type of GGUF tensor `name` (row length `cols`) in `mix`; null = keep it F32. */
export function mixType(mix: QuantMix, name: string, cols: number, cfg: ModelConfig): QuantType | null {
  let t = BASE[mix];
  const layer = /^blk\.(\d+)\./.exec(name);
  const i = layer ? Number(layer[1]) : -1;
  const isM = mix === 'q4_k_m' || mix === 'q5_k_m';
  const eight = cfg.numExperts === 8;
  if (name === 'output.weight' || (name === 'token_embd.weight' && cfg.tieEmbeddings)) {
    t = cols % 256 !== 0 || t === 'q8_0' ? 'q8_0' : 'q6_k';
  } else if (name.includes('attn_v.weight')) {
    if (isM && useMoreBits(i, cfg.numLayers)) t = 'q6_k';
    if (eight) t = 'q8_0';
  } else if (name.includes('attn_k.weight')) {
    if (eight) t = 'q8_0';
  } else if (name.includes('ffn_down')) {
    if (isM && useMoreBits(i, cfg.numLayers)) t = 'q6_k';
  } else if (name.includes('attn_output.weight')) {
    if (eight && mix === 'q4_k_m') t = 'q5_k';
  }
  if (cols % QUANT_FORMATS[t].block !== 0) t = 'q8_0';
  if (cols % QUANT_FORMATS[t].block !== 0) return null;
  return t;
}

export function ggmlOf(t: QuantType | null): number {
  return t ? QUANT_FORMATS[t].ggml : GgmlType.F32;
}
