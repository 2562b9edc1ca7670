import type { ModelWeights } from '../model/layer-weights.js';
import type { ModuleTimes } from '../moe/dispatch.js';
import type { AttentionSeq, Backend, GatedFfn, SeqRows } from '../tensor/backend.js';
import { DTYPE_BYTES } from '../tensor/dtype.js';
import type { PoolStats } from '../tensor/native.js';
import type { Weight } from '../tensor/weight.js';

/**
 * Where one decode token's time goes (`bench generate --profile`): every kernel call timed from
 * JavaScript and filed under what it computes (each GEMV with the bytes it streams, so its GB/s),
 * the MoE layer's stages in TypeScript (from the layer's own stage timers, minus the kernels they
 * called), sampling, detokenizing, the thread pool's coordination (native counters) and the cost of
 * one JS -> native call. What is left of the forward is the rest of the TypeScript: embedding row,
 * residual adds, KV-cache copies, argument checks.
 */

/** Kernel categories, in the order a layer runs them. */
export const KERNEL_ROWS = [
  'attn q/k/v GEMV',
  'attn o GEMV',
  'rmsnorm',
  'rope',
  'attention',
  'router GEMV',
  'expert gate+up (fused SwiGLU)',
  'expert down GEMV',
  'experts, one grouped call (gate+up+down)',
  'shared expert / dense MLP',
  'lm_head GEMV',
  'other kernels',
] as const;
export type KernelRow = (typeof KERNEL_ROWS)[number];

interface Tally {
  calls: number;
  ms: number;
  bytes: number;
}

/** Which row each weight of the model is filed under (by identity, so names never matter). */
export function weightRows(w: ModelWeights): Map<Weight, KernelRow> {
  const rows = new Map<Weight, KernelRow>();
  const put = (x: Weight | undefined, r: KernelRow) => x && rows.set(x, r);
  for (const l of w.layers) {
    for (const m of [l.attn.q, l.attn.k, l.attn.v]) put(m, 'attn q/k/v GEMV');
    put(l.attn.o, 'attn o GEMV');
    if (l.moe) {
      put(l.moe.router, 'router GEMV');
      for (const e of l.moe.experts) {
        put(e.gate, 'expert gate+up (fused SwiGLU)');
        put(e.up, 'expert gate+up (fused SwiGLU)');
        put(e.down, 'expert down GEMV');
      }
      for (const m of [l.moe.shared?.gate, l.moe.shared?.up, l.moe.shared?.down, l.moe.sharedGate]) put(m, 'shared expert / dense MLP');
    }
    for (const m of [l.dense?.gate, l.dense?.up, l.dense?.down]) put(m, 'shared expert / dense MLP');
  }
  put(w.lmHead, 'lm_head GEMV');
  return rows;
}

function weightBytes(w: Weight): number {
  let n = 1;
  for (const d of w.shape) n *= d;
  return n * DTYPE_BYTES[w.dtype];
}

/**
 * A Backend that runs `inner` and files each call's wall time (and, for products, the weight bytes
 * it reads) under its row. The clock is read twice per call: about 0.1 us against calls of 5-500 us.
 */
export class ProfilingBackend implements Backend {
  readonly name: string;
  private readonly tallies = new Map<KernelRow, Tally>(KERNEL_ROWS.map((r) => [r, { calls: 0, ms: 0, bytes: 0 }]));

  constructor(
    private readonly inner: Backend,
    private readonly rows: ReadonlyMap<Weight, KernelRow>,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.name = `${inner.name}+profile`;
  }

  private add(row: KernelRow, t0: number, bytes: number): void {
    const t = this.tallies.get(row)!;
    t.calls++;
    t.ms += this.now() - t0;
    t.bytes += bytes;
  }

  private rowOf(w: Weight): KernelRow {
    return this.rows.get(w) ?? 'other kernels';
  }

  matmul(y: Float32Array, x: Float32Array, w: Weight, rows: number, bias?: Weight): void {
    const t0 = this.now();
    this.inner.matmul(y, x, w, rows, bias);
    this.add(this.rowOf(w), t0, weightBytes(w) + (bias ? weightBytes(bias) : 0));
  }

  rmsNorm(y: Float32Array, x: Float32Array, g: Weight, rows: number, eps: number): void {
    const t0 = this.now();
    this.inner.rmsNorm(y, x, g, rows, eps);
    this.add('rmsnorm', t0, 0);
  }

  rope(x: Float32Array, seqs: readonly SeqRows[], heads: number, headDim: number, theta: number): void {
    const t0 = this.now();
    this.inner.rope(x, seqs, heads, headDim, theta);
    this.add('rope', t0, 0);
  }

  attention(out: Float32Array, q: Float32Array, seqs: readonly AttentionSeq[], heads: number, kvHeads: number, headDim: number, window: number): void {
    const t0 = this.now();
    this.inner.attention(out, q, seqs, heads, kvHeads, headDim, window);
    this.add('attention', t0, 0);
  }

  siluMul(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
    const t0 = this.now();
    this.inner.siluMul(out, gate, up, n);
    this.add('other kernels', t0, 0);
  }

  swiGlu(out: Float32Array, x: Float32Array, gate: Weight, up: Weight, rows: number): void {
    const t0 = this.now();
    this.inner.swiGlu(out, x, gate, up, rows);
    this.add(this.rowOf(gate), t0, weightBytes(gate) + weightBytes(up));
  }

  swiGluExperts(out: Float32Array, x: Float32Array, act: Float32Array, experts: readonly GatedFfn[], rowStarts: Int32Array): void {
    const t0 = this.now();
    this.inner.swiGluExperts(out, x, act, experts, rowStarts);
    let bytes = 0;
    for (let g = 0; g < experts.length; g++) if (rowStarts[g + 1]! > rowStarts[g]!) bytes += weightBytes(experts[g]!.gate) + weightBytes(experts[g]!.up) + weightBytes(experts[g]!.down);
    this.add('experts, one grouped call (gate+up+down)', t0, bytes);
  }

  /** Calls, ms and bytes per row since construction or the last reset. */
  snapshot(): Map<KernelRow, Readonly<Tally>> {
    return new Map([...this.tallies].map(([r, t]) => [r, { ...t }]));
  }

  reset(): void {
    for (const t of this.tallies.values()) Object.assign(t, { calls: 0, ms: 0, bytes: 0 });
  }
}

/** What the profile worker measured over `tokens` decode steps (totals, ms). */
export interface DecodeProfile {
  readonly tokens: number;
  readonly threads: number;
  /** wall time of the forwards (model only) */
  readonly forwardMs: number;
  readonly sampleMs: number;
  readonly detokenizeMs: number;
  readonly kernels: ReadonlyMap<KernelRow, Readonly<Tally>>;
  /** the MoE layers' stage timers, summed over layers and steps */
  readonly moe: ModuleTimes;
  readonly pool: PoolStats;
  /** one JS -> native call with no work (argument checks and N-API), us */
  readonly callOverheadUs: number;
  /** the path the model's decode token takes unprofiled (Transformer.decodePath) */
  readonly decodePath: 'fused' | 'per-op';
  /** the token unprofiled, ms: on the fused path (when the model takes it) and on the per-op path */
  readonly fusedMs?: number;
  readonly perOpMs: number;
  /** the fused step's split per token (clock reads around its calls): ms, and weight bytes per token */
  readonly fused?: FusedSplit;
}

export interface FusedSplit {
  readonly tokenMs: number;
  readonly attentionMs: number;
  readonly routingMs: number;
  readonly expertsMs: number;
  readonly attentionBytes: number;
  readonly expertBytes: number;
}

/** One row of the per-token breakdown. */
export interface ProfileRow {
  readonly what: string;
  /** ms per decode token */
  readonly ms: number;
  readonly calls: number;
  /** weight GB/s of a product row (bytes it streamed over its time) */
  readonly gbs?: number;
  /** a detail of time already counted in another row (not added to the total) */
  readonly memo?: boolean;
  readonly note?: string;
}

/**
 * The breakdown per decode token. The rows that are not memos add up to forward + sampling +
 * detokenizing: kernels, the MoE stages' TypeScript (each stage's time minus its kernels), and the
 * remainder of the forward as "other TypeScript".
 */
export function decodeBreakdown(p: DecodeProfile): ProfileRow[] {
  const per = (x: number) => x / p.tokens;
  const rows: ProfileRow[] = [];
  let kernelMs = 0;
  let calls = 0;
  for (const r of KERNEL_ROWS) {
    const t = p.kernels.get(r);
    if (!t || t.calls === 0) continue;
    kernelMs += t.ms;
    calls += t.calls;
    rows.push({ what: r, ms: per(t.ms), calls: per(t.calls), gbs: t.bytes > 0 ? t.bytes / (t.ms / 1000) / 1e9 : undefined });
  }
  const k = (r: KernelRow) => p.kernels.get(r)?.ms ?? 0;
  const routing = Math.max(0, p.moe.gate - k('router GEMV'));
  const expertTs = Math.max(0, p.moe.expert - k('expert gate+up (fused SwiGLU)') - k('expert down GEMV') - k('experts, one grouped call (gate+up+down)'));
  const moeTs = [
    { what: 'MoE routing: softmax + top-k (TS)', ms: routing },
    { what: 'MoE plan + prepare (TS)', ms: p.moe.order + p.moe.exchange },
    { what: 'MoE experts stage outside kernels (TS)', ms: expertTs },
    { what: 'MoE combine (TS)', ms: p.moe.combine },
  ];
  for (const m of moeTs) rows.push({ what: m.what, ms: per(m.ms), calls: 0 });
  const moeTsMs = moeTs.reduce((a, m) => a + m.ms, 0);
  const other = Math.max(0, p.forwardMs - kernelMs - moeTsMs);
  rows.push({ what: 'other TS: embedding, residual adds, KV copy, checks', ms: per(other), calls: 0 });
  rows.push({ what: 'sampling (argmax over the vocabulary)', ms: per(p.sampleMs), calls: 0 });
  rows.push({ what: 'detokenize', ms: per(p.detokenizeMs), calls: 0 });
  const callMs = (calls * p.callOverheadUs) / 1000;
  rows.push({ what: 'memo: JS -> native call overhead (est.)', ms: per(callMs), calls: per(calls), memo: true, note: `${p.callOverheadUs.toFixed(2)} us per call` });
  rows.push({ what: 'memo: pool, caller waiting for workers', ms: per(p.pool.callerWaitMs), calls: per(p.pool.jobs), memo: true, note: `${per(p.pool.jobs).toFixed(0)} split jobs, ${per(p.pool.inlineJobs).toFixed(0)} inline per token` });
  const wakeUs = p.pool.pickups > 0 ? (1000 * p.pool.wakeMs) / p.pool.pickups : 0;
  rows.push({ what: 'memo: pool, worker joins after publish', ms: per(p.pool.wakeMs), calls: per(p.pool.pickups), memo: true, note: `mean ${wakeUs.toFixed(2)} us; ${per(p.pool.sleepWakes).toFixed(1)} jobs per token woke a sleeping worker` });
  return rows;
}
