import { fail } from '../../errors.js';
import type { DType } from '../../tensor/dtype.js';
import type { Weight } from '../../tensor/weight.js';
import type { ModelConfig } from '../config.js';
import { GgmlType, ggmlTypeName } from './format.js';
import { fillName, GGUF_ARCH, permuteHeads, resolveGgufName } from './names.js';
import { dequantizeQ8_0ToBf16 } from './q8_0.js';
import type { GgufFile, GgufTensorInfo } from './reader.js';

type Data = Float32Array | Uint16Array;

/**
 * The tensors of a GGUF under their Hugging Face names and shapes. F32 / F16 / BF16 data are typed
 * views into the mapped file (zero-copy, copied only if the file misaligns them); merged expert tensors
 * are split into per-expert subarray views of the same memory. Copies are made only where the bytes
 * must change: Q8_0 tensors are dequantised to bf16 at load, and for the `llama` architecture the q/k
 * rows are un-permuted (attention projections are a small part of an MoE model).
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
      const n = rows * cols;
      for (let e = 0; e < E; e++) {
        const name = fillName(hf, layer, e);
        out.set(name, { name, dtype, shape: [rows, cols], data: data.subarray(e * n, (e + 1) * n) });
      }
      continue;
    }
    if (permute && rule.permute) {
      const nHead = rule.permute === 'q' ? cfg.numHeads : cfg.numKvHeads;
      const cols = shape.length === 2 ? shape[1]! : 1;
      if ((data.length / cols) % (2 * nHead) !== 0) {
        fail('E_BAD_CHECKPOINT', `${file.path}: tensor '${info.name}' has ${data.length / cols} rows, not a whole number of ${nHead} heads`);
      }
      data = permuteHeads(data, cols, nHead, 'toHf');
    }
    const name = fillName(hf, layer, Math.max(expert, 0));
    const hfShape = rule.row ? [1, data.length] : shape;
    out.set(name, { name, dtype, shape: hfShape, data });
  }
  return out;
}

/** The tensor's elements as a typed array: a view for float types, bf16 bits for Q8_0. */
function decode(file: GgufFile, buf: ArrayBuffer, info: GgufTensorInfo): { dtype: DType; data: Data } {
  const n = info.ne.reduce((a, b) => a * b, 1);
  switch (info.type) {
    case GgmlType.F32:
      return { dtype: 'f32', data: view(buf, info.offset, n, 4) as Float32Array };
    case GgmlType.F16:
      return { dtype: 'f16', data: view(buf, info.offset, n, 2) as Uint16Array };
    case GgmlType.BF16:
      return { dtype: 'bf16', data: view(buf, info.offset, n, 2) as Uint16Array };
    case GgmlType.Q8_0: {
      const out = new Uint16Array(n);
      dequantizeQ8_0ToBf16(new Uint8Array(buf, info.offset, info.bytes), out);
      return { dtype: 'bf16', data: out };
    }
    default:
      fail(
        'E_BAD_CHECKPOINT',
        `${file.path}: tensor '${info.name}' has type ${ggmlTypeName(info.type)}; moesaic reads F32, F16, BF16 and Q8_0 GGUF tensors (re-quantise to Q8_0 or convert to F16/BF16)`,
      );
  }
}

function view(buf: ArrayBuffer, offset: number, n: number, elem: 2 | 4): Data {
  const src = offset % elem === 0 ? buf : buf.slice(offset, offset + n * elem);
  const at = offset % elem === 0 ? offset : 0;
  return elem === 4 ? new Float32Array(src, at, n) : new Uint16Array(src, at, n);
}
