import type { DispatchPlan } from '../moe/dispatch.js';
import type { Communicator } from './communicator.js';
import { rebalanceExperts } from './eplb.js';
import type { EpPlacement, ExpertMap, LayerExperts } from './expert-map.js';
import { placeExperts, type ShareHistory } from './placement.js';

/** One rebalance: at which step, and the window's Max Load under the old and the new placement. */
export interface RebalanceEvent {
  readonly step: number;
  readonly before: number;
  readonly after: number;
}

/**
 * Online rebalancing (`--rebalance-every K`): every rank records its own per-expert counts of the
 * last K steps; at the K-th step the window is summed over the ranks (one all-reduce), every rank
 * re-fits the placement on it with the same deterministic code (`placeExperts` for greedy and
 * anticorr; EPLB for eplb; greedy when the load-time placement was not fitted), so they all agree on
 * the new map without further messages. Moving an expert is then only a change of holder: each host
 * has the checkpoint mapped, and the new holder reads the expert's pages on first use.
 *
 * Max Load here is the busiest rank's share of the window's rows (each expert's count split evenly
 * over its copies), before and after: the figure the re-fit lowers.
 */
export class Rebalancer {
  private readonly window: Float64Array; // [K, moeLayers, E + 1] local counts, then tokens
  private readonly moeIndex: Int32Array; // model layer -> index among MoE layers (-1 dense)
  private step = 0;
  readonly events: RebalanceEvent[] = [];

  constructor(
    private readonly comm: Communicator,
    private readonly every: number,
    private readonly E: number,
    moeLayers: readonly boolean[],
    private readonly policy: EpPlacement,
    private readonly replicas: number | undefined,
  ) {
    let n = 0;
    this.moeIndex = Int32Array.from(moeLayers, (m) => (m ? n++ : -1));
    this.window = new Float64Array(every * n * (E + 1));
  }

  /** The layer's local counts and tokens of the current step. */
  observe(layer: number, plan: DispatchPlan, tokens: number): void {
    const L = this.window.length / this.every / (this.E + 1);
    const at = ((this.step % this.every) * L + this.moeIndex[layer]!) * (this.E + 1);
    for (let e = 0; e < this.E; e++) this.window[at + e] = plan.counts[e]!;
    this.window[at + this.E] = tokens;
  }

  /**
   * Called by every rank at the start of every step that runs. Returns the new map when this step
   * completes a window (a collective: every rank calls it at the same step), else null.
   */
  beginStep(map: ExpertMap, k: number): ExpertMap | null {
    const due = this.step > 0 && this.step % this.every === 0;
    this.step++;
    if (!due) return null;
    const sum = this.window.slice();
    this.comm.allReduce(sum, 'sum');
    this.window.fill(0);
    const layers = map.layers.map((old, l) => (old ? this.refit(sum, this.moeIndex[l]!, k, map.ranks) : null));
    const next: ExpertMap = { ...map, layers };
    const before = this.windowMaxLoad(sum, map);
    const after = this.windowMaxLoad(sum, next);
    this.events.push({ step: this.step - 1, before, after });
    return next;
  }

  private refit(sum: Float64Array, m: number, k: number, N: number): LayerExperts {
    const E = this.E;
    const L = sum.length / this.every / (E + 1);
    const row = (s: number): number => (s * L + m) * (E + 1);
    if (this.policy === 'eplb') {
      const load = new Array<number>(E).fill(0);
      for (let s = 0; s < this.every; s++) for (let e = 0; e < E; e++) load[e]! += sum[row(s) + e]!;
      const replicas = this.replicas ?? E;
      const plan = rebalanceExperts([load], { replicas, groups: 1, nodes: 1, gpus: N }).layers[0]!;
      const holders = plan.log2phy.map((slots) => Int32Array.from(slots.filter((x) => x >= 0), (x) => Math.floor(x / (replicas / N))));
      return { holders };
    }
    // the window as a placement history: one CSR row per step with tokens
    const tokens: number[] = [];
    const offsets = [0];
    const experts: number[] = [];
    const counts: number[] = [];
    for (let s = 0; s < this.every; s++) {
      const t = sum[row(s) + E]!;
      if (t === 0) continue;
      tokens.push(t);
      for (let e = 0; e < E; e++) {
        if (sum[row(s) + e]! > 0) {
          experts.push(e);
          counts.push(sum[row(s) + e]!);
        }
      }
      offsets.push(experts.length);
    }
    const history: ShareHistory = { numExperts: E, topK: k, tokens, offsets, experts, counts };
    const deviceOf = placeExperts(this.policy === 'anticorr' ? 'anticorr' : 'greedy', E, N, history);
    return { holders: Array.from(deviceOf, (r) => Int32Array.of(r)) };
  }

  /** Mean over MoE layers of the busiest rank's share of the window's rows under `map`. */
  private windowMaxLoad(sum: Float64Array, map: ExpertMap): number {
    const E = this.E;
    const L = sum.length / this.every / (E + 1);
    let total = 0;
    map.layers.forEach((layer, l) => {
      if (!layer) return;
      const m = this.moeIndex[l]!;
      const load = new Float64Array(map.ranks);
      let all = 0;
      for (let s = 0; s < this.every; s++) {
        for (let e = 0; e < E; e++) {
          const c = sum[(s * L + m) * (E + 1) + e]!;
          all += c;
          for (const r of layer.holders[e]!) load[r]! += c / layer.holders[e]!.length;
        }
      }
      total += all > 0 ? Math.max(...load) / all : 0;
    });
    return total / L;
  }
}
