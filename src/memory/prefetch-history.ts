import type { Prefetcher, PrefetchContext } from './prefetch.js';

/**
 * Activation-aware prefetch from the run's own history, after MoE-Infinity (Xue et al., arXiv
 * 2401.14361): count how often expert b of the next MoE layer was active in a step where expert a of
 * this layer was. Given this step's active experts A, predict every b whose mean over a in A of
 * P(b | a) = count(a, b) / steps(a) is at least 1/2, most likely first (experts never seen count as
 * 0). Nothing is predicted before a pair has been seen.
 */
export class HistoryPrefetcher implements Prefetcher {
  readonly name = 'history';
  private readonly experts: Int32Array; // [layers] experts of each MoE layer, 0: dense
  private readonly nextOf: Int32Array; // [layers] next MoE layer, -1: none
  private readonly prevOf: Int32Array; // [layers] previous MoE layer, -1: none
  /** per layer: [experts(layer) * experts(next)] co-activation counts with the next MoE layer */
  private readonly counts: (Float64Array | undefined)[];
  private readonly lastActive: Int32Array[]; // per layer: this step's active experts
  private readonly lastCount: Int32Array; // [layers]
  private readonly seen: Float64Array[]; // per layer: [experts] steps in which each expert was active
  private score = new Float64Array(0);

  constructor(ctx: PrefetchContext) {
    const L = ctx.layers.length;
    this.experts = Int32Array.from(ctx.layers, (w) => w?.router.shape[0] ?? 0);
    this.nextOf = new Int32Array(L).fill(-1);
    this.prevOf = new Int32Array(L).fill(-1);
    let moe = -1;
    for (let l = 0; l < L; l++) {
      if (!this.experts[l]) continue;
      if (moe >= 0) {
        this.nextOf[moe] = l;
        this.prevOf[l] = moe;
      }
      moe = l;
    }
    this.counts = Array.from({ length: L }, (_, l) => (this.nextOf[l]! >= 0 ? new Float64Array(this.experts[l]! * this.experts[this.nextOf[l]!]!) : undefined));
    this.lastActive = Array.from({ length: L }, (_, l) => new Int32Array(this.experts[l]!));
    this.lastCount = new Int32Array(L);
    this.seen = Array.from({ length: L }, (_, l) => new Float64Array(this.experts[l]!));
  }

  observe(layer: number, active: readonly number[]): void {
    const mine = this.lastActive[layer]!;
    for (let i = 0; i < active.length; i++) mine[i] = active[i]!;
    this.lastCount[layer] = active.length;
    const p = this.prevOf[layer]!;
    if (p < 0) return;
    const c = this.counts[p]!;
    const En = this.experts[layer]!;
    const prev = this.lastActive[p]!;
    for (let i = 0; i < this.lastCount[p]!; i++) {
      this.seen[p]![prev[i]!]! += 1;
      for (const b of active) c[prev[i]! * En + b]! += 1;
    }
  }

  predict(layer: number, next: number, _hidden: Float32Array, _tokens: number, active: readonly number[], out: number[]): void {
    const c = this.counts[layer];
    if (!c || this.nextOf[layer] !== next) return;
    const En = this.experts[next]!;
    if (this.score.length < En) this.score = new Float64Array(En);
    const score = this.score.fill(0, 0, En);
    const seen = this.seen[layer]!;
    for (const a of active) {
      if (seen[a] === 0) continue;
      for (let b = 0; b < En; b++) score[b]! += c[a * En + b]! / seen[a]! / active.length;
    }
    for (let b = 0; b < En; b++) if (score[b]! >= 0.5) out.push(b);
    out.sort((x, y) => score[y]! - score[x]! || x - y);
  }
}
