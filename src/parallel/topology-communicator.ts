import type { CommArray, CommStats, Communicator, PendingExchange } from './communicator.js';
import { zeroStats } from './communicator.js';
import { HierarchicalAllToAll, preferHierarchical } from './hierarchical-a2a.js';

/** How the all-to-all-v between hosts runs (`--ep-a2a`). */
export const A2A_MODES = ['auto', 'flat', 'hierarchical'] as const;
export type A2aMode = (typeof A2A_MODES)[number];

/**
 * Mean inter-host message size below which `auto` takes the hierarchical exchange. Measured with
 * `moesaic bench a2a` across two hosts (network namespaces over a veth pair, 4 and 8 ranks; table in
 * docs/parallel.md, "Hierarchical all-to-all"): the flat exchange won at every size from 256 B to
 * 1 MB per pair (1.6x to 9x), so here the threshold is 0 and auto is flat. A network whose inter-host
 * latency dwarfs the intra-host copies moves it up; re-measure and set it there.
 */
export const HIERARCHICAL_BELOW_BYTES = 0;

/**
 * A communicator whose all-to-all-v knows the hosts (MoNTA, arXiv 2411.00662): `flat` is MPI's own,
 * `hierarchical` goes through one leader per host, `auto` picks per call by the documented rule
 * (`preferHierarchical` on the mean inter-host message, summed over ranks by one small all-reduce so
 * every rank takes the same path). Everything else is the world's. On one host it is the world.
 */
export class TopologyCommunicator implements Communicator {
  constructor(
    private readonly world: Communicator,
    private readonly hier: HierarchicalAllToAll | null,
    readonly mode: A2aMode,
    private readonly thresholdBytes = HIERARCHICAL_BELOW_BYTES,
  ) {}

  get rank(): number {
    return this.world.rank;
  }
  get size(): number {
    return this.world.size;
  }
  get host(): string {
    return this.world.host;
  }

  /** Whether this exchange goes through the leaders (a collective decision in auto mode). */
  private hierarchical(sendCounts: Int32Array, bytesPerElement: number): boolean {
    if (!this.hier || this.mode === 'flat') return false;
    if (this.mode === 'hierarchical') return true;
    if (this.thresholdBytes <= 0) return false; // nothing can be below it: no need to ask the other ranks
    const mine = this.hier.hostOf[this.rank]!;
    const sums = new Float64Array(2); // bytes and messages to other hosts, all ranks
    for (let r = 0; r < sendCounts.length; r++) {
      if (this.hier.hostOf[r] === mine) continue;
      sums[0]! += sendCounts[r]! * bytesPerElement;
      sums[1]!++;
    }
    this.world.allReduce(sums, 'sum');
    return preferHierarchical(sums[0]!, sums[1]!, this.thresholdBytes);
  }

  allToAllV<T extends CommArray>(send: T, sendCounts: Int32Array, recv: T, recvCounts: Int32Array): void {
    if (this.hierarchical(sendCounts, send.BYTES_PER_ELEMENT)) this.hier!.allToAllV(send, sendCounts, recv, recvCounts);
    else this.world.allToAllV(send, sendCounts, recv, recvCounts);
  }

  /** Through the leaders the exchange is done by the time it returns; the flat one stays non-blocking. */
  startAllToAllV<T extends CommArray>(send: T, sendCounts: Int32Array, recv: T, recvCounts: Int32Array): PendingExchange {
    if (!this.hierarchical(sendCounts, send.BYTES_PER_ELEMENT)) return this.world.startAllToAllV(send, sendCounts, recv, recvCounts);
    this.hier!.allToAllV(send, sendCounts, recv, recvCounts);
    return { wait: () => {} };
  }

  allGatherV<T extends CommArray>(send: T, recv: T, recvCounts: Int32Array): void {
    this.world.allGatherV(send, recv, recvCounts);
  }
  reduceScatter(send: Float32Array, recv: Float32Array, recvCounts: Int32Array): void {
    this.world.reduceScatter(send, recv, recvCounts);
  }
  allReduce(buf: Float64Array, op: 'sum' | 'max' | 'min'): void {
    this.world.allReduce(buf, op);
  }
  barrier(): void {
    this.world.barrier();
  }
  split(color: number, key: number): Communicator | null {
    return this.world.split(color, key);
  }

  /** The world's counters plus those of the hierarchical exchange's host and leader communicators. */
  get stats(): CommStats {
    const s = zeroStats();
    for (const c of [this.world, ...(this.hier?.parts ?? [])]) {
      s.calls += c.stats.calls;
      s.bytesSent += c.stats.bytesSent;
      s.bytesReceived += c.stats.bytesReceived;
      s.ms += c.stats.ms;
    }
    return s;
  }
  resetStats(): void {
    for (const c of [this.world, ...(this.hier?.parts ?? [])]) c.resetStats();
  }
}
