import { fail } from '../../errors.js';
import { isQuantType, quantRowBytes } from '../../tensor/quant/formats.js';
import { quantizeRows } from '../../tensor/quant/quantize.js';
import type { Weight } from '../../tensor/weight.js';
import { toF32 } from '../../tensor/weight.js';
import type { ModelConfig } from '../config.js';
import { TensorStore } from '../weight-store.js';
import { fillName, NAME_RULES } from './names.js';
import type { QuantMix } from './quant-mix.js';
import { mixType } from './quant-mix.js';

/**
 * `--quantize TYPE`: a checkpoint's matrices quantized in memory with the same per-tensor types an
 * `export-gguf --type TYPE` file would have (quant-mix.ts), so a bf16/f32 Hugging Face folder runs on the
 * quantized kernels without writing a file. Norms, biases and routers stay as they are. Each matrix is
 * widened to f32 one at a time, so the peak extra memory is one matrix plus the quantized blocks.
 */
export function quantizeStore(cfg: ModelConfig, store: TensorStore, mix: QuantMix): TensorStore {
  const out = new Map<string, Weight>();
  for (const name of store.names) out.set(name, store.get(name));
  for (const rule of NAME_RULES) {
    if (rule.f32 || rule.row) continue;
    const layers = rule.gguf.startsWith('blk.') ? cfg.numLayers : 1;
    for (let l = 0; l < layers; l++) {
      const layer = rule.gguf.startsWith('blk.') ? l : -1;
      const gguf = fillName(rule.gguf, layer);
      for (let e = 0; e < (rule.experts ? cfg.numExperts : 1); e++) {
        const name = fillName(rule.hf(cfg.arch), layer, e);
        const w = store.optional(name);
        if (!w || w.shape.length !== 2) continue;
        const [rows, cols] = w.shape as [number, number];
        const type = mixType(mix, gguf, cols, cfg);
        if (!type || type === w.dtype) continue;
        // like llama-quantize without --allow-requantize: quantizing quantized blocks again adds a second
        // rounding error (and Q4 -> Q8 only doubles the bytes), so the user is sent to the source weights
        if (isQuantType(w.dtype)) fail('E_BAD_OPTION', `--quantize ${mix}: ${store.source} is already quantized (tensor '${name}' is ${w.dtype}, the mix wants ${type}); quantize the bf16/f32 checkpoint instead`);
        const blocks = new Uint8Array(rows * quantRowBytes(type, cols));
        quantizeRows(type, toF32(w), rows, cols, blocks);
        out.set(name, { name, dtype: type, shape: w.shape, data: blocks });
      }
    }
  }
  return new TensorStore(`${store.source} (quantized to ${mix} in memory)`, out);
}
