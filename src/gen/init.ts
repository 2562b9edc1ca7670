import { Rng } from '../util/rng.js';
import type { TensorPlan } from './tensors.js';

/**
 * Values of synthetic tensors, and the routing-skew model.
 *
 * Skew model: every embedding row gets a shared offset OFFSET * sqrt(H) * u along one unit direction u
 * (real LM embeddings share a mean direction too). The hidden state entering each router therefore has
 * a component along u of about KAPPA = OFFSET * sqrt(H) / sqrt(1 + OFFSET^2) after RMSNorm. Router rows
 * are first made orthogonal to u (so with --skew 0 no expert is favoured on average), then row e gets
 * (skew * (z_e - mean z) / KAPPA) * u, with z = 1, 1/2, 1/3, ... (Zipf) over a per-layer random ranking
 * of the experts. Expert e's router logit is thus shifted by about skew * (z_e - mean z): its
 * popularity rises with its rank, by an amount that --skew scales.
 */
export const OFFSET = 0.5;
/** Std of the noise on RMSNorm gains around 1. */
export const GAIN_NOISE = 0.05;

export interface InitContext {
  readonly seed: number;
  readonly skew: number;
  readonly hidden: number;
}

/** Fills the next dst.length values of a tensor (row-major), chunk after chunk. */
export type Source = (dst: Float32Array) => void;

/** A fresh source for one tensor; its values depend only on (seed, tensor name, skew for routers). */
export function openSource(t: TensorPlan, ctx: InitContext): Source {
  const rng = new Rng(ctx.seed, t.name);
  const init = t.init;
  switch (init.kind) {
    case 'normal':
      return (dst) => rng.fillNormal(dst, init.std);
    case 'gain':
      return (dst) => rng.fillNormal(dst, GAIN_NOISE, 1);
    case 'embed': {
      const u = offsetDirection(ctx);
      const H = ctx.hidden;
      const scale = OFFSET * Math.sqrt(H);
      let pos = 0;
      return (dst) => {
        for (let i = 0; i < dst.length; i++, pos++) dst[i] = rng.normal() + scale * u[pos % H]!;
      };
    }
    case 'router': {
      const all = routerRows(t.shape[0]!, init.layer, rng, ctx);
      let pos = 0;
      return (dst) => {
        dst.set(all.subarray(pos, pos + dst.length));
        pos += dst.length;
      };
    }
  }
}

/** The shared offset direction u (unit length), from its own stream. */
export function offsetDirection(ctx: InitContext): Float64Array {
  const u = new Float64Array(ctx.hidden);
  new Rng(ctx.seed, 'offset-direction').fillNormal(u, 1);
  let n = 0;
  for (const x of u) n += x * x;
  n = Math.sqrt(n);
  for (let i = 0; i < u.length; i++) u[i]! /= n;
  return u;
}

/**
 * Zipf weights z_e - mean(z) per expert for one layer: the expert ranked r (by a per-layer random
 * permutation, so the favoured experts differ between layers as in trained models) gets 1 / (r + 1).
 */
export function skewWeights(experts: number, layer: number, seed: number): Float64Array {
  const order = new Rng(seed, `expert-rank.${layer}`).permutation(experts);
  const z = new Float64Array(experts);
  for (let r = 0; r < experts; r++) z[order[r]!] = 1 / (r + 1);
  const mean = z.reduce((a, b) => a + b, 0) / experts;
  for (let e = 0; e < experts; e++) z[e]! -= mean;
  return z;
}

/** Router weight [E, H]: N(0, 1/H) rows, projected orthogonal to u, plus the skew term along u. */
function routerRows(experts: number, layer: number, rng: Rng, ctx: InitContext): Float32Array {
  const H = ctx.hidden;
  const u = offsetDirection(ctx);
  const z = skewWeights(experts, layer, ctx.seed);
  const kappa = (OFFSET * Math.sqrt(H)) / Math.sqrt(1 + OFFSET * OFFSET);
  const out = new Float32Array(experts * H);
  const row = new Float64Array(H);
  for (let e = 0; e < experts; e++) {
    rng.fillNormal(row, 1 / Math.sqrt(H));
    let dot = 0;
    for (let j = 0; j < H; j++) dot += row[j]! * u[j]!;
    const along = (ctx.skew * z[e]!) / kappa - dot;
    for (let j = 0; j < H; j++) out[e * H + j] = row[j]! + along * u[j]!;
  }
  return out;
}
