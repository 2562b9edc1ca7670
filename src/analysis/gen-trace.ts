import { fail } from '../errors.js';
import { TraceWriter, type TraceHeader, type TraceRecord } from '../trace/format.js';
import { Xoshiro128 } from '../util/rng.js';

/**
 * Synthetic routing traces, for experiments beyond the models at hand. The generative
 * model reproduces the three properties the paper measures on real routing and that expert buffering
 * and placement exploit (Huang et al., arXiv 2303.06182 §3: imbalanced popularity, temporal locality
 * across batches, experts that fire together). For each MoE layer independently:
 *
 * 1. Popularity (--skew X >= 0): a seeded random permutation ranks the experts; the expert of rank r
 *    (0-based) has weight 1/(r+1)^X (Zipf-like). X = 0 is uniform routing; X = 1 gives the top expert
 *    about 1/H_E of a token's first choice (H_E: the E-th harmonic number).
 * 2. Co-activation (--correlation R in [0, 1]): the experts are split into random disjoint pairs. A
 *    token draws its first expert by popularity; each further expert is, with probability R, the
 *    partner of the expert chosen just before it (when that partner is not taken yet), otherwise a
 *    fresh popularity draw among the experts not yet chosen. R = 0: independent choices.
 * 3. Temporal locality (--locality P in [0, 1]): from the second step on, each token, with probability
 *    P, repeats the whole expert set of a uniformly chosen token of the previous step in the same layer;
 *    otherwise it draws a fresh set as above. P = 1 keeps the previous step's active experts (and no
 *    others); P = 0: steps are independent.
 *
 * Every MoE layer is a layer of the trace (moe_layers = 0..L-1), every step routes T tokens, and the
 * whole trace is a pure function of the options and --seed.
 */
export interface GenTraceOptions {
  experts: number;
  topK: number;
  layers: number;
  steps: number;
  tokens: number;
  skew: number;
  locality: number;
  correlation: number;
  seed: number;
}

/**
 * xoshiro128** (Blackman & Vigna, 2018) seeded through splitmix32: a small, fast generator with a
 * 2^128 - 1 period, so a trace is identical on every platform and Node version (Math.random is not
 * seedable). Returns floats in [0, 1).
 */
export function seededRandom(seed: number): () => number {
  let x = seed >>> 0;
  const splitmix = (): number => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  const g = new Xoshiro128(splitmix(), splitmix(), splitmix(), splitmix());
  return () => g.nextU32() / 4294967296;
}

export function checkGenOptions(o: GenTraceOptions): void {
  const need = (ok: boolean, msg: string): void => {
    if (!ok) fail('E_BAD_OPTION', msg);
  };
  need(Number.isInteger(o.experts) && o.experts >= 1, `--experts must be a positive integer, got ${o.experts}`);
  need(Number.isInteger(o.topK) && o.topK >= 1 && o.topK <= o.experts, `--top-k must be an integer in [1, --experts = ${o.experts}], got ${o.topK}`);
  need(Number.isInteger(o.layers) && o.layers >= 1, `--layers must be a positive integer, got ${o.layers}`);
  need(Number.isInteger(o.steps) && o.steps >= 1, `--steps must be a positive integer, got ${o.steps}`);
  need(Number.isInteger(o.tokens) && o.tokens >= 1, `--tokens must be a positive integer, got ${o.tokens}`);
  need(Number.isFinite(o.skew) && o.skew >= 0, `--skew must be a number >= 0, got ${o.skew}`);
  need(o.locality >= 0 && o.locality <= 1, `--locality must be in [0, 1], got ${o.locality}`);
  need(o.correlation >= 0 && o.correlation <= 1, `--correlation must be in [0, 1], got ${o.correlation}`);
}

export function genHeader(o: GenTraceOptions): TraceHeader {
  return {
    moesaic_trace: 1,
    model: `gen-trace E=${o.experts} k=${o.topK} skew=${o.skew} locality=${o.locality} correlation=${o.correlation} seed=${o.seed}`,
    num_layers: o.layers,
    moe_layers: Array.from({ length: o.layers }, (_, l) => l),
    num_experts: o.experts,
    top_k: o.topK,
  };
}

/** One layer's fixed random structure: popularity CDF and co-activation partners. */
interface LayerModel {
  cdf: Float64Array; // [E] cumulative popularity weights
  partner: Int32Array; // [E] paired expert, -1 for the odd one out
  prev: Int32Array[]; // previous step's expert sets, one per token
}

function shuffled(E: number, rand: () => number): Int32Array {
  const p = Int32Array.from({ length: E }, (_, i) => i);
  for (let i = E - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

function layerModel(o: GenTraceOptions, rand: () => number): LayerModel {
  const E = o.experts;
  const rank = shuffled(E, rand); // rank[r] = expert of popularity rank r
  const weight = new Float64Array(E);
  for (let r = 0; r < E; r++) weight[rank[r]] = 1 / Math.pow(r + 1, o.skew);
  const cdf = new Float64Array(E);
  let acc = 0;
  for (let m = 0; m < E; m++) cdf[m] = acc += weight[m];
  const order = shuffled(E, rand);
  const partner = new Int32Array(E).fill(-1);
  for (let i = 0; i + 1 < E; i += 2) {
    partner[order[i]] = order[i + 1];
    partner[order[i + 1]] = order[i];
  }
  return { cdf, partner, prev: [] };
}

/** A popularity draw, avoiding experts already in `chosen[0..n)`. */
function draw(cdf: Float64Array, rand: () => number, chosen: Int32Array, n: number): number {
  const E = cdf.length;
  const total = cdf[E - 1];
  // rejection is cheap while the chosen experts hold little mass; after many rejections fall back to an
  // exact draw over the remaining experts so a very skewed popularity cannot stall
  for (let tries = 0; tries < 32; tries++) {
    const e = upperBound(cdf, rand() * total);
    if (!includes(chosen, n, e)) return e;
  }
  let rest = 0;
  for (let m = 0; m < E; m++) if (!includes(chosen, n, m)) rest += cdf[m] - (m > 0 ? cdf[m - 1] : 0);
  let u = rand() * rest;
  let last = -1;
  for (let m = 0; m < E; m++) {
    if (includes(chosen, n, m)) continue;
    last = m;
    u -= cdf[m] - (m > 0 ? cdf[m - 1] : 0);
    if (u < 0) return m;
  }
  return last;
}

/** First index whose cumulative weight exceeds u. */
function upperBound(cdf: Float64Array, u: number): number {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cdf[mid] > u) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function includes(a: Int32Array, n: number, v: number): boolean {
  for (let i = 0; i < n; i++) if (a[i] === v) return true;
  return false;
}

/** Yields the trace's records in file order: steps ascending, layers ascending within a step. */
export function* generateRecords(o: GenTraceOptions): Generator<TraceRecord> {
  checkGenOptions(o);
  const rand = seededRandom(o.seed);
  const models = Array.from({ length: o.layers }, () => layerModel(o, rand));
  const k = o.topK;
  for (let s = 0; s < o.steps; s++) {
    for (let l = 0; l < o.layers; l++) {
      const lm = models[l];
      const sets: Int32Array[] = [];
      for (let t = 0; t < o.tokens; t++) {
        if (s > 0 && o.locality > 0 && rand() < o.locality) {
          sets.push(lm.prev[Math.floor(rand() * lm.prev.length)]);
          continue;
        }
        const chosen = new Int32Array(k);
        for (let j = 0; j < k; j++) {
          const p = j > 0 ? lm.partner[chosen[j - 1]] : -1;
          chosen[j] = p >= 0 && rand() < o.correlation && !includes(chosen, j, p) ? p : draw(lm.cdf, rand, chosen, j);
        }
        sets.push(chosen);
      }
      lm.prev = sets;
      yield { step: s, layer: l, experts: sets.map((c) => Array.from(c)) };
    }
  }
}

/** Writes a generated trace to `path` (gzip'd when it ends in .gz). */
export async function writeGenTrace(o: GenTraceOptions, path: string): Promise<TraceHeader> {
  checkGenOptions(o);
  const header = genHeader(o);
  const w = new TraceWriter(path, header);
  try {
    let n = 0;
    for (const rec of generateRecords(o)) {
      w.write(rec);
      // a turn of the event loop now and then, so Ctrl-C can remove the unfinished file (docs/outputs.md)
      if (++n % 256 === 0) await new Promise((r) => setImmediate(r));
    }
  } catch (err) {
    w.abort();
    throw err;
  }
  await w.close();
  return header;
}
