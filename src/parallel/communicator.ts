/**
 * The collectives that connect ranks under expert parallelism (architecture.md, "Devices and
 * communication"). Counts are in elements of the arrays passed; every peer's block is contiguous and
 * the blocks follow rank order (displacements are the prefix sums of the counts), which is all the
 * exchanges of an MoE layer need. The real implementation wraps MPI (mpi-communicator.ts); an
 * in-process one (local-communicator.ts) exists for unit tests only.
 */
export type CommArray = Float32Array | Float64Array | Int32Array;

/** What a communicator moved and how long its calls took, since creation or the last reset. */
export interface CommStats {
  /** collective calls */
  calls: number;
  /** bytes this rank sent to other ranks (its own block stays local and is not counted) */
  bytesSent: number;
  /** bytes this rank received from other ranks */
  bytesReceived: number;
  /** wall time inside blocking calls and waits, ms */
  ms: number;
}

/** A started non-blocking exchange; `wait` completes it (the receive buffer is valid after). */
export interface PendingExchange {
  wait(): void;
}

export interface Communicator {
  readonly rank: number;
  readonly size: number;
  /** the name of this rank's host (ranks with equal names share a machine) */
  readonly host: string;
  /** send[counts-prefixed blocks] -> every peer r gets sendCounts[r] elements; recvCounts[r] arrive from r */
  allToAllV<T extends CommArray>(send: T, sendCounts: Int32Array, recv: T, recvCounts: Int32Array): void;
  /** The same, started without waiting (FSMoE's chunk pipelining): buffers must not be touched until wait. */
  startAllToAllV<T extends CommArray>(send: T, sendCounts: Int32Array, recv: T, recvCounts: Int32Array): PendingExchange;
  /** every rank's `recvCounts[rank]` first elements of send, concatenated in rank order into recv */
  allGatherV<T extends CommArray>(send: T, recv: T, recvCounts: Int32Array): void;
  /** element-wise sum of every rank's send; rank r receives the r-th block (recvCounts[r] floats) */
  reduceScatter(send: Float32Array, recv: Float32Array, recvCounts: Int32Array): void;
  /** in place */
  allReduce(buf: Float64Array, op: 'sum' | 'max' | 'min'): void;
  barrier(): void;
  /** ranks with the same color form a new communicator, ordered by key; null for color < 0 */
  split(color: number, key: number): Communicator | null;
  readonly stats: CommStats;
  resetStats(): void;
}

export function zeroStats(): CommStats {
  return { calls: 0, bytesSent: 0, bytesReceived: 0, ms: 0 };
}

/** Adds one call's bytes (excluding this rank's own block) to stats. */
export function countBytes(stats: CommStats, rank: number, bytesPerElement: number, sendCounts: Int32Array | null, recvCounts: Int32Array): void {
  stats.calls++;
  for (let r = 0; r < recvCounts.length; r++) {
    if (r === rank) continue;
    if (sendCounts) stats.bytesSent += sendCounts[r]! * bytesPerElement;
    stats.bytesReceived += recvCounts[r]! * bytesPerElement;
  }
}

/** Sum of counts (a buffer's length in elements). */
export function total(counts: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < counts.length; i++) n += counts[i]!;
  return n;
}
