import { fail } from '../errors.js';

/**
 * Expert placement: which device holds each expert of one MoE layer (techniques.md §3; Huang et al.,
 * "Towards MoE Deployment", arXiv 2303.06182). Every policy gives each of the D devices exactly E/D
 * experts, so memory per device is the same and only the routed load differs. A placement is an
 * Int32Array deviceOf[expert].
 *
 * The fitted policies read an activation history: shares[b * E + m] = fraction of step b's
 * assignments routed to expert m (A_mb in the paper), for the fitting steps only.
 */
export const PLACEMENT_POLICIES = ['contiguous', 'roundrobin', 'greedy', 'anticorr'] as const;
export type PlacementPolicy = (typeof PLACEMENT_POLICIES)[number];

/** Shares of a history window: [steps × E] row-major, one row per step. */
export interface ShareHistory {
  steps: number;
  experts: number;
  shares: Float64Array; // [steps * experts]
}

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

/** Ã_m: the mean share of each expert over the history steps (0 for an empty history). */
export function meanShares(h: ShareHistory): Float64Array {
  const mean = new Float64Array(h.experts);
  for (let b = 0; b < h.steps; b++) {
    for (let m = 0; m < h.experts; m++) mean[m] += h.shares[b * h.experts + m];
  }
  if (h.steps > 0) for (let m = 0; m < h.experts; m++) mean[m] /= h.steps;
  return mean;
}

/** Experts by mean share, largest first; equal shares keep ascending id, so the order is reproducible. */
function descendingOrder(mean: Float64Array): number[] {
  return Array.from(mean.keys()).sort((a, b) => mean[b] - mean[a] || a - b);
}

/**
 * Pearson correlation of every pair of experts' share series: [E × E] row-major. A constant series has
 * no defined correlation; it counts as 0, detected exactly (all values equal) rather than by
 * a variance threshold, so rounding in the mean cannot invent a correlation.
 */
export function correlationMatrix(h: ShareHistory): Float64Array {
  const E = h.experts;
  const S = h.steps;
  const centred = new Float64Array(S * E); // [steps, experts] deviations from each expert's mean
  const norm = new Float64Array(E); // sqrt of the sum of squared deviations; 0 marks a constant series
  const mean = meanShares(h);
  for (let m = 0; m < E; m++) {
    let constant = true;
    let ss = 0;
    for (let b = 0; b < S; b++) {
      const v = h.shares[b * E + m];
      if (v !== h.shares[m]) constant = false;
      const d = v - mean[m];
      centred[b * E + m] = d;
      ss += d * d;
    }
    norm[m] = constant ? 0 : Math.sqrt(ss);
  }
  const corr = new Float64Array(E * E);
  for (let a = 0; a < E; a++) {
    for (let c = a; c < E; c++) {
      let r = 0;
      if (norm[a] !== 0 && norm[c] !== 0) {
        let dot = 0;
        for (let b = 0; b < S; b++) dot += centred[b * E + a] * centred[b * E + c];
        r = dot / (norm[a] * norm[c]);
      }
      corr[a * E + c] = r;
      corr[c * E + a] = r;
    }
  }
  return corr;
}

/**
 * Shared placement loop of greedy and anti-correlation (techniques.md §3): experts in descending mean
 * share, each to the device with the smallest `cost` among those with a free slot (E/D slots each),
 * ties to the lowest device index.
 */
function packInOrder(mean: Float64Array, D: number, cost: (a: number, device: number, members: number[][]) => number): Int32Array {
  const E = mean.length;
  checkDevices(E, D);
  const per = E / D;
  const deviceOf = new Int32Array(E).fill(-1);
  const members: number[][] = Array.from({ length: D }, () => []);
  for (const a of descendingOrder(mean)) {
    let best = -1;
    let bestCost = Infinity;
    for (let n = 0; n < D; n++) {
      if (members[n].length >= per) continue;
      const c = cost(a, n, members);
      if (best < 0 || c < bestCost) {
        best = n;
        bestCost = c;
      }
    }
    deviceOf[a] = best;
    members[best].push(a);
  }
  return deviceOf;
}

/** Greedy: a device's load is the sum of Ã_m over its experts so far. */
export function greedyPlacement(mean: Float64Array, D: number): Int32Array {
  return packInOrder(mean, D, (_a, n, members) => members[n].reduce((s, m) => s + mean[m], 0));
}

/**
 * Anti-correlation: placing expert a, a device's load is Σ_{m on device} (Ã_m + 0.5 · S_am), with S the
 * Pearson correlation of activation series, so experts that fire together land on different devices.
 */
export function antiCorrPlacement(mean: Float64Array, corr: Float64Array, D: number): Int32Array {
  const E = mean.length;
  return packInOrder(mean, D, (a, n, members) => members[n].reduce((s, m) => s + mean[m] + 0.5 * corr[a * E + m], 0));
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
      const h = history ?? { steps: 0, experts: E, shares: new Float64Array(0) };
      const mean = meanShares(h);
      return policy === 'greedy' ? greedyPlacement(mean, D) : antiCorrPlacement(mean, correlationMatrix(h), D);
    }
  }
}
