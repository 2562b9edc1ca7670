import type { MoeWeights } from '../moe/moe-layer.js';
import { f32Weight } from '../tensor/weight.js';

/** The shape of a synthetic MoE layer for `moesaic bench gating`. */
export interface LayerSpec {
  readonly hidden: number;
  readonly ffn: number;
  readonly experts: number;
  readonly topK: number;
  /** routing skew s >= 0: expert e's logit gets -s · ln(e + 1), a Zipf(s) popularity; 0 = uniform-ish */
  readonly skew: number;
  readonly seed: number;
  /**
   * Distinct weight sets the experts cycle through (expert e uses set e mod n; default one per
   * expert). At the paper's widths 512 distinct experts would need 26 GB of f32 weights; a few sets
   * of 50 MB each, every one larger than the last-level cache, keep each expert product streaming its
   * weights from memory as distinct experts would, at a fraction of the memory.
   */
  readonly weightSets?: number;
}

/** Uniform in [-scale, scale) from a 32-bit LCG: fast enough to fill hundreds of MB of weights. */
function fill(a: Float32Array, seed: number, scale: number): Float32Array {
  let s = (seed * 2654435761) >>> 0;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 2 ** 31 - 1) * scale;
  }
  return a;
}

/**
 * Seeded random expert weights (uniform, variance 1/fan-in, so activations stay O(1)) and a router
 * whose last input feature is a constant 1 carrying the skew: router[e, H-1] = -skew · ln(e + 1), so
 * softmax probabilities are tilted by (e + 1)^(-skew) on top of the token-dependent part. That gives
 * the strongly imbalanced routing Huang et al. observe (arXiv 2303.06182, §3) with one knob.
 */
export function syntheticLayer(spec: LayerSpec): MoeWeights {
  const { hidden: H, ffn: F, experts: E, seed } = spec;
  const u = (n: number, s: number, fanIn: number) => fill(new Float32Array(n), s, Math.sqrt(3 / fanIn));
  const router = u(E * H, seed, H);
  for (let e = 0; e < E; e++) router[e * H + H - 1] = -spec.skew * Math.log(e + 1);
  const sets = Array.from({ length: weightSetCount(spec) }, (_, e) => ({
    gate: u(F * H, seed + 3 * e + 1, H),
    up: u(F * H, seed + 3 * e + 2, H),
    down: u(H * F, seed + 3 * e + 3, F),
  }));
  return {
    router: f32Weight('router', [E, H], router),
    experts: Array.from({ length: E }, (_, e) => {
      const w = sets[e % sets.length]!;
      return {
        gate: f32Weight(`experts.${e}.gate`, [F, H], w.gate),
        up: f32Weight(`experts.${e}.up`, [F, H], w.up),
        down: f32Weight(`experts.${e}.down`, [H, F], w.down),
      };
    }),
  };
}

/** How many distinct expert weight sets the layer holds in memory. */
export function weightSetCount(spec: LayerSpec): number {
  return Math.min(spec.experts, spec.weightSets ?? spec.experts);
}

/** [batch, hidden] seeded hidden states, unit-variance, with the constant skew feature in the last column. */
export function syntheticInput(spec: LayerSpec, batch: number): Float32Array {
  const H = spec.hidden;
  const x = fill(new Float32Array(batch * H), spec.seed + 1_000_003 * batch, Math.sqrt(3));
  for (let t = 0; t < batch; t++) x[t * H + H - 1] = 1;
  return x;
}
