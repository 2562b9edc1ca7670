import type { CommArray, Communicator } from './communicator.js';
import { total } from './communicator.js';

/**
 * MoNTA-style topology-aware all-to-all-v (Guo et al., arXiv 2411.00662): instead of every rank
 * sending a message to every rank of the other hosts (L_a x L_b messages per pair of hosts), the
 * ranks of a host gather their blocks at the host's leader, the leaders make one exchange between
 * hosts, and each leader scatters what arrived to its ranks. The result is the flat all-to-all-v's,
 * byte for byte (blocks arrive in source-rank order). It pays when inter-host messages are small
 * (latency-bound) and costs two extra intra-host copies of every byte; see `preferHierarchical`.
 *
 * Hosts are the blocks of consecutive ranks OpenMPI places on one node (its default by-slot mapping):
 * `hostOf` gives each rank's host, `null` when the ranks of a host are not consecutive (then the
 * flat exchange is used).
 */
export class HierarchicalAllToAll {
  private constructor(
    private readonly world: Communicator,
    /** [ranks] host index of each rank */
    readonly hostOf: Int32Array,
    /** this rank's host's ranks (leader first) */
    private readonly local: Communicator,
    /** one leader per host; null on the other ranks */
    private readonly leaders: Communicator | null,
  ) {}

  /**
   * Collective: every rank passes its node-local rank (OMPI_COMM_WORLD_LOCAL_RANK). Null when there
   * is one host, or the hosts' ranks are not consecutive.
   */
  static create(world: Communicator, localRank: number): HierarchicalAllToAll | null {
    const all = new Int32Array(world.size);
    world.allGatherV(Int32Array.of(localRank), all, new Int32Array(world.size).fill(1));
    const hostOf = new Int32Array(world.size);
    let host = -1;
    for (let r = 0; r < world.size; r++) {
      if (all[r] === 0) host++;
      if (host < 0 || all[r] !== r - firstOf(all, r)) return null; // not consecutive blocks
      hostOf[r] = host;
    }
    if (host < 1) return null;
    const local = world.split(hostOf[world.rank]!, world.rank)!;
    const leaders = world.split(local.rank === 0 ? 0 : -1, world.rank);
    return new HierarchicalAllToAll(world, hostOf, local, leaders);
  }

  /** the communicators the exchange runs on (for byte and time counters) */
  get parts(): Communicator[] {
    return this.leaders ? [this.local, this.leaders] : [this.local];
  }

  get hosts(): number {
    return this.hostOf[this.hostOf.length - 1]! + 1;
  }

  /** The flat all-to-all-v's semantics (counts in elements, blocks in rank order), through the leaders. */
  allToAllV<T extends CommArray>(send: T, sendCounts: Int32Array, recv: T, recvCounts: Int32Array): void {
    const N = this.world.size;
    const L = this.local.size;
    const make = (n: number): T => new (send.constructor as new (n: number) => T)(n);
    const toLeader = (n: number): Int32Array => Int32Array.from({ length: L }, (_, i) => (i === 0 ? n : 0));
    const none = new Int32Array(L);
    // 1. gather at the leader: every local rank's counts row, then its data
    const isLeader = this.local.rank === 0;
    const counts = new Int32Array(isLeader ? L * N : 0); // [local source, destination]
    this.local.allToAllV(sendCounts, toLeader(N), counts, isLeader ? new Int32Array(L).fill(N) : none);
    const rowTotals = isLeader ? Int32Array.from({ length: L }, (_, s) => total(counts.subarray(s * N, (s + 1) * N))) : none;
    const gathered = make(isLeader ? total(rowTotals) : 0); // local sources' send buffers, one after another
    this.local.allToAllV(send, toLeader(total(sendCounts)), gathered, rowTotals);
    // 2. leaders: one exchange between hosts, per destination host its ranks' blocks (destination-major, then source)
    let fromHosts = make(0);
    let inCounts = new Int32Array(0); // [source host][local destination][source rank of that host]
    const H = this.hosts;
    if (this.leaders) {
      const ranksOf = (h: number): number[] => Array.from(this.hostOf.keys()).filter((r) => this.hostOf[r] === h);
      const srcStart = Int32Array.from({ length: L }, (_, s) => total(rowTotals.subarray(0, s)));
      const blockAt = (s: number, d: number): number => srcStart[s]! + total(counts.subarray(s * N, s * N + d));
      const sizes = new Int32Array(H);
      const cellCounts = new Int32Array(H); // counts metadata per host: L * |host h| numbers
      for (let h = 0; h < H; h++) for (const d of ranksOf(h)) for (let s = 0; s < L; s++) sizes[h]! += counts[s * N + d]!;
      for (let h = 0; h < H; h++) cellCounts[h] = ranksOf(h).length * L;
      const out = make(total(sizes));
      const meta = new Int32Array(total(cellCounts)); // [dest host][its rank][local source] counts
      let at = 0;
      let m = 0;
      for (let h = 0; h < H; h++) {
        for (const d of ranksOf(h)) {
          for (let s = 0; s < L; s++) {
            const n = counts[s * N + d]!;
            out.set(gathered.subarray(blockAt(s, d), blockAt(s, d) + n), at);
            at += n;
            meta[m++] = n;
          }
        }
      }
      const hostSizes = Int32Array.from({ length: H }, (_, h) => ranksOf(h).length);
      const inMetaCounts = Int32Array.from({ length: H }, (_, g) => hostSizes[g]! * L);
      inCounts = new Int32Array(total(inMetaCounts)); // here L of the destination host = this.local.size
      // metadata: what each source host sends here, per (local destination, source rank)
      this.leaders.allToAllV(meta, cellCounts, inCounts, Int32Array.from({ length: H }, (_, g) => L * hostSizes[g]!));
      const inSizes = Int32Array.from({ length: H }, (_, g) => total(inCounts.subarray(L * total(hostSizes.subarray(0, g)), L * total(hostSizes.subarray(0, g + 1)))));
      fromHosts = make(total(inSizes));
      this.leaders.allToAllV(out, sizes, fromHosts, inSizes);
      // 3. reorder per local destination in source-rank order, then scatter
      const hostBase = Int32Array.from({ length: H }, (_, g) => total(inSizes.subarray(0, g)));
      const scatter = make(fromHosts.length);
      const perDest = new Int32Array(L);
      let w = 0;
      for (let d = 0; d < L; d++) {
        for (let g = 0; g < H; g++) {
          // inside host g's part: destination-major over this host's L ranks, each with host g's sources
          const Lg = hostSizes[g]!;
          const metaBase = L * total(hostSizes.subarray(0, g));
          let off = hostBase[g]!;
          for (let dd = 0; dd < d; dd++) for (let s = 0; s < Lg; s++) off += inCounts[metaBase + dd * Lg + s]!;
          for (let s = 0; s < Lg; s++) {
            const n = inCounts[metaBase + d * Lg + s]!;
            scatter.set(fromHosts.subarray(off, off + n), w);
            off += n;
            w += n;
            perDest[d]! += n;
          }
        }
      }
      fromHosts = scatter;
      inCounts = perDest;
    }
    this.local.allToAllV(fromHosts, isLeader ? inCounts : none, recv, toLeader(total(recvCounts)));
  }
}

function firstOf(localRanks: Int32Array, r: number): number {
  let f = r;
  while (f > 0 && localRanks[f]! !== 0) f--;
  return f;
}

/**
 * The rule that picks the exchange (measured in docs/parallel.md): hierarchical when the mean
 * inter-host message of the flat exchange is below `thresholdBytes` (latency-bound: the leaders'
 * one message per host pair saves L_a·L_b - 1 message latencies), flat above it (bandwidth-bound:
 * the two intra-host copies cost more than the latencies saved).
 */
export function preferHierarchical(interHostBytes: number, interHostMessages: number, thresholdBytes: number): boolean {
  return interHostMessages > 0 && interHostBytes / interHostMessages < thresholdBytes;
}
