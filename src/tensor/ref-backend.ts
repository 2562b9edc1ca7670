import type { Backend } from './backend.js';
import { swiGluExpertsByGroup } from './backend.js';
import type { Weight } from './weight.js';
import { readRows, weightAt } from './weight.js';

/**
 * The reference backend: obvious loops, float64 accumulation. It is the specification the native
 * kernels are tested against, not a fast path.
 */
export const refBackend: Backend = {
  name: 'ref',

  matmul(y, x, w, rows, bias) {
    const [n, k] = w.shape as [number, number];
    // one weight row widened (or dequantized, for the block formats) at a time
    const row = new Float32Array(k);
    for (let j = 0; j < n; j++) {
      readRows(w, j, 1, row);
      for (let r = 0; r < rows; r++) {
        let acc = bias ? weightAt(bias, j) : 0;
        for (let i = 0; i < k; i++) acc += x[r * k + i]! * row[i]!;
        y[r * n + j] = acc;
      }
    }
  },

  rmsNorm(y, x, g, rows, eps) {
    const dim = g.shape[0]!;
    for (let r = 0; r < rows; r++) {
      let ss = 0;
      for (let i = 0; i < dim; i++) ss += x[r * dim + i]! ** 2;
      const inv = 1 / Math.sqrt(ss / dim + eps);
      for (let i = 0; i < dim; i++) y[r * dim + i] = x[r * dim + i]! * inv * weightAt(g, i);
    }
  },

  rope(x, seqs, heads, headDim, theta) {
    const half = headDim / 2;
    const positions: number[] = [];
    for (const { tokens, pos0 } of seqs) for (let t = 0; t < tokens; t++) positions.push(pos0 + t);
    for (let t = 0; t < positions.length; t++) {
      for (let i = 0; i < half; i++) {
        const angle = positions[t]! * theta ** ((-2 * i) / headDim);
        const c = Math.cos(angle);
        const s = Math.sin(angle);
        for (let h = 0; h < heads; h++) {
          const base = (t * heads + h) * headDim;
          const a = x[base + i]!;
          const b = x[base + i + half]!;
          x[base + i] = a * c - b * s;
          x[base + i + half] = b * c + a * s;
        }
      }
    }
  },

  attention(out, q, seqs, heads, kvHeads, headDim, window) {
    let row = 0;
    for (const { kCache, vCache, tokens, pos0 } of seqs) {
      const rows = tokens * heads * headDim;
      attentionOne(out.subarray(row, row + rows), q.subarray(row, row + rows), kCache, vCache, tokens, pos0, heads, kvHeads, headDim, window);
      row += rows;
    }
  },

  swiGlu(out, x, gate, up, rows) {
    const f = gate.shape[0]!;
    const g = new Float32Array(rows * f);
    const u = new Float32Array(rows * f);
    refBackend.matmul(g, x, gate, rows);
    refBackend.matmul(u, x, up, rows);
    refBackend.siluMul(out, g, u, rows * f);
  },

  swiGluExperts(out, x, act, experts, rowStarts) {
    swiGluExpertsByGroup(refBackend, out, x, act, experts, rowStarts);
  },

  siluMul(out, gate, up, n) {
    for (let i = 0; i < n; i++) {
      const g = gate[i]!;
      out[i] = (g / (1 + Math.exp(-g))) * up[i]!;
    }
  },
};

/** One sequence's attention (the specification of the cpu kernel). */
function attentionOne(out: Float32Array, q: Float32Array, kCache: Float32Array, vCache: Float32Array, tokens: number, pos0: number, heads: number, kvHeads: number, headDim: number, window: number): void {
  const group = heads / kvHeads;
  const kvStride = kvHeads * headDim;
  const scale = 1 / Math.sqrt(headDim);
  const scores = new Float64Array(pos0 + tokens);
  for (let t = 0; t < tokens; t++) {
    const pos = pos0 + t;
    const first = window > 0 ? Math.max(0, pos - window + 1) : 0;
    for (let h = 0; h < heads; h++) {
      const kvh = Math.floor(h / group);
      const qOff = (t * heads + h) * headDim;
      let max = -Infinity;
      for (let p = first; p <= pos; p++) {
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += q[qOff + d]! * kCache[p * kvStride + kvh * headDim + d]!;
        scores[p] = dot * scale;
        if (scores[p]! > max) max = scores[p]!;
      }
      let sum = 0;
      for (let p = first; p <= pos; p++) {
        scores[p] = Math.exp(scores[p]! - max);
        sum += scores[p]!;
      }
      for (let d = 0; d < headDim; d++) {
        let acc = 0;
        for (let p = first; p <= pos; p++) acc += scores[p]! * vCache[p * kvStride + kvh * headDim + d]!;
        out[qOff + d] = acc / sum;
      }
    }
  }
}

export type { Weight };
