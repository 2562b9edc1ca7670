import { fail } from '../errors.js';
import type { CommArray, CommStats, Communicator, PendingExchange } from './communicator.js';
import { countBytes, total, zeroStats } from './communicator.js';

/**
 * In-process ranks, for unit tests only (the real communicator is MPI): N worker threads share one
 * SharedArrayBuffer; each collective writes this rank's part into its own slot, meets the others at
 * a barrier (Atomics.wait, so it must run in a worker thread), reads what it needs from their slots,
 * and meets them again before a slot is reused. Non-blocking exchanges complete at once.
 */
export interface LocalWorld {
  readonly size: number;
  /** [2 control ints][size slots of slotBytes] */
  readonly shared: SharedArrayBuffer;
  readonly slotBytes: number;
}

/** The shared memory of `size` in-process ranks; hand it to each worker with its rank. */
export function localWorld(size: number, slotBytes = 1 << 20): LocalWorld {
  return { size, shared: new SharedArrayBuffer(8 + size * slotBytes), slotBytes };
}

export class LocalCommunicator implements Communicator {
  readonly stats: CommStats = zeroStats();
  readonly host = 'local';
  private readonly control: Int32Array;

  constructor(
    private readonly world: LocalWorld,
    readonly rank: number,
  ) {
    this.control = new Int32Array(world.shared, 0, 2);
  }

  get size(): number {
    return this.world.size;
  }

  /** Sense-reversing barrier: the last rank to arrive starts the next generation. */
  barrier(): void {
    const c = this.control;
    const gen = Atomics.load(c, 1);
    if (Atomics.add(c, 0, 1) === this.size - 1) {
      Atomics.store(c, 0, 0);
      Atomics.add(c, 1, 1);
      Atomics.notify(c, 1);
    } else {
      while (Atomics.load(c, 1) === gen) Atomics.wait(c, 1, gen);
    }
  }

  /** Bytes of rank r's slot. */
  private slot(r: number): Uint8Array {
    return new Uint8Array(this.world.shared, 8 + r * this.world.slotBytes, this.world.slotBytes);
  }

  /** Writes `parts` one after another into this rank's slot, then waits for every rank to have written. */
  private publish(parts: readonly ArrayBufferView[]): void {
    const mine = this.slot(this.rank);
    let at = 0;
    for (const p of parts) {
      if (at + p.byteLength > mine.length) fail('E_BAD_INPUT', `local communicator: a collective needs more than the ${mine.length}-byte slot`);
      mine.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), at);
      at += p.byteLength;
    }
    this.barrier();
  }

  allToAllV<T extends CommArray>(send: T, sendCounts: Int32Array, recv: T, recvCounts: Int32Array): void {
    const N = this.size;
    const b = send.BYTES_PER_ELEMENT;
    this.publish([sendCounts, send.subarray(0, total(sendCounts))]);
    const out = new Uint8Array(recv.buffer, recv.byteOffset, recv.byteLength);
    let at = 0;
    for (let s = 0; s < N; s++) {
      const slot = this.slot(s);
      const counts = new Int32Array(slot.slice(0, 4 * N).buffer);
      let off = 4 * N;
      for (let r = 0; r < this.rank; r++) off += counts[r]! * b;
      const n = counts[this.rank]! * b;
      if (n !== recvCounts[s]! * b) fail('E_BAD_INPUT', `local communicator: rank ${s} sends ${n / b} elements to rank ${this.rank}, which expects ${recvCounts[s]}`);
      out.set(slot.subarray(off, off + n), at);
      at += n;
    }
    this.barrier();
    countBytes(this.stats, this.rank, b, sendCounts, recvCounts);
  }

  startAllToAllV<T extends CommArray>(send: T, sendCounts: Int32Array, recv: T, recvCounts: Int32Array): PendingExchange {
    this.allToAllV(send, sendCounts, recv, recvCounts);
    return { wait: () => {} };
  }

  allGatherV<T extends CommArray>(send: T, recv: T, recvCounts: Int32Array): void {
    const b = send.BYTES_PER_ELEMENT;
    this.publish([send.subarray(0, recvCounts[this.rank]!)]);
    const out = new Uint8Array(recv.buffer, recv.byteOffset, recv.byteLength);
    let at = 0;
    for (let s = 0; s < this.size; s++) {
      const n = recvCounts[s]! * b;
      out.set(this.slot(s).subarray(0, n), at);
      at += n;
    }
    this.barrier();
    countBytes(this.stats, this.rank, b, new Int32Array(this.size).fill(recvCounts[this.rank]!), recvCounts);
  }

  reduceScatter(send: Float32Array, recv: Float32Array, recvCounts: Int32Array): void {
    this.publish([send]);
    let off = 0;
    for (let r = 0; r < this.rank; r++) off += recvCounts[r]!;
    const n = recvCounts[this.rank]!;
    recv.fill(0, 0, n);
    for (let s = 0; s < this.size; s++) {
      const part = new Float32Array(this.slot(s).slice(4 * off, 4 * (off + n)).buffer);
      for (let i = 0; i < n; i++) recv[i]! += part[i]!;
    }
    this.barrier();
    countBytes(this.stats, this.rank, 4, recvCounts, new Int32Array(this.size).fill(n));
  }

  allReduce(buf: Float64Array, op: 'sum' | 'max' | 'min'): void {
    this.publish([buf]);
    const acc = new Float64Array(buf.length).fill(op === 'sum' ? 0 : op === 'max' ? -Infinity : Infinity);
    for (let s = 0; s < this.size; s++) {
      const v = new Float64Array(this.slot(s).slice(0, buf.byteLength).buffer);
      for (let i = 0; i < buf.length; i++) acc[i] = op === 'sum' ? acc[i]! + v[i]! : op === 'max' ? Math.max(acc[i]!, v[i]!) : Math.min(acc[i]!, v[i]!);
    }
    this.barrier();
    buf.set(acc);
    this.stats.calls++;
  }

  split(): Communicator | null {
    fail('E_BAD_OPTION', 'the in-process communicator has no splits (one host only)');
  }

  resetStats(): void {
    Object.assign(this.stats, zeroStats());
  }
}
