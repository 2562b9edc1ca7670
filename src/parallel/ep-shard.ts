import { fail } from '../errors.js';
import type { DispatchPolicy, ExpertJob, ExpertRows } from '../moe/dispatch.js';
import { timed } from '../moe/dispatch-exec.js';
import type { Routing } from '../moe/routing.js';
import type { SwiGluWeights } from '../moe/swiglu.js';
import type { Weight } from '../tensor/weight.js';
import type { Communicator } from './communicator.js';
import { total } from './communicator.js';
import type { EpCounters } from './ep-dispatch.js';

/** Rows [start, start + size) of the FFN width that rank r of N holds: contiguous, remainders to the first ranks. */
export function sliceRange(ffn: number, rank: number, N: number): { start: number; size: number } {
  const base = Math.floor(ffn / N);
  const extra = ffn % N;
  return { start: rank * base + Math.min(rank, extra), size: base + (rank < extra ? 1 : 0) };
}

/**
 * Rank `rank`'s slice of one expert (MoEShard, Balmau et al., arXiv 2503.08467): gate and up split by
 * rows of their [ffn, hidden] matrices (a view into the mapped file), down by columns of its [hidden,
 * ffn] matrix (copied, since those columns are not contiguous). silu(x·gateᵀ)·(x·upᵀ) is elementwise
 * over ffn, so Σ_r slice_r(x) is the whole expert's output.
 */
export function sliceExpert(w: SwiGluWeights, rank: number, N: number): SwiGluWeights {
  const [F, H] = w.gate.shape as [number, number];
  if (F < N) fail('E_BAD_OPTION', `--ep-mode shard: the experts' FFN width ${F} is smaller than --ranks ${N}`);
  const { start, size } = sliceRange(F, rank, N);
  const rows = (m: Weight): Weight => ({ ...m, shape: [size, H], data: m.data.subarray(start * H, (start + size) * H) });
  const down = w.down;
  const data = down.dtype === 'f32' ? new Float32Array(H * size) : new Uint16Array(H * size);
  for (let i = 0; i < H; i++) data.set(down.data.subarray(i * F + start, i * F + start + size), i * size);
  return { gate: rows(w.gate), up: rows(w.up), down: { ...down, shape: [H, size], data } };
}

/** The batch of every rank, gathered on each: tokens, their routing and the plan over them. */
interface Gathered {
  readonly job: ExpertJob;
  /** [ranks] tokens of each rank */
  readonly tokens: Int32Array;
  expertStart: number;
}

/**
 * MoEShard's forward as a Prepare/Finalize pair: every rank holds a slice of every expert, so every
 * rank's load is the same whatever the routing skew. Prepare all-gathers the tokens and their routing
 * and lets the inner policy plan and lay out the whole batch; the Experts stage runs this rank's slices
 * (the provider serves slices); Finalize combines the weighted partial outputs in token order and a
 * reduce-scatter sums the ranks' partials and returns each rank its own tokens. The inner policy must
 * be dropless (a capacity over the gathered batch would change which tokens drop).
 */
export function shardedExperts(inner: DispatchPolicy, comm: Communicator, counters: EpCounters): DispatchPolicy {
  if (!inner.dropless) fail('E_BAD_OPTION', `--ep-mode shard needs a dropless gating policy (got --gating ${inner.name})`);
  const N = comm.size;
  const batches = new WeakMap<ExpertJob, Gathered>();
  const exchanging = <T>(job: ExpertJob, f: () => T): T => {
    const ms0 = comm.stats.ms;
    const r = f();
    job.times.exchange += comm.stats.ms - ms0;
    counters.exchangeMs += comm.stats.ms - ms0;
    return r;
  };
  return {
    name: `${inner.name}+shard`,
    dropless: true,
    plan: (routing, shape) => inner.plan(routing, shape),
    chunks: (plan) => [[0, plan.offsets[plan.numExperts]!]],
    prepare(job: ExpertJob): ExpertRows {
      const { hidden: H, buffers, routing } = job;
      const { tokens, K, x, experts, weights } = exchanging(job, () => {
        // tokens and k of every rank (k can differ: expert-choice routing pads to its batch's largest)
        const shapes = new Int32Array(2 * N);
        comm.allGatherV(Int32Array.of(job.tokens, routing.k), shapes, new Int32Array(N).fill(2));
        const tokens = Int32Array.from({ length: N }, (_, r) => shapes[2 * r]!);
        const K = Math.max(...Array.from({ length: N }, (_, r) => shapes[2 * r + 1]!));
        const T = total(tokens);
        const x = buffers.get('shard.x', T * H); // [T, H] every rank's tokens, rank order
        comm.allGatherV(job.x.subarray(0, job.tokens * H), x, tokens.map((t) => t * H));
        const experts = new Int32Array(T * K);
        const weights = new Float32Array(T * K);
        comm.allGatherV(padded(routing.experts, job.tokens, routing.k, K, -1), experts, tokens.map((t) => t * K));
        comm.allGatherV(padded(routing.weights, job.tokens, routing.k, K, 0), weights, tokens.map((t) => t * K));
        return { tokens, K, x, experts, weights };
      });
      const T = total(tokens);
      const all: Routing = { tokens: T, k: K, experts, weights };
      const plan = timed(job.times, 'order', () => inner.plan(all, { experts: job.plan.numExperts, hidden: H, ffn: 0 }));
      const out = buffers.get('shard.partial', T * H); // [T, H] this rank's share of every token's output
      out.fill(0);
      const g: Gathered = { job: { ...job, routing: all, plan, x, out, tokens: T }, tokens, expertStart: 0 };
      batches.set(job, g);
      const rows = inner.prepare(g.job, 0, plan.offsets[plan.numExperts]!);
      counters.expertRows += rows.rows;
      g.expertStart = performance.now();
      return rows;
    },
    finalize(job: ExpertJob, rows: ExpertRows): void {
      const g = batches.get(job)!;
      batches.delete(job);
      counters.expertMs += performance.now() - g.expertStart;
      inner.finalize(g.job, rows, 0, rows.rows);
      exchanging(job, () => comm.reduceScatter(g.job.out, job.out.subarray(0, job.tokens * job.hidden), g.tokens.map((t) => t * job.hidden)));
      counters.layers++;
      counters.rowLog?.push(rows.rows);
    },
  };
}

/** [tokens, k] -> [tokens, K] with `fill` in the new columns. */
function padded<T extends Int32Array | Float32Array>(a: T, tokens: number, k: number, K: number, fill: number): T {
  if (k === K) return a.subarray(0, tokens * k) as T;
  const out = (a instanceof Int32Array ? new Int32Array(tokens * K) : new Float32Array(tokens * K)).fill(fill) as T;
  for (let t = 0; t < tokens; t++) out.set(a.subarray(t * k, t * k + k), t * K);
  return out;
}
