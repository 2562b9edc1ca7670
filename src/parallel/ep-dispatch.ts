import { fail } from '../errors.js';
import type { DispatchPlan, DispatchPolicy, ExpertJob, ExpertRows } from '../moe/dispatch.js';
import type { Communicator, PendingExchange } from './communicator.js';
import { expertMajorLayout, gatherRows, permuteRows, routeExchange, type ExchangeRoute } from './ep-exchange.js';
import type { ExpertMap, LayerExperts } from './expert-map.js';

/** What the expert-parallel layers of one rank did, summed over layers and steps. */
export interface EpCounters {
  /** rows this rank ran through its experts (padding rows of static gating included) */
  expertRows: number;
  /** ms in the exchanges (the counts all-to-all, the row all-to-all-v there and back), incl. waits */
  exchangeMs: number;
  /** ms in this rank's Experts stage */
  expertMs: number;
  /** layer calls */
  layers: number;
  /** when present, rows this rank ran in each layer call, in call order (bench ep's measured Max Load) */
  rowLog?: number[];
}

export function zeroCounters(): EpCounters {
  return { expertRows: 0, exchangeMs: 0, expertMs: 0, layers: 0 };
}

/** One chunk of one layer's exchange, from its start to its return. */
interface ChunkExchange {
  readonly from: number;
  readonly to: number;
  /** the inner policy's rows of slots [from, to) (its Finalize combines them; xs is sent at the start) */
  readonly inner: ExpertRows;
  readonly route: ExchangeRoute;
  readonly recv: Float32Array;
  readonly back: Float32Array;
  forward: PendingExchange;
  returned?: PendingExchange;
  /** received row j -> its row in the expert-major layout */
  localRow?: Int32Array;
}

/**
 * Expert parallelism around any dispatch policy (the paper's fairseq deployment; DeepSeek's and
 * SGLang's DP attention + EP), as a Prepare/Finalize pair: the inner policy plans and prepares this
 * rank's rows; Prepare sends each row to a rank holding its expert and hands the Experts stage the rows
 * this rank received, expert-major; Finalize sends the results back, and the inner policy's Finalize
 * combines them in token order. With dynamic gating the rows are exactly the assignments; with static
 * gating every expert's `capacity` slots travel, padding included.
 *
 * `chunks` > 1 pipelines the exchange as FSMoE does (Pan et al., arXiv 2501.10714): the plan's slots
 * are cut into C ranges; chunk i+1's all-to-all-v is started (non-blocking MPI) before chunk i's
 * experts run, and chunk i's results travel back while chunk i+1 computes. The inner Finalize runs
 * once every chunk is back.
 *
 * Every rank must run every MoE layer of every step, with or without tokens (an empty step still
 * answers its peers' exchange; the lock-step is in ep-runtime.ts).
 */
export function expertParallel(
  inner: DispatchPolicy,
  comm: Communicator,
  map: () => ExpertMap,
  chunks: number,
  counters: EpCounters,
  /** sees each layer's local plan before its exchange (online rebalancing's routing window) */
  observe?: (layer: number, plan: DispatchPlan, tokens: number) => void,
): DispatchPolicy {
  if (!Number.isInteger(chunks) || chunks < 1 || chunks > 64) fail('E_BAD_OPTION', `--ep-chunks must be an integer in [1, 64], got ${chunks}`);
  if (chunks > 1 && !inner.dropless) fail('E_BAD_OPTION', `--ep-chunks needs a dropless gating policy: ${inner.name} gating dispatches its whole padded plan at once`);
  const names = Array.from({ length: chunks }, (_, c) => ({ send: `ep.send.${c}`, recv: `ep.recv.${c}`, ret: `ep.ret.${c}`, back: `ep.back.${c}` }));
  const layers = new WeakMap<ExpertJob, { ranges: (readonly [number, number])[]; chunks: ChunkExchange[]; expertStart: number; rows: number }>();

  /** Exchange time goes to the layer's `exchange` module and to the counters. */
  const exchanging = <T>(job: ExpertJob, f: () => T): T => {
    const ms0 = comm.stats.ms;
    const r = f();
    const dt = comm.stats.ms - ms0;
    job.times.exchange += dt;
    counters.exchangeMs += dt;
    return r;
  };

  const start = (job: ExpertJob, layer: LayerExperts, c: number, from: number, to: number): ChunkExchange => {
    const H = job.hidden;
    const rows = inner.prepare(job, from, to);
    const route = exchanging(job, () => routeExchange(comm, layer, job.plan, from, to));
    const send = job.buffers.get(names[c]!.send, (to - from) * H); // [rows, H] destination-major
    permuteRows(send, rows.xs, H, route.posOf);
    const received = route.recvRows.reduce((a, b) => a + b, 0);
    const recv = job.buffers.get(names[c]!.recv, received * H); // [received, H] source-major
    const back = job.buffers.get(names[c]!.back, (to - from) * H); // [rows, H] results, destination-major
    const forward = exchanging(job, () => comm.startAllToAllV(send, scaled(route.sendRows, H), recv, scaled(route.recvRows, H)));
    return { from, to, inner: rows, route, recv, back, forward };
  };

  return {
    name: `${inner.name}+ep`,
    dropless: inner.dropless,
    plan: (routing, shape) => inner.plan(routing, shape),
    chunks(plan: DispatchPlan) {
      const rows = plan.offsets[plan.numExperts]!;
      return Array.from({ length: chunks }, (_, c) => [Math.floor((rows * c) / chunks), Math.floor((rows * (c + 1)) / chunks)] as const);
    },
    prepare(job: ExpertJob, from: number, to: number): ExpertRows {
      const layer = map().layers[job.layer ?? -1];
      if (!layer) fail('E_BAD_INPUT', `expert parallelism: layer ${job.layer} has no expert map`);
      let st = layers.get(job);
      if (!st) {
        observe?.(job.layer!, job.plan, job.tokens);
        const ranges = this.chunks!(job.plan) as (readonly [number, number])[];
        st = { ranges, chunks: [start(job, layer, 0, ranges[0]![0], ranges[0]![1])], expertStart: 0, rows: 0 };
        layers.set(job, st);
      }
      const c = st.chunks.length - 1;
      const ch = st.chunks[c]!;
      if (ch.from !== from || ch.to !== to) fail('E_BAD_INPUT', `expert parallelism: chunk [${from}, ${to}) out of order`);
      exchanging(job, () => ch.forward.wait());
      if (c + 1 < st.ranges.length) st.chunks.push(start(job, layer, c + 1, st.ranges[c + 1]![0], st.ranges[c + 1]![1]));
      // this chunk's received rows, expert-major, for the Experts stage (the provider serves this rank's experts)
      const H = job.hidden;
      const { offsets, localRow } = expertMajorLayout(ch.route);
      ch.localRow = localRow;
      const xs = job.buffers.get('ep.local.x', localRow.length * H); // [received, H] expert-major
      const ys = job.buffers.get('ep.local.y', localRow.length * H);
      permuteRows(xs, ch.recv, H, localRow);
      counters.expertRows += localRow.length;
      st.rows += localRow.length;
      st.expertStart = performance.now();
      return { xs, ys, offsets, rows: localRow.length, hidden: H };
    },
    finalize(job: ExpertJob, rows: ExpertRows): void {
      const st = layers.get(job)!;
      counters.expertMs += performance.now() - st.expertStart;
      const H = job.hidden;
      const c = st.chunks.findIndex((ch) => ch.returned === undefined);
      const ch = st.chunks[c]!;
      const ret = job.buffers.get(names[c]!.ret, rows.rows * H); // [received, H] source-major, as received
      gatherRows(ret, rows.ys, H, ch.localRow!);
      ch.returned = exchanging(job, () => comm.startAllToAllV(ret, scaled(ch.route.recvRows, H), ch.back, scaled(ch.route.sendRows, H)));
      if (c + 1 < st.ranges.length) return;
      // every chunk is on its way back: wait, put the results in slot order, and let the inner policy
      // combine the whole plan at once (its Finalize need not know about the chunks)
      const last = st.chunks.length === 1 ? st.chunks[0]!.inner : undefined;
      const all = last ? last.ys : job.buffers.get('ep.all.y', job.plan.offsets[job.plan.numExperts]! * H); // [slots, H]
      for (const done of st.chunks) {
        exchanging(job, () => done.returned!.wait());
        gatherRows(all.subarray(done.from * H, done.to * H), done.back, H, done.route.posOf);
      }
      const first = st.chunks[0]!.inner;
      inner.finalize(job, last ?? { ...first, ys: all, offsets: job.plan.offsets, rows: all.length / H }, 0, all.length / H);
      layers.delete(job);
      counters.layers++;
      counters.rowLog?.push(st.rows);
    },
  };
}

/** Row counts -> element counts. */
function scaled(rows: Int32Array, H: number): Int32Array {
  return rows.map((n) => n * H);
}
