import { fail } from '../errors.js';
import { Rng } from '../util/rng.js';
import type { Weight } from '../tensor/weight.js';
import { weightAt } from '../tensor/weight.js';
import type { Router, RouterInput, Routing } from './routing.js';
import { allocRouting, softmaxRow, topK } from './routing.js';

export interface XmoeOptions {
  /** low-rank routing dimension d_e (X-MoE uses 16) */
  readonly rank: number;
  /** softmax temperature τ on the cosine scores */
  readonly temperature: number;
  /** divide the k kept probabilities by their sum (follows the family's norm_topk_prob) */
  readonly renormalize: boolean;
  /** seed of the derived projection for checkpoints without X-MoE weights */
  readonly seed: number;
}

interface Space {
  /** [rank, hidden] */
  readonly proj: Float64Array;
  /** [experts, rank], rows L2-normalised */
  readonly experts: Float64Array;
}

/**
 * X-MoE cosine routing (Chi et al., "On the Representation Collapse of Sparse Mixture of Experts",
 * arXiv 2204.09179): project the token into a low-rank space, h' = W h (W: [d_e, hidden]), and score
 * expert i by s_i = cos(h', e_i) / τ, the cosine between the L2-normalised token and the
 * L2-normalised expert embedding; p = softmax(s), keep the top-k.
 *
 * Checkpoints with X-MoE weights pass `xmoeProjection` and `xmoeExperts`. A checkpoint without them
 * (every family moesaic loads today) gets a derived routing space, deterministic per (seed, layer):
 * W has i.i.d. N(0, 1/d_e) entries from the seeded generator (src/util/rng.ts, stream
 * `xmoe.proj.<layer>`), and expert i's embedding is W · r_i, the projection of its row r_i of the
 * checkpoint's own gate matrix. By Johnson-Lindenstrauss, cos(W h, W r_i) ≈ cos(h, r_i), so the
 * derived router is a cosine version of the checkpoint's own preferences rather than noise. The space
 * is computed once per layer and cached on this router instance (a pure function of the weights).
 */
export function xmoeRouter(o: XmoeOptions): Router {
  const spaces = new Map<number, Space>();
  const spaceFor = (layer: number, gate: Weight, proj?: Weight, emb?: Weight): Space => {
    let sp = spaces.get(layer);
    if (sp) return sp;
    const [E, H] = gate.shape as [number, number];
    if (proj || emb) {
      if (!proj || !emb) fail('E_MISSING_TENSOR', `layer ${layer}: X-MoE routing needs both the projection and the expert embeddings`);
      const r = proj.shape[0]!;
      if (proj.shape[1] !== H || emb.shape[0] !== E || emb.shape[1] !== r) {
        fail('E_BAD_CHECKPOINT', `layer ${layer}: X-MoE shapes ${proj.name} [${proj.shape.join(', ')}] / ${emb.name} [${emb.shape.join(', ')}] do not fit [rank, ${H}] / [${E}, rank]`);
      }
      const p = Float64Array.from({ length: r * H }, (_, i) => weightAt(proj, i));
      const x = Float64Array.from({ length: E * r }, (_, i) => weightAt(emb, i));
      sp = { proj: p, experts: normalizeRows(x, E, r) };
    } else {
      const r = Math.min(o.rank, H);
      const rng = new Rng(o.seed, `xmoe.proj.${layer}`);
      const p = new Float64Array(r * H);
      rng.fillNormal(p, 1 / Math.sqrt(r));
      const x = new Float64Array(E * r); // [E, r] = gate · Wᵀ
      for (let e = 0; e < E; e++) {
        for (let i = 0; i < r; i++) {
          let acc = 0;
          for (let h = 0; h < H; h++) acc += p[i * H + h]! * weightAt(gate, e * H + h);
          x[e * r + i] = acc;
        }
      }
      sp = { proj: p, experts: normalizeRows(x, E, r) };
    }
    spaces.set(layer, sp);
    return sp;
  };

  return {
    name: 'xmoe-cosine',
    route({ hidden, tokens: T, numExperts: E, k: cfgK, layer, weights }: RouterInput): Routing {
      const H = weights.router.shape[1]!;
      const sp = spaceFor(layer, weights.router, weights.xmoeProjection, weights.xmoeExperts);
      const r = sp.proj.length / H;
      const k = Math.min(cfgK, E);
      const out = allocRouting(T, k);
      const z = new Float64Array(r); // [r] projected token
      const s = new Float64Array(E); // [E] cosine / τ
      const p = new Float64Array(E);
      for (let t = 0; t < T; t++) {
        let norm = 0;
        for (let i = 0; i < r; i++) {
          let acc = 0;
          for (let h = 0; h < H; h++) acc += sp.proj[i * H + h]! * hidden[t * H + h]!;
          z[i] = acc;
          norm += acc * acc;
        }
        const inv = 1 / Math.max(Math.sqrt(norm), 1e-12);
        for (let e = 0; e < E; e++) {
          let dot = 0;
          for (let i = 0; i < r; i++) dot += z[i]! * sp.experts[e * r + i]!;
          s[e] = (dot * inv) / o.temperature;
        }
        softmaxRow(s, 0, E, p);
        const chosen = topK(p, 0, E, k);
        let kept = 0;
        for (const e of chosen) kept += p[e]!;
        chosen.forEach((e, j) => {
          out.experts[t * k + j] = e;
          out.weights[t * k + j] = o.renormalize ? p[e]! / kept : p[e]!;
        });
      }
      return out;
    },
  };
}

/** L2-normalise each of `rows` rows of length n in place (a zero row stays zero). */
function normalizeRows(x: Float64Array, rows: number, n: number): Float64Array {
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[r * n + i]! ** 2;
    const inv = 1 / Math.max(Math.sqrt(ss), 1e-12);
    for (let i = 0; i < n; i++) x[r * n + i]! *= inv;
  }
  return x;
}
