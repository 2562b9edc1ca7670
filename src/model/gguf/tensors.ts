import { fail } from '../../errors.js';
import type { DType } from '../../tensor/dtype.js';
import type { Weight } from '../../tensor/weight.js';
import type { ModelConfig } from '../config.js';
import { GgmlType, ggmlTypeName } from './format.js';
import { fillName, GGUF_ARCH, permuteHeads, resolveGgufName } from './names.js';
import { quantRowBytes, quantTypeOfGgml } from '../../tensor/quant/formats.js';
import type { GgufFile, GgufTensorInfo } from './reader.js';

type Data = Float32Array | Uint16Array | Uint8Array;

/**
 * The tensors of a GGUF under their Hugging Face names and shapes. F32 / F16 / BF16 data are typed
 * views into the mapped file (zero-copy, copied only if the file misaligns them); quantized tensors
 * (Q4_0, Q8_0, Q4_K, Q5_K, Q6_K) are Uint8Array views of their blocks, never dequantized; merged expert
 * tensors are split into per-expert subarray views of the same memory, so an expert is a contiguous
 * byte range of the file. The only copies: for the `llama` architecture the q/k rows are un-permuted
 * (whole rows move, so blocks stay intact; attention projections are a small part of an MoE model).
 */
export function ggufWeights(file: GgufFile, buf: ArrayBuffer, cfg: ModelConfig): Map<string, Weight> {
  const out = new Map<string, Weight>();
  const permute = GGUF_ARCH[cfg.arch.name].permuteQk;
  for (const info of file.tensors.values()) {
    const resolved = resolveGgufName(info.name);
    if (!resolved) continue; // tensors moesaic does not use (e.g. rope_freqs) are left unread
    const { rule, layer, expert } = resolved;
    let { dtype, data } = decode(file, buf, info);
    // HF shape: ggml's ne reversed
    const shape = [...info.ne].reverse();
    const hf = rule.hf(cfg.arch);
    if (rule.experts) {
      // ne = [cols, rows, experts]: expert e is the contiguous block e of rows*cols elements
      const [E, rows, cols] = shape as [number, number, number];
      if (shape.length !== 3) fail('E_BAD_CHECKPOINT', `${file.path}: tensor '${info.name}' has ${shape.length} dimensions, expected 3 (cols, rows, experts)`);
      const n = data.length / E; // elements, or bytes of blocks for a quantized type
      for (let e = 0; e < E; e++) {
        const name = fillName(hf, layer, e);
        out.set(name, { name, dtype, shape: [rows, cols], data: data.subarray(e * n, (e + 1) * n) });
      }
      continue;
    }
    if (permute && rule.permute) {
      const nHead = rule.permute === 'q' ? cfg.numHeads : cfg.numKvHeads;
      const cols = shape.length === 2 ? shape[1]! : 1;
      // a row's elements, or a quantized row's bytes: rows move whole
      const rowLen = data instanceof Uint8Array ? data.length / (shape.length === 2 ? shape[0]! : 1) : cols;
      if ((data.length / rowLen) % (2 * nHead) !== 0) {
        fail('E_BAD_CHECKPOINT', `${file.path}: tensor '${info.name}' has ${data.length / rowLen} rows, not a whole number of ${nHead} heads`);
      }
      data = permuteHeads(data, rowLen, nHead, 'toHf');
    }
    const name = fillName(hf, layer, Math.max(expert, 0));
    const hfShape = rule.row ? [1, info.ne.reduce((a, b) => a * b, 1)] : shape;
    out.set(name, { name, dtype, shape: hfShape, data });
  }
  return out;
}

/** The tensor's data as a view: elements for float types, the blocks' bytes for a quantized type. */
function decode(file: GgufFile, buf: ArrayBuffer, info: GgufTensorInfo): { dtype: DType; data: Data } {
  const n = info.ne.reduce((a, b) => a * b, 1);
  switch (info.type) {
    case GgmlType.F32:
      return { dtype: 'f32', data: view(buf, info.offset, n, 4) as Float32Array };
    case GgmlType.F16:
      return { dtype: 'f16', data: view(buf, info.offset, n, 2) as Uint16Array };
    case GgmlType.BF16:
      return { dtype: 'bf16', data: view(buf, info.offset, n, 2) as Uint16Array };
    default: {
      const quant = quantTypeOfGgml(info.type);
      if (!quant) {
        fail(
          'E_BAD_CHECKPOINT',
          `${file.path}: tensor '${info.name}' has type ${ggmlTypeName(info.type)}; moesaic reads F32, F16, BF16, Q4_0, Q8_0, Q4_K, Q5_K and Q6_K GGUF tensors (files quantized as Q4_0, Q8_0, Q4_K_S/M, Q5_K_S/M or Q6_K)`,
        );
      }
      const bytes = (n / info.ne[0]!) * quantRowBytes(quant, info.ne[0]!);
      return { dtype: quant, data: new Uint8Array(buf, info.offset, bytes) };
    }
  }
}

function view(buf: ArrayBuffer, offset: number, n: number, elem: 2 | 4): Data {
  const src = offset % elem === 0 ? buf : buf.slice(offset, offset + n * elem);
  const at = offset % elem === 0 ? offset : 0;
  return elem === 4 ? new Float32Array(src, at, n) : new Uint16Array(src, at, n);
}
