import type { Backend } from '../tensor/backend.js';
import type { Scratch } from '../tensor/scratch.js';
import type { Weight } from '../tensor/weight.js';

/** A gated FFN: down(silu(gate(x)) * up(x)). Experts, shared experts and dense MLPs all use it. */
export interface SwiGluWeights {
  /** [ffn, hidden] */
  readonly gate: Weight;
  /** [ffn, hidden] */
  readonly up: Weight;
  /** [hidden, ffn] */
  readonly down: Weight;
}

/** out[rows, hidden] = SwiGLU(x[rows, hidden]); `tag` keeps scratch buffers of different callers apart. */
export function swiglu(
  backend: Backend,
  scratch: Scratch,
  tag: string,
  out: Float32Array,
  x: Float32Array,
  rows: number,
  w: SwiGluWeights,
): void {
  const ffn = w.gate.shape[0]!;
  const g = scratch.get(`${tag}.gate`, rows * ffn); // [rows, ffn]
  const u = scratch.get(`${tag}.up`, rows * ffn); // [rows, ffn]
  backend.matmul(g, x, w.gate, rows);
  backend.matmul(u, x, w.up, rows);
  backend.siluMul(g, g, u, rows * ffn);
  backend.matmul(out, g, w.down, rows);
}
