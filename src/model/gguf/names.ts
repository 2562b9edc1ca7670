import type { ArchName, ArchSpec } from '../architectures.js';
import { COMMON_NAMES as N } from '../architectures.js';

/**
 * llama.cpp tensor names <-> Hugging Face tensor names, as one table used in both directions (reading a
 * GGUF, writing one). `{i}` is the layer index, `{e}` the expert index.
 */
export interface NameRule {
  /** llama.cpp name; per-layer names start with `blk.{i}.` */
  readonly gguf: string;
  /** the Hugging Face name template, from the architecture's table */
  readonly hf: (arch: ArchSpec) => string;
  /** a merged 3-D tensor holding every expert: ne = [cols, rows, experts] */
  readonly experts?: boolean;
  /** rows permuted by llama.cpp's converter for interleaved rotary (llama arch only): q or k heads */
  readonly permute?: 'q' | 'k';
  /** kept in f32 whatever the export type: llama.cpp requires f32 norms; biases and routers are tiny */
  readonly f32?: boolean;
  /** HF stores it as [1, n] while llama.cpp declares a 1-D [n] (Qwen2-MoE's shared-expert gate) */
  readonly row?: boolean;
}

export const NAME_RULES: readonly NameRule[] = [
  { gguf: 'token_embd.weight', hf: () => N.embed },
  { gguf: 'output_norm.weight', hf: () => N.finalNorm, f32: true },
  { gguf: 'output.weight', hf: () => N.lmHead },
  { gguf: 'blk.{i}.attn_norm.weight', hf: () => N.inputNorm, f32: true },
  { gguf: 'blk.{i}.ffn_norm.weight', hf: () => N.postAttnNorm, f32: true },
  { gguf: 'blk.{i}.attn_q.weight', hf: () => `${N.q}.weight`, permute: 'q' },
  { gguf: 'blk.{i}.attn_k.weight', hf: () => `${N.k}.weight`, permute: 'k' },
  { gguf: 'blk.{i}.attn_v.weight', hf: () => `${N.v}.weight` },
  { gguf: 'blk.{i}.attn_output.weight', hf: () => `${N.o}.weight` },
  { gguf: 'blk.{i}.attn_q.bias', hf: () => `${N.q}.bias`, permute: 'q', f32: true },
  { gguf: 'blk.{i}.attn_k.bias', hf: () => `${N.k}.bias`, permute: 'k', f32: true },
  { gguf: 'blk.{i}.attn_v.bias', hf: () => `${N.v}.bias`, f32: true },
  { gguf: 'blk.{i}.attn_output.bias', hf: () => `${N.o}.bias`, f32: true },
  { gguf: 'blk.{i}.attn_q_norm.weight', hf: () => N.qNorm, f32: true },
  { gguf: 'blk.{i}.attn_k_norm.weight', hf: () => N.kNorm, f32: true },
  { gguf: 'blk.{i}.ffn_gate_inp.weight', hf: (a) => a.names.router, f32: true },
  { gguf: 'blk.{i}.ffn_gate_exps.weight', hf: (a) => a.names.expertGate, experts: true },
  { gguf: 'blk.{i}.ffn_up_exps.weight', hf: (a) => a.names.expertUp, experts: true },
  { gguf: 'blk.{i}.ffn_down_exps.weight', hf: (a) => a.names.expertDown, experts: true },
  { gguf: 'blk.{i}.ffn_gate_shexp.weight', hf: (a) => a.names.sharedGate },
  { gguf: 'blk.{i}.ffn_up_shexp.weight', hf: (a) => a.names.sharedUp },
  { gguf: 'blk.{i}.ffn_down_shexp.weight', hf: (a) => a.names.sharedDown },
  { gguf: 'blk.{i}.ffn_gate_inp_shexp.weight', hf: (a) => a.names.sharedExpertGate, f32: true, row: true },
  { gguf: 'blk.{i}.ffn_gate.weight', hf: (a) => a.names.denseGate },
  { gguf: 'blk.{i}.ffn_up.weight', hf: (a) => a.names.denseUp },
  { gguf: 'blk.{i}.ffn_down.weight', hf: (a) => a.names.denseDown },
];

/**
 * Mixtral GGUFs converted before llama.cpp merged the experts (spring 2024) hold one 2-D tensor per
 * expert: `blk.{i}.ffn_gate.{e}.weight`. Read only; exports always merge.
 */
const LEGACY_EXPERT = /^blk\.(\d+)\.ffn_(gate|up|down)\.(\d+)\.weight$/;
const LEGACY_HF: Record<string, (a: ArchSpec) => string> = {
  gate: (a) => a.names.expertGate,
  up: (a) => a.names.expertUp,
  down: (a) => a.names.expertDown,
};

const BY_GGUF = new Map(NAME_RULES.map((r) => [r.gguf, r]));

export interface ResolvedName {
  readonly rule: NameRule;
  /** -1 for tensors outside the layers */
  readonly layer: number;
  /** the expert of a legacy per-expert tensor, else -1 */
  readonly expert: number;
}

/** The rule for a llama.cpp tensor name, or undefined for a tensor moesaic does not use. */
export function resolveGgufName(name: string): ResolvedName | undefined {
  const legacy = LEGACY_EXPERT.exec(name);
  if (legacy) {
    const rule: NameRule = { gguf: name, hf: LEGACY_HF[legacy[2]!]! };
    return { rule, layer: Number(legacy[1]), expert: Number(legacy[3]) };
  }
  const m = /^blk\.(\d+)\.(.+)$/.exec(name);
  const rule = BY_GGUF.get(m ? `blk.{i}.${m[2]}` : name);
  return rule ? { rule, layer: m ? Number(m[1]) : -1, expert: -1 } : undefined;
}

export function fillName(template: string, layer: number, expert = 0): string {
  return template.replace('{i}', String(layer)).replace('{e}', String(expert));
}

/** The llama.cpp `general.architecture` of each moesaic family, and whether its q/k rows are permuted. */
export const GGUF_ARCH: Readonly<Record<ArchName, { name: string; permuteQk: boolean }>> = {
  // llama.cpp runs Mixtral as `llama` with experts; its rotary is interleaved, hence the permutation
  mixtral: { name: 'llama', permuteQk: true },
  qwen2_moe: { name: 'qwen2moe', permuteQk: false },
  qwen3_moe: { name: 'qwen3moe', permuteQk: false },
  olmoe: { name: 'olmoe', permuteQk: false },
};

type Rows = Float32Array | Uint16Array | Uint8Array;

/**
 * llama.cpp's converter reorders each head's rows of q_proj / k_proj so that its interleaved rotary
 * (pairs 2i, 2i+1) computes what Hugging Face's rotate-half rotary (pairs i, i+D/2) computes: HF row
 * `half*D/2 + i` of a head becomes row `2i + half`. `toGguf` applies that; `toHf` undoes it. Works on
 * whole rows of `cols` elements (cols = 1 for a bias). Returns a new array.
 */
export function permuteHeads<T extends Rows>(src: T, cols: number, nHead: number, dir: 'toGguf' | 'toHf'): T {
  const rows = src.length / cols;
  const D = rows / nHead;
  const half = D / 2;
  const dst = new (src.constructor as new (n: number) => T)(src.length);
  for (let h = 0; h < nHead; h++) {
    for (let i = 0; i < half; i++) {
      for (let s = 0; s < 2; s++) {
        const hfRow = h * D + s * half + i;
        const ggRow = h * D + 2 * i + s;
        const [from, to] = dir === 'toGguf' ? [hfRow, ggRow] : [ggRow, hfRow];
        dst.set(src.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return dst;
}
