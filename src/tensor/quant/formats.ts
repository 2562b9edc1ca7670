/**
 * ggml's block-quantized weight formats that moesaic reads, runs and writes (llama.cpp's GGUF types).
 * A quantized row of K weights is K / block blocks stored back to back; a tensor is its rows back to back,
 * so a row, an expert or a whole tensor is a plain byte range (file offset, byte length) that can be
 * copied, cached or sent between ranks as it is.
 *
 * - Q8_0: 32 weights, f16 scale d + 32 int8 q; w = d·q.
 * - Q4_0: 32 weights, f16 d + 16 bytes of nibbles (low nibbles weights 0-15, high nibbles 16-31); w = d·(q - 8).
 * - Q4_K: 256-weight super-block, f16 d and dmin, 12 bytes packing eight 6-bit scales and mins, 128 bytes
 *   of nibbles; sub-block j of 32: w = d·sc_j·q - dmin·m_j.
 * - Q5_K: as Q4_K plus 32 bytes of fifth bits (qh).
 * - Q6_K: 256-weight super-block, 128 bytes low nibbles (ql), 64 bytes of high 2-bit pairs (qh), sixteen
 *   int8 scales (one per 16 weights), f16 d; w = d·sc·(q - 32).
 */
export type QuantType = 'q4_0' | 'q8_0' | 'q4_k' | 'q5_k' | 'q6_k';

export const QUANT_TYPES: readonly QuantType[] = ['q4_0', 'q8_0', 'q4_k', 'q5_k', 'q6_k'];

export interface QuantFormat {
  /** weights per block */
  readonly block: number;
  /** bytes per block */
  readonly bytes: number;
  /** ggml_type id in GGUF files */
  readonly ggml: number;
  /** ggml's name, as llama.cpp prints it */
  readonly ggmlName: string;
}

export const QUANT_FORMATS: Readonly<Record<QuantType, QuantFormat>> = {
  q4_0: { block: 32, bytes: 18, ggml: 2, ggmlName: 'Q4_0' },
  q8_0: { block: 32, bytes: 34, ggml: 8, ggmlName: 'Q8_0' },
  q4_k: { block: 256, bytes: 144, ggml: 12, ggmlName: 'Q4_K' },
  q5_k: { block: 256, bytes: 176, ggml: 13, ggmlName: 'Q5_K' },
  q6_k: { block: 256, bytes: 210, ggml: 14, ggmlName: 'Q6_K' },
};

export function isQuantType(t: string): t is QuantType {
  return (QUANT_TYPES as readonly string[]).includes(t);
}

/** The quant type stored under a ggml_type id, or undefined for any other id. */
export function quantTypeOfGgml(ggml: number): QuantType | undefined {
  return QUANT_TYPES.find((t) => QUANT_FORMATS[t].ggml === ggml);
}

/** Bytes of one row of k weights (k must be a multiple of the block size). */
export function quantRowBytes(type: QuantType, k: number): number {
  const f = QUANT_FORMATS[type];
  return (k / f.block) * f.bytes;
}
