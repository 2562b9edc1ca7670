import type { Backend, GatedFfn } from '../tensor/backend.js';
import type { Weight } from '../tensor/weight.js';
import type { Buffers } from './buffers.js';

/** A gated FFN: down(silu(gate(x)) * up(x)). Experts, shared experts and dense MLPs all use it. */
export type SwiGluWeights = GatedFfn;

/** out[rows, hidden] = SwiGLU(x[rows, hidden]); `tag` keeps buffers of different callers apart. */
export function swiglu(
  backend: Backend,
  buffers: Buffers,
  tag: string,
  out: Float32Array,
  x: Float32Array,
  rows: number,
  w: SwiGluWeights,
): void {
  const ffn = w.gate.shape[0]!;
  const act = buffers.get(`${tag}.act`, rows * ffn); // [rows, ffn] silu(x·gateᵀ) * (x·upᵀ), one fused pass
  backend.swiGlu(act, x, w.gate, w.up, rows);
  backend.matmul(out, act, w.down, rows);
}
