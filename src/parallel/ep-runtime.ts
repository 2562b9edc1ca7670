import { availableParallelism } from 'node:os';
import { fail } from '../errors.js';
import type { ModelWeights } from '../model/layer-weights.js';
import type { Transformer } from '../model/transformer.js';
import type { DispatchPolicy } from '../moe/dispatch.js';
import { readActivity } from '../trace/activity.js';
import type { Communicator } from './communicator.js';
import { expertParallel, zeroCounters, type EpCounters } from './ep-dispatch.js';
import { shardedExperts, sliceExpert } from './ep-shard.js';
import { buildExpertMap, type EpMode, type EpPlacement, type ExpertMap } from './expert-map.js';
import { RankExperts } from './rank-experts.js';
import { HierarchicalAllToAll } from './hierarchical-a2a.js';
import { TopologyCommunicator, type A2aMode } from './topology-communicator.js';
import { Rebalancer, type RebalanceEvent } from './rebalance.js';
import type { SwiGluWeights } from '../moe/swiglu.js';
import { mpiWorld, underMpirun } from './mpi-communicator.js';

/** The expert-parallel run-time options (docs/parallel.md; flags in src/options/run-options.ts). */
export interface ParallelOptions {
  readonly epMode?: EpMode;
  readonly placement?: EpPlacement;
  /** routing trace the fitted placements learn from */
  readonly placementTrace?: string;
  /** EPLB's physical expert slots in total */
  readonly replicas?: number;
  /** FSMoE pipelining: pieces per exchange */
  readonly epChunks?: number;
  /** re-fit the placement every K steps from the recent routing */
  readonly rebalanceEvery?: number;
  /** the all-to-all across hosts: flat, hierarchical (MoNTA) or auto */
  readonly epA2a?: A2aMode;
}

/** Expert-parallel options only mean something with several ranks: refuse them otherwise. */
export function checkParallelOptions(o: ParallelOptions | undefined, parallel: boolean): void {
  if (parallel || !o) return;
  for (const [key, flag] of [['epMode', '--ep-mode'], ['placement', '--placement'], ['placementTrace', '--placement-trace'], ['replicas', '--replicas'], ['epChunks', '--ep-chunks'], ['rebalanceEvery', '--rebalance-every'], ['epA2a', '--ep-a2a']] as const) {
    if (o[key] !== undefined) fail('E_BAD_OPTION', `${flag} is an expert-parallel option: it needs --ranks N or a run under mpirun`);
  }
}

/**
 * True when this process is a rank started by mpirun (directly or through --ranks). `mpirun -np 1`
 * runs the expert-parallel path with one rank; `--ranks 1` alone is the single-process engine.
 */
export function isParallelRun(): boolean {
  return underMpirun();
}

/** Kernel threads per rank when --threads is not given: the cores shared by the ranks of this host. */
export function defaultRankThreads(): number {
  const local = Number(process.env['OMPI_COMM_WORLD_LOCAL_SIZE'] ?? '1');
  return Math.max(1, Math.floor(availableParallelism() / Math.max(1, local)));
}

/**
 * One rank's side of expert parallelism: its communicator, which experts it holds, its counters, and
 * the lock-step that lets ranks with different amounts of work (DP attention: each rank its own
 * sequences) run the same MoE layers together. Every forward step starts with a one-number all-reduce
 * ("does anyone have tokens?"); a rank that is done keeps running empty steps until nobody has work.
 */
export class EpRuntime {
  private transformer: Transformer | undefined;

  /** online rebalancing (--rebalance-every), when asked for */
  private rebalancer: Rebalancer | undefined;
  private weights: ModelWeights | undefined;
  private k = 0;

  private constructor(
    readonly comm: Communicator,
    readonly mode: EpMode,
    /** which rank holds which expert (null under MoEShard: every rank a slice of each); replaced by a rebalance */
    public map: ExpertMap | null,
    /** the weights this rank holds: its experts, or its slices */
    readonly experts: RankExperts,
    readonly policy: DispatchPolicy,
    /** what this rank's MoE layers did, summed over layers and steps */
    readonly counters: EpCounters,
  ) {}

  static async create(comm: Communicator, weights: ModelWeights, inner: DispatchPolicy, o: ParallelOptions): Promise<EpRuntime> {
    const mode = o.epMode ?? 'experts';
    const first = weights.layers.find((l) => l.moe)?.moe;
    if (!first) fail('E_BAD_OPTION', 'expert parallelism needs a model with MoE layers');
    const counters = zeroCounters();
    if (mode === 'shard') {
      if (o.placement !== undefined || o.replicas !== undefined || o.placementTrace !== undefined || o.epChunks !== undefined || o.rebalanceEvery !== undefined || o.epA2a !== undefined) {
        fail('E_BAD_OPTION', '--ep-mode shard gives every rank a slice of every expert: --placement, --placement-trace, --replicas, --ep-chunks, --rebalance-every and --ep-a2a do not apply');
      }
      const slices = weights.layers.map((l) => (l.moe ? l.moe.experts.map((w) => sliceExpert(w, comm.rank, comm.size)) : null));
      return new EpRuntime(comm, mode, null, new RankExperts(slices, comm.rank), shardedExperts(inner, comm, counters), counters);
    }
    const trace = o.placementTrace ? await readActivity(o.placementTrace) : undefined;
    // the token exchange knows the hosts (MoNTA); a single host makes it the plain world
    const hier = HierarchicalAllToAll.create(comm, Number(process.env['OMPI_COMM_WORLD_LOCAL_RANK'] ?? 0));
    const exchange = new TopologyCommunicator(comm, hier, o.epA2a ?? 'auto');
    const moeLayers = weights.layers.map((l) => l.moe !== undefined);
    const map = buildExpertMap(moeLayers, first.experts.length, comm.size, { placement: o.placement ?? 'contiguous', trace, replicas: o.replicas });
    const rebalancer = o.rebalanceEvery ? new Rebalancer(comm, o.rebalanceEvery, first.experts.length, moeLayers, o.placement ?? 'contiguous', o.replicas) : undefined;
    let rt: EpRuntime | undefined;
    const policy = expertParallel(inner, exchange, () => rt!.map!, o.epChunks ?? 1, counters, rebalancer ? (l, plan, tokens) => rebalancer.observe(l, plan, tokens) : undefined);
    rt = new EpRuntime(comm, mode, map, new RankExperts(heldBy(map, weights, comm.rank), comm.rank), policy, counters);
    rt.rebalancer = rebalancer;
    rt.weights = weights;
    return rt;
  }

  /** Rebalances done so far (step, window Max Load before and after). */
  get rebalances(): readonly RebalanceEvent[] {
    return this.rebalancer?.events ?? [];
  }

  /** Installs the lock-step on the model's forward pass. */
  attach(transformer: Transformer): void {
    this.transformer = transformer;
    this.k = transformer.cfg.topK;
    transformer.stepHook = () => this.anyoneWorking(true);
  }

  /** The step's all-reduce; when a step will run, a due rebalance happens before it (on every rank). */
  private anyoneWorking(me: boolean): boolean {
    const flag = new Float64Array([me ? 1 : 0]);
    this.comm.allReduce(flag, 'sum');
    const working = flag[0]! > 0;
    if (working && this.rebalancer && this.map) {
      const next = this.rebalancer.beginStep(this.map, this.k);
      if (next) {
        this.map = next;
        this.experts.hold(heldBy(next, this.weights!, this.comm.rank));
        const ev = this.rebalances[this.rebalances.length - 1]!;
        if (this.comm.rank === 0) process.stderr.write(`moesaic: step ${ev.step}: experts rebalanced on the last window's routing: Max Load ${ev.before.toFixed(3)} -> ${ev.after.toFixed(3)}\n`);
      }
    }
    return working;
  }

  /** Runs empty steps until no rank has tokens left; every rank calls it once its own work is done. */
  finish(): void {
    const t = this.transformer;
    if (!t) return;
    const hook = t.stepHook;
    t.stepHook = undefined;
    try {
      while (this.anyoneWorking(false)) t.forwardBatch([]);
    } finally {
      t.stepHook = hook;
    }
  }
}

/** Per layer, per expert: the weights `rank` holds under `map`. */
function heldBy(map: ExpertMap, weights: ModelWeights, rank: number): ((SwiGluWeights | undefined)[] | null)[] {
  return map.layers.map((l, i) => (l ? weights.layers[i]!.moe!.experts.map((w, e) => (l.holders[e]!.includes(rank) ? w : undefined)) : null));
}

/** The MPI world when this process is a rank, else null (the single-process engine). */
export function worldIfParallel(): Communicator | null {
  return isParallelRun() ? mpiWorld() : null;
}

