import { fail } from '../errors.js';
import { readTrace, type TraceHeader, type TraceRecord } from '../trace/format.js';

/**
 * Routing-trace analysis: the statistics that decide expert buffering and placement
 * (techniques.md §2, §3; Huang et al., "Towards MoE Deployment", arXiv 2303.06182). Popularity and skew
 * say how unevenly a layer loads its experts (the case for greedy placement and EPLB replicas); inactive
 * experts per step say how much memory a layer could leave on the host (the case for expert buffering);
 * temporal locality says whether a small cache of recently used experts will hit; correlation says which
 * experts fire together and so should sit on different devices (anti-correlation placement).
 *
 * One streaming pass over the trace. Per MoE layer it keeps O(E) running sums, the previous step's
 * active set and one running sum per pair of experts that was ever active together (the correlations):
 * a dense E x E array while layers x E^2 stays within `maxDenseEntries`, else a sparse map of the
 * co-active pairs, bounded by `maxSparsePairs` with a clear error. Pairs never active together have a
 * cross sum of 0, so their r is <= 0 and the top (r > 0) pairs are exact either way; the full matrix
 * is reported only in the dense case.
 *
 * Definitions (docs/trace-analysis.md has them with worked examples):
 * - a "step" of a layer is one record of that layer with at least one token (empty records are skipped);
 *   the step after s is the layer's next such record;
 * - share_e(s) = assignments to expert e at step s / (T_s * k): the expert's activation series, the same
 *   series anti-correlation placement uses;
 * - popularity_e = assignments to e / all assignments of the layer;
 * - max_over_mean = max_e popularity_e / (1/E); gini = sum_ij |p_i - p_j| / (2 E^2 mean(p));
 * - inactive(s) = E - |A_s|, A_s = experts with >= 1 token at step s;
 * - locality = sum_s |A_s ∩ A_{s+1}| / sum_s |A_s| over consecutive steps, i.e. P(e in A_{s+1} | e in A_s);
 * - correlation = Pearson's r between share series, 0 where either series is constant.
 */

/** One MoE layer's statistics. Values that need at least one (or two) steps are null without them. */
export interface LayerAnalysis {
  /** model layer index (from the header's moe_layers) */
  layer: number;
  /** records with at least one token */
  steps: number;
  /** tokens over all steps */
  tokens: number;
  /** token-expert assignments = tokens * top_k */
  assignments: number;
  /** [E] share of the layer's assignments each expert received (sums to 1; all 0 without steps) */
  popularity: number[];
  /** max popularity / mean popularity (mean = 1/E): 1 = uniform, E = one expert takes everything */
  max_over_mean: number;
  /** Gini coefficient of popularity: 0 = uniform, (E-1)/E = one expert takes everything */
  gini: number;
  /** experts with no token in a step: mean, min and max over steps */
  inactive: { mean: number; min: number; max: number } | null;
  /** mean over steps of |A_s| / E: the locality an expert would show if steps were independent */
  active_fraction: number | null;
  /** P(expert active at step s+1 | active at step s); null with fewer than two steps */
  locality: number | null;
  /** [E][E] Pearson correlation of the experts' share series; 0 where a series is constant; null when
   *  layers x E^2 exceeds the dense limit (the matrix would not fit; top_pairs stay exact) */
  correlation: number[][] | null;
  /** the pairs (a < b) with the highest correlation, highest first (at most 5, r > 0 only) */
  top_pairs: Array<{ a: number; b: number; r: number }>;
}

export interface TraceAnalysis {
  model: string;
  num_experts: number;
  top_k: number;
  /** distinct step numbers seen in the trace */
  steps: number;
  /** one entry per header moe_layers entry, same order */
  layers: LayerAnalysis[];
  /** means over the layers that have steps (null when none has) */
  summary: {
    max_over_mean: number | null;
    gini: number | null;
    inactive_mean: number | null;
    locality: number | null;
  };
}

/** Gini coefficient of non-negative values: with x sorted ascending, (2 Σ_i i x_i)/(n Σx) - (n+1)/n (i from 1). */
export function gini(values: readonly number[]): number {
  const n = values.length;
  const total = values.reduce((a, b) => a + b, 0);
  if (n === 0 || total <= 0) return 0;
  const x = [...values].sort((a, b) => a - b);
  let weighted = 0;
  x.forEach((v, i) => (weighted += (i + 1) * v));
  return Math.max(0, (2 * weighted) / (n * total) - (n + 1) / n);
}

/** Limits of the pairwise sums (defaults hold a few hundred MB at most). */
export interface AnalyzeLimits {
  /** dense E x E cross sums while layers x E^2 <= this (default 2^24 = 128 MB) */
  maxDenseEntries?: number;
  /** sparse case: at most this many co-active pairs over all layers (default 4,000,000) */
  maxSparsePairs?: number;
}

const DEFAULT_LIMITS: Required<AnalyzeLimits> = { maxDenseEntries: 2 ** 24, maxSparsePairs: 4_000_000 };

/** Σ_s share_i share_j for pairs i < j: dense array, or a map keyed i * E + j of the co-active pairs. */
class PairSums {
  private readonly dense: Float64Array | null; // [E*E] at i*E + j, i < j
  private readonly sparse: Map<number, number> | null;

  constructor(
    private readonly E: number,
    dense: boolean,
    private readonly budget: { pairs: number; max: number },
  ) {
    this.dense = dense ? new Float64Array(E * E) : null;
    this.sparse = dense ? null : new Map();
  }

  get isDense(): boolean {
    return this.dense !== null;
  }

  add(i: number, j: number, v: number): void {
    const key = i * this.E + j;
    if (this.dense !== null) {
      this.dense[key] += v;
      return;
    }
    const old = this.sparse!.get(key);
    if (old === undefined) {
      if (++this.budget.pairs > this.budget.max) {
        fail('E_BAD_TRACE', `analyze: more than ${this.budget.max} pairs of experts are active together (${this.E} experts); the correlations need one running sum per such pair, more than analyze holds`);
      }
      this.sparse!.set(key, v);
    } else this.sparse!.set(key, old + v);
  }

  get(i: number, j: number): number {
    const key = i * this.E + j;
    return this.dense !== null ? this.dense[key] : (this.sparse!.get(key) ?? 0);
  }

  /** The co-active pairs [i, j] (i < j); in the dense case every pair. */
  *pairs(): Generator<[number, number]> {
    if (this.dense !== null) {
      for (let i = 0; i < this.E; i++) for (let j = i + 1; j < this.E; j++) yield [i, j];
    } else {
      for (const key of this.sparse!.keys()) yield [Math.floor(key / this.E), key % this.E];
    }
  }
}

/** Running sums for one MoE layer. */
class LayerAccumulator {
  readonly layer: number;
  private readonly E: number;
  private readonly k: number;
  steps = 0;
  tokens = 0;
  private readonly assigned: Float64Array; // [E] assignments per expert
  private readonly sum: Float64Array; // [E] Σ_s share
  private readonly sumSq: Float64Array; // [E] Σ_s share^2
  private readonly cross: PairSums; // Σ_s share_i share_j for i < j
  private readonly activeSteps: Int32Array; // [E] steps where the expert was active
  private readonly minShare: Float64Array; // [E] over active steps, to detect constant series exactly
  private readonly maxShare: Float64Array; // [E]
  private inactiveSum = 0;
  private inactiveMin = Infinity;
  private inactiveMax = -Infinity;
  private activeSum = 0;
  private readonly prev: Uint8Array; // [E] active set of the previous step
  private hasPrev = false;
  private prevSize = 0;
  private carried = 0; // Σ |A_s ∩ A_{s+1}|
  private carriedBase = 0; // Σ |A_s| over steps that have a next step
  private readonly count: Int32Array; // [E] scratch: this record's assignments
  private readonly active: Int32Array; // [E] scratch: this record's active ids, ascending

  constructor(layer: number, E: number, k: number, cross: PairSums) {
    this.layer = layer;
    this.E = E;
    this.k = k;
    this.assigned = new Float64Array(E);
    this.sum = new Float64Array(E);
    this.sumSq = new Float64Array(E);
    this.cross = cross;
    this.activeSteps = new Int32Array(E);
    this.minShare = new Float64Array(E).fill(Infinity);
    this.maxShare = new Float64Array(E).fill(-Infinity);
    this.prev = new Uint8Array(E);
    this.count = new Int32Array(E);
    this.active = new Int32Array(E);
  }

  add(rec: TraceRecord): void {
    const T = rec.experts.length;
    if (T === 0) return;
    const { E, count, active } = this;
    for (const tok of rec.experts) for (const e of tok) count[e]!++;
    let n = 0;
    for (let e = 0; e < E; e++) if (count[e]! > 0) active[n++] = e;
    const denom = T * this.k;
    // O(|A|^2) per step: only active experts have a non-zero share, so only their products move
    for (let a = 0; a < n; a++) {
      const i = active[a]!;
      const si = count[i]! / denom;
      this.assigned[i]! += count[i]!;
      this.sum[i]! += si;
      this.sumSq[i]! += si * si;
      this.activeSteps[i]!++;
      if (si < this.minShare[i]!) this.minShare[i] = si;
      if (si > this.maxShare[i]!) this.maxShare[i] = si;
      for (let b = a + 1; b < n; b++) {
        const j = active[b]!;
        this.cross.add(i, j, si * (count[j]! / denom));
      }
    }
    const inactive = E - n;
    this.inactiveSum += inactive;
    if (inactive < this.inactiveMin) this.inactiveMin = inactive;
    if (inactive > this.inactiveMax) this.inactiveMax = inactive;
    this.activeSum += n / E;
    if (this.hasPrev) {
      let kept = 0;
      for (let a = 0; a < n; a++) kept += this.prev[active[a]!]!;
      this.carried += kept;
      this.carriedBase += this.prevSize;
    }
    this.prev.fill(0);
    for (let a = 0; a < n; a++) this.prev[active[a]!] = 1;
    this.prevSize = n;
    this.hasPrev = true;
    for (let a = 0; a < n; a++) count[active[a]!] = 0;
    this.steps++;
    this.tokens += T;
  }

  /** A series is constant when the expert is never active, or active at every step with one share. */
  private constant(e: number): boolean {
    const as = this.activeSteps[e]!;
    return as === 0 || (as === this.steps && this.minShare[e] === this.maxShare[e]);
  }

  finish(): LayerAnalysis {
    const { E, steps } = this;
    const total = this.assigned.reduce((a, b) => a + b, 0);
    const popularity = Array.from(this.assigned, (c) => (total > 0 ? c / total : 0));
    const corr = this.cross.isDense ? Array.from({ length: E }, () => new Array<number>(E).fill(0)) : null;
    const pairs: Array<{ a: number; b: number; r: number }> = [];
    if (steps > 0) {
      const mean = Float64Array.from(this.sum, (s) => s / steps);
      const sd = mean.map((m, e) => (this.constant(e) ? 0 : Math.sqrt(Math.max(0, this.sumSq[e]! / steps - m * m))));
      if (corr) for (let i = 0; i < E; i++) if (sd[i]! > 0) corr[i]![i] = 1;
      for (const [i, j] of this.cross.pairs()) {
        if (!(sd[i]! > 0 && sd[j]! > 0)) continue;
        const cov = this.cross.get(i, j) / steps - mean[i]! * mean[j]!;
        const r = Math.min(1, Math.max(-1, cov / (sd[i]! * sd[j]!)));
        if (corr) corr[i]![j] = corr[j]![i] = r;
        if (r > 0) pairs.push({ a: i, b: j, r });
      }
    }
    pairs.sort((p, q) => q.r - p.r || p.a - q.a || p.b - q.b);
    const maxPop = popularity.reduce((a, b) => Math.max(a, b), 0);
    return {
      layer: this.layer,
      steps,
      tokens: this.tokens,
      assignments: total,
      popularity,
      max_over_mean: maxPop * E,
      gini: gini(popularity),
      inactive: steps > 0 ? { mean: this.inactiveSum / steps, min: this.inactiveMin, max: this.inactiveMax } : null,
      active_fraction: steps > 0 ? this.activeSum / steps : null,
      locality: this.carriedBase > 0 ? this.carried / this.carriedBase : null,
      correlation: corr,
      top_pairs: pairs.slice(0, 5),
    };
  }
}

/**
 * Analyses records of a trace with this header, in trace order. Accepts any (async) iterable, so tests
 * and callers holding records in memory use the same code path as files.
 */
export async function analyzeRecords(
  header: TraceHeader,
  records: AsyncIterable<TraceRecord> | Iterable<TraceRecord>,
  limits: AnalyzeLimits = {},
): Promise<TraceAnalysis> {
  const { maxDenseEntries, maxSparsePairs } = { ...DEFAULT_LIMITS, ...limits };
  const E = header.num_experts;
  const dense = header.moe_layers.length * E * E <= maxDenseEntries;
  const budget = { pairs: 0, max: maxSparsePairs };
  const acc = header.moe_layers.map((l) => new LayerAccumulator(l, E, header.top_k, new PairSums(E, dense, budget)));
  const byLayer = new Map(header.moe_layers.map((l, i) => [l, acc[i]!]));
  let distinctSteps = 0;
  let lastStep = NaN;
  for await (const rec of records) {
    const a = byLayer.get(rec.layer);
    if (a === undefined) continue; // readTrace rejects such records; in-memory callers may not
    if (rec.step !== lastStep) {
      distinctSteps++;
      lastStep = rec.step;
    }
    a.add(rec);
  }
  const layers = acc.map((a) => a.finish());
  const withSteps = layers.filter((l) => l.steps > 0);
  const meanOf = (xs: Array<number | null>): number | null => {
    const v = xs.filter((x): x is number => x !== null);
    return v.length ? v.reduce((p, q) => p + q, 0) / v.length : null;
  };
  return {
    model: header.model,
    num_experts: header.num_experts,
    top_k: header.top_k,
    steps: distinctSteps,
    layers,
    summary: {
      max_over_mean: meanOf(withSteps.map((l) => l.max_over_mean)),
      gini: meanOf(withSteps.map((l) => l.gini)),
      inactive_mean: meanOf(withSteps.map((l) => l.inactive?.mean ?? null)),
      locality: meanOf(withSteps.map((l) => l.locality)),
    },
  };
}

/** Streams the trace at `path` (.jsonl or .jsonl.gz) once and analyses every MoE layer. */
export async function analyzeTrace(path: string): Promise<TraceAnalysis> {
  const { header, records } = await readTrace(path);
  return analyzeRecords(header, records);
}
