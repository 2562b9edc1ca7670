import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fail } from '../../errors.js';
import { f32ToBf16 } from '../../tensor/dtype.js';
import type { Weight } from '../../tensor/weight.js';
import { toF32 } from '../../tensor/weight.js';
import { openCheckpoint } from '../checkpoint.js';
import type { ModelConfig } from '../config.js';
import type { TensorStore } from '../weight-store.js';
import type { Metadata } from './format.js';
import { GgmlType, ValueType } from './format.js';
import type { ExportType } from './metadata.js';
import { ggufModelMetadata, llamaCppCaveats } from './metadata.js';
import type { NameRule } from './names.js';
import { fillName, GGUF_ARCH, NAME_RULES, permuteHeads } from './names.js';
import { quantizeRows } from '../../tensor/quant/quantize.js';
import { quantRowBytes, quantTypeOfGgml } from '../../tensor/quant/formats.js';
import { numel } from '../../tensor/weight.js';
import { ggmlOf, mixType, QUANT_MIXES } from './quant-mix.js';
import { parseGguf } from './reader.js';
import { ggufTokenizerMetadata } from './tokenizer.js';
import type { GgufTensorOut } from './writer.js';
import { writeGguf } from './writer.js';

export const EXPORT_TYPES: readonly ExportType[] = ['f32', 'bf16', ...QUANT_MIXES];

export interface ExportOptions {
  /** a Hugging Face folder (or a GGUF file: its tokenizer keys are copied) */
  readonly model: string;
  readonly out: string;
  /** big matrices' type; default: bf16 when the checkpoint's embedding is bf16/f16, else f32 */
  readonly type?: ExportType;
  readonly mapFile: (path: string) => ArrayBuffer;
  /** after each tensor written (the CLI prints progress: a bench-size export takes many seconds) */
  readonly onProgress?: (done: number, total: number) => void;
}

export interface ExportReport {
  readonly path: string;
  readonly type: ExportType;
  readonly tensors: number;
  readonly arch: string;
  /** why llama.cpp may refuse or mis-run this file (moesaic reads it back regardless) */
  readonly warnings: readonly string[];
}

/**
 * Write a checkpoint as a GGUF llama.cpp loads: its metadata keys, its tensor names, experts merged
 * into 3-D tensors, q/k rows permuted for the `llama` architecture, norms, biases and routers in f32,
 * the big matrices in f32, bf16, or a quantized mix with llama.cpp's per-tensor types (quant-mix.ts).
 */
export function exportGguf(o: ExportOptions): ExportReport {
  const ckpt = openCheckpoint(o.model, o.mapFile);
  const cfg = ckpt.config;
  const type = o.type ?? (ckpt.tensors.get('model.embed_tokens.weight').dtype === 'f32' ? 'f32' : 'bf16');
  if (!EXPORT_TYPES.includes(type)) fail('E_BAD_OPTION', `export type must be one of ${EXPORT_TYPES.join('|')}, got '${type}'`);
  const name = typeof cfg.raw._name_or_path === 'string' && cfg.raw._name_or_path ? cfg.raw._name_or_path : basename(o.model).replace(/\.gguf$/i, '');
  const metadata = ggufModelMetadata(cfg, name, type);
  for (const [k, v] of tokenizerMetadata(o.model, cfg, o.mapFile)) metadata.set(k, v);
  const tensors = planTensors(cfg, ckpt.tensors, type);
  writeGguf(o.out, metadata, tensors, undefined, o.onProgress);
  return { path: o.out, type, tensors: tensors.length, arch: GGUF_ARCH[cfg.arch.name].name, warnings: llamaCppCaveats(cfg) };
}

function tokenizerMetadata(model: string, cfg: ModelConfig, mapFile: (path: string) => ArrayBuffer): Metadata {
  if (!statSync(model).isDirectory()) {
    // a GGUF source: its tokenizer keys are already in llama.cpp's form
    const file = parseGguf(mapFile(model), model);
    return new Map([...file.metadata].filter(([k]) => k.startsWith('tokenizer.')));
  }
  const path = join(model, 'tokenizer.json');
  if (!existsSync(path)) {
    // llama.cpp's "no vocabulary" model: token ids only, as moesaic does without tokenizer.json
    return new Map([['tokenizer.ggml.model', { type: ValueType.STRING, value: 'no_vocab' }]]);
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    fail('E_BAD_CHECKPOINT', `${path}: not valid JSON (${(e as Error).message})`);
  }
  return ggufTokenizerMetadata(json, cfg, path);
}

/** Every tensor of the checkpoint in llama.cpp's layout, in llama.cpp's order (embedding, layers, head). */
function planTensors(cfg: ModelConfig, store: TensorStore, type: ExportType): GgufTensorOut[] {
  const out: GgufTensorOut[] = [];
  const global = NAME_RULES.filter((r) => !r.gguf.startsWith('blk.'));
  const perLayer = NAME_RULES.filter((r) => r.gguf.startsWith('blk.'));
  const add = (rule: NameRule, layer: number) => {
    const hf = rule.hf(cfg.arch);
    if (rule.experts) {
      const experts: Weight[] = [];
      for (let e = 0; e < cfg.numExperts; e++) {
        const w = store.optional(fillName(hf, layer, e));
        if (w) experts.push(w);
      }
      if (experts.length === 0) return;
      if (experts.length !== cfg.numExperts) fail('E_MISSING_TENSOR', `layer ${layer}: only ${experts.length} of ${cfg.numExperts} experts of ${hf} found in ${store.source}`);
      const [rows, cols] = experts[0]!.shape as [number, number];
      out.push(tensorOut(fillName(rule.gguf, layer), [cols, rows, cfg.numExperts], experts, rule, cfg, type));
      return;
    }
    const name = fillName(hf, layer);
    if (name === 'lm_head.weight' && cfg.tieEmbeddings) return; // llama.cpp reuses token_embd when output is absent
    const w = store.optional(name);
    if (!w) return;
    const ne = rule.row ? [numel(w.shape)] : [...w.shape].reverse();
    out.push(tensorOut(fillName(rule.gguf, layer), ne, [w], rule, cfg, type));
  };
  add(global.find((r) => r.gguf === 'token_embd.weight')!, -1);
  for (let l = 0; l < cfg.numLayers; l++) for (const r of perLayer) add(r, l);
  for (const r of global) if (r.gguf !== 'token_embd.weight') add(r, -1);
  return out;
}

/** A tensor whose bytes are `parts` (one weight, or each expert in turn) converted to the chosen type. */
function tensorOut(name: string, ne: number[], parts: Weight[], rule: NameRule, cfg: ModelConfig, type: ExportType): GgufTensorOut {
  let ggml: number;
  if (rule.f32 || ne.length === 1 || type === 'f32') ggml = GgmlType.F32;
  else if (type === 'bf16') ggml = GgmlType.BF16;
  else ggml = ggmlOf(mixType(type, name, ne[0]!, cfg));
  const permute = GGUF_ARCH[cfg.arch.name].permuteQk && rule.permute ? (rule.permute === 'q' ? cfg.numHeads : cfg.numKvHeads) : 0;
  return {
    name,
    type: ggml,
    ne,
    produce(emit) {
      for (const w of parts) {
        const cols = w.shape.length === 2 ? w.shape[1]! : 1;
        // bf16 -> bf16 keeps the bits; everything else goes through f32 (exact for bf16/f16 sources)
        let data: Float32Array | Uint16Array = ggml === GgmlType.BF16 && w.dtype === 'bf16' ? (w.data as Uint16Array) : toF32(w);
        if (permute) data = permuteHeads(data, cols, permute, 'toGguf');
        emit(encode(data, ggml, cols));
      }
    },
  };
}

function encode(data: Float32Array | Uint16Array, ggml: number, cols: number): Uint8Array {
  const quant = quantTypeOfGgml(ggml);
  if (quant) {
    const q = new Uint8Array((data.length / cols) * quantRowBytes(quant, cols));
    quantizeRows(quant, data as Float32Array, data.length / cols, cols, q);
    return q;
  }
  if (ggml === GgmlType.BF16 && data instanceof Float32Array) {
    const b = new Uint16Array(data.length);
    for (let i = 0; i < data.length; i++) b[i] = f32ToBf16(data[i]!);
    data = b;
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
