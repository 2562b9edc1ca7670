import { fail } from '../errors.js';
import type { LayerActivity } from '../trace/activity.js';

/**
 * Expert placement: which device holds each expert of one MoE layer (techniques.md §3; Huang et al.,
 * "Towards MoE Deployment", arXiv 2303.06182). Every policy gives each of the D devices exactly E/D
 * experts, so memory per device is the same and only the routed load differs. A placement is an
 * Int32Array deviceOf[expert].
 *
 * The fitted policies read an activation history: per step b the assignments c_bm of each expert m
 * among the step's T_b·k (the share A_mb = c_bm / (T_b·k) of the paper). Loads are compared exactly:
 * mean shares are kept as integers over one common denominator (the counts scaled by the lcm of the
 * step sizes), and correlations are rounded to multiples of 2^-30 before they are summed, so a device's
 * load is an exact function of its members, whatever the summation order, and "ties to the lowest
 * device index" means the same on every machine.
 */
export const PLACEMENT_POLICIES = ['contiguous', 'roundrobin', 'greedy', 'anticorr'] as const;
export type PlacementPolicy = (typeof PLACEMENT_POLICIES)[number];

/** The fitting steps of one layer in CSR form (a window of a LayerActivity): step b's active experts
 *  are experts[offsets[b] .. offsets[b+1]), with counts[] assignments each, T_b = tokens[b]. */
export interface ShareHistory {
  numExperts: number;
  topK: number;
  tokens: ArrayLike<number>; // [S]
  offsets: ArrayLike<number>; // [S + 1]
  experts: ArrayLike<number>; // [pairs] active expert ids
  counts: ArrayLike<number>; // [pairs] assignments
}

/** Mean shares as exact fractions: Ã_m = weight[m] / denominator. */
export interface ExactMeans {
  weight: bigint[]; // [E]
  denominator: bigint;
}

/** Correlations are stored and summed as integers in units of this (|r| <= 1 fits an Int32). */
export const CORRELATION_QUANTUM = 2 ** -30;

/** anticorr keeps one number per pair of experts; above this many experts it refuses (greedy does not). */
export const MAX_ANTICORR_EXPERTS = 4096;

export function checkDevices(E: number, D: number, option = '--devices'): void {
  if (!Number.isInteger(D) || D < 1 || D > E || E % D !== 0) {
    fail('E_BAD_OPTION', `${option} must divide the number of experts (${E}) so each device gets E/D slots, got ${D}`);
  }
}

/** Expert m on device floor(m / (E/D)): neighbouring ids together, as a plain sharded checkpoint does. */
export function contiguousPlacement(E: number, D: number): Int32Array {
  checkDevices(E, D);
  const per = E / D;
  return Int32Array.from({ length: E }, (_, m) => Math.floor(m / per));
}

/** Expert m on device m mod D. */
export function roundRobinPlacement(E: number, D: number): Int32Array {
  checkDevices(E, D);
  return Int32Array.from({ length: E }, (_, m) => m % D);
}

const gcd = (a: bigint, b: bigint): bigint => (b === 0n ? a : gcd(b, a % b));

/**
 * Ã_m exactly: Σ_b c_bm / (T_b·k) / S = weight[m] / denominator with weight[m] = Σ_b c_bm·(L / T_b)
 * and denominator = S·k·L, L the lcm of the T_b (all zero for an empty history).
 */
export function exactMeans(h: ShareHistory): ExactMeans {
  const S = h.tokens.length;
  let L = 1n;
  for (let b = 0; b < S; b++) {
    const T = BigInt(h.tokens[b]);
    L = (L / gcd(L, T)) * T;
  }
  const weight = new Array<bigint>(h.numExperts).fill(0n);
  for (let b = 0; b < S; b++) {
    const scale = L / BigInt(h.tokens[b]);
    for (let p = h.offsets[b]; p < h.offsets[b + 1]; p++) weight[h.experts[p]] += BigInt(h.counts[p]) * scale;
  }
  return { weight, denominator: BigInt(Math.max(S, 1) * h.topK) * L };
}

/**
 * Pearson correlation of every pair of experts' share series, [E × E] row-major, as integers in units
 * of CORRELATION_QUANTUM. A constant series has no defined correlation; it counts as 0, detected
 * exactly (all values equal, never active counting as all 0) rather than by a variance threshold, so
 * rounding cannot invent a correlation. Cost O(E² + Σ_b |A_b|²): only co-active pairs add products.
 */
export function correlationQuanta(h: ShareHistory): Int32Array {
  const E = h.numExperts;
  const S = h.tokens.length;
  if (E > MAX_ANTICORR_EXPERTS) {
    fail('E_BAD_OPTION', `anticorr placement correlates every pair of experts and supports at most ${MAX_ANTICORR_EXPERTS} experts per layer, got ${E} (greedy has no such limit)`);
  }
  const sum = new Float64Array(E); // [E] Σ_b share
  const sumSq = new Float64Array(E); // [E]
  const activeSteps = new Int32Array(E); // [E]
  const first = new Float64Array(E).fill(NaN); // [E] share at the first active step
  const varies = new Uint8Array(E); // [E] two active steps with different shares
  const dot = new Float64Array(E * E); // [E, E] Σ_b share_a share_m, upper triangle
  for (let b = 0; b < S; b++) {
    const denom = h.tokens[b] * h.topK;
    const from = h.offsets[b];
    const to = h.offsets[b + 1];
    for (let p = from; p < to; p++) {
      const a = h.experts[p];
      const x = h.counts[p] / denom;
      sum[a] += x;
      sumSq[a] += x * x;
      activeSteps[a]++;
      if (Number.isNaN(first[a])) first[a] = x;
      else if (first[a] !== x) varies[a] = 1;
      for (let q = p + 1; q < to; q++) {
        const m = h.experts[q];
        const y = h.counts[q] / denom;
        if (a < m) dot[a * E + m] += x * y;
        else dot[m * E + a] += x * y;
      }
    }
  }
  // a series is constant when the expert is never active, or active at every step with one share
  const norm = new Float64Array(E); // sqrt(Σ (x - mean)^2), 0 for a constant series
  for (let m = 0; m < E; m++) {
    const constant = activeSteps[m] === 0 || (activeSteps[m] === S && varies[m] === 0);
    norm[m] = constant ? 0 : Math.sqrt(Math.max(0, sumSq[m] - (sum[m] * sum[m]) / S));
  }
  const out = new Int32Array(E * E);
  const unit = 1 / CORRELATION_QUANTUM;
  for (let a = 0; a < E; a++) {
    if (norm[a] === 0) continue;
    out[a * E + a] = unit;
    for (let m = a + 1; m < E; m++) {
      if (norm[m] === 0) continue;
      const r = (dot[a * E + m] - (sum[a] * sum[m]) / S) / (norm[a] * norm[m]);
      out[a * E + m] = out[m * E + a] = Math.round(Math.min(1, Math.max(-1, r)) * unit);
    }
  }
  return out;
}

/** Experts by mean share, largest first; equal shares keep ascending id, so the order is reproducible. */
function descendingOrder(weight: bigint[]): number[] {
  return Array.from(weight.keys()).sort((a, b) => (weight[b] > weight[a] ? 1 : weight[b] < weight[a] ? -1 : a - b));
}

/**
 * Shared placement loop of greedy and anti-correlation (techniques.md §3): experts in descending mean
 * share, each to the device with the smallest `cost` among those with a free slot (E/D slots each),
 * ties to the lowest device index. `cost` is exact (an integer), so ties are real ties.
 */
function packInOrder(weight: bigint[], D: number, cost: (a: number, device: number, members: number[][], load: bigint[]) => bigint): Int32Array {
  const E = weight.length;
  checkDevices(E, D);
  const per = E / D;
  const deviceOf = new Int32Array(E).fill(-1);
  const members: number[][] = Array.from({ length: D }, () => []);
  const load = new Array<bigint>(D).fill(0n); // [D] Σ weight of the members
  for (const a of descendingOrder(weight)) {
    let best = -1;
    let bestCost = 0n;
    for (let n = 0; n < D; n++) {
      if (members[n].length >= per) continue;
      const c = cost(a, n, members, load);
      if (best < 0 || c < bestCost) {
        best = n;
        bestCost = c;
      }
    }
    deviceOf[a] = best;
    members[best].push(a);
    load[best] += weight[a];
  }
  return deviceOf;
}

/** Greedy: a device's load is the sum of Ã_m over its experts so far. */
export function greedyPlacement(means: ExactMeans, D: number): Int32Array {
  return packInOrder(means.weight, D, (_a, n, _members, load) => load[n]);
}

/**
 * Anti-correlation: placing expert a, a device's load is Σ_{m on device} (Ã_m + 0.5 · S_am), with S the
 * Pearson correlation of activation series (`correlationQuanta`), so experts that fire together land
 * on different devices. In integers, times 2^31 · denominator: 2^31 · Σ weight + denominator · Σ quanta.
 */
export function antiCorrPlacement(means: ExactMeans, corr: Int32Array, D: number): Int32Array {
  const E = means.weight.length;
  const half = BigInt(2 / CORRELATION_QUANTUM);
  return packInOrder(means.weight, D, (a, n, members, load) => {
    let q = 0; // Σ quanta: at most 2^30 · E/D in magnitude, exact in a double
    for (const m of members[n]) q += corr[a * E + m];
    return half * load[n] + means.denominator * BigInt(q);
  });
}

/** Any policy by name; the fitted ones need the history of the fitting steps. */
export function placeExperts(policy: PlacementPolicy, E: number, D: number, history?: ShareHistory): Int32Array {
  switch (policy) {
    case 'contiguous':
      return contiguousPlacement(E, D);
    case 'roundrobin':
      return roundRobinPlacement(E, D);
    case 'greedy':
    case 'anticorr': {
      const h = history ?? { numExperts: E, topK: 1, tokens: [], offsets: [0], experts: [], counts: [] };
      return policy === 'greedy' ? greedyPlacement(exactMeans(h), D) : antiCorrPlacement(exactMeans(h), correlationQuanta(h), D);
    }
  }
}

/** The first fitting step is 0; test steps are [fitEnd(S), S). */
export function fitEnd(steps: number): number {
  return Math.floor(steps / 2);
}

/** Steps [0, to) of one layer as a placement history (views, no copy). */
export function shareHistory(act: LayerActivity, E: number, k: number, to: number): ShareHistory {
  return { numExperts: E, topK: k, tokens: act.tokens.subarray(0, to), offsets: act.offsets.subarray(0, to + 1), experts: act.experts, counts: act.counts };
}

/** Fits `policy` on the first half of one layer's steps (a layer needs 2 steps to be evaluated on the second). */
export function fitLayerPlacement(policy: PlacementPolicy, act: LayerActivity, E: number, k: number, D: number): Int32Array {
  const S = act.steps.length;
  const history = policy === 'greedy' || policy === 'anticorr' ? shareHistory(act, E, k, fitEnd(S)) : undefined;
  return placeExperts(policy, E, D, history);
}
