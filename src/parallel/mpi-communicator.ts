import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from '../errors.js';
import { ADDON_PATH } from '../tensor/native.js';
import type { CommArray, CommStats, Communicator, PendingExchange } from './communicator.js';
import { countBytes, zeroStats } from './communicator.js';

/** The raw interface of build/Release/moesaic_mpi.node (native/mpi.cc): counts in bytes, comm = index. */
interface MpiAddon {
  init(): { rank: number; size: number; host: string };
  finalize(): void;
  abort(code: number): void;
  split(comm: number, color: number, key: number): number;
  commInfo(comm: number): { rank: number; size: number };
  barrier(comm: number): void;
  allToAllV(comm: number, send: CommArray, sendBytes: Int32Array, recv: CommArray, recvBytes: Int32Array): void;
  iAllToAllV(comm: number, send: CommArray, sendBytes: Int32Array, recv: CommArray, recvBytes: Int32Array): number;
  wait(id: number): void;
  allGatherV(comm: number, send: CommArray, recv: CommArray, recvBytes: Int32Array): void;
  reduceScatter(comm: number, send: Float32Array, recv: Float32Array, recvCounts: Int32Array): void;
  allReduce(comm: number, buf: Float64Array, op: string): void;
}

export const MPI_ADDON_PATH = join(ADDON_PATH, '..', 'moesaic_mpi.node');

/** True when this process was started by mpirun (OpenMPI sets these for every rank). */
export function underMpirun(env: NodeJS.ProcessEnv = process.env): boolean {
  return env['OMPI_COMM_WORLD_SIZE'] !== undefined || env['PMIX_RANK'] !== undefined;
}

/** True when the MPI addon was built (mpicc existed at npm install). */
export function mpiAvailable(): boolean {
  return existsSync(MPI_ADDON_PATH);
}

let addon: MpiAddon | undefined;
let world: MpiCommunicator | undefined;

function loadAddon(): MpiAddon {
  if (addon) return addon;
  if (!mpiAvailable()) fail('E_NATIVE', `the MPI addon is not built (${MPI_ADDON_PATH}): install OpenMPI (apt-get install openmpi-bin libopenmpi-dev), then npm install`);
  addon = createRequire(import.meta.url)(MPI_ADDON_PATH) as MpiAddon;
  return addon;
}

/**
 * MPI_COMM_WORLD of this process (MPI is initialised on first use and finalised at exit). A failure
 * on one rank aborts them all, so no rank waits forever in a collective its peer never reaches.
 */
export function mpiWorld(): MpiCommunicator {
  if (world) return world;
  const a = loadAddon();
  const w = a.init();
  world = new MpiCommunicator(a, 0, w.rank, w.size, w.host);
  process.on('exit', (code) => {
    if (code !== 0 && w.size > 1) a.abort(code);
    a.finalize();
  });
  return world;
}

/** A communicator on the MPI addon; byte counts per call go to `stats`. */
export class MpiCommunicator implements Communicator {
  readonly stats: CommStats = zeroStats();

  constructor(
    private readonly mpi: MpiAddon,
    private readonly comm: number,
    readonly rank: number,
    readonly size: number,
    readonly host: string,
  ) {}

  allToAllV<T extends CommArray>(send: T, sendCounts: Int32Array, recv: T, recvCounts: Int32Array): void {
    const t0 = performance.now();
    const b = send.BYTES_PER_ELEMENT;
    this.mpi.allToAllV(this.comm, send, scaled(sendCounts, b), recv, scaled(recvCounts, b));
    this.stats.ms += performance.now() - t0;
    countBytes(this.stats, this.rank, b, sendCounts, recvCounts);
  }

  startAllToAllV<T extends CommArray>(send: T, sendCounts: Int32Array, recv: T, recvCounts: Int32Array): PendingExchange {
    const t0 = performance.now();
    const b = send.BYTES_PER_ELEMENT;
    const id = this.mpi.iAllToAllV(this.comm, send, scaled(sendCounts, b), recv, scaled(recvCounts, b));
    this.stats.ms += performance.now() - t0;
    countBytes(this.stats, this.rank, b, sendCounts, recvCounts);
    return {
      wait: () => {
        const t1 = performance.now();
        this.mpi.wait(id);
        this.stats.ms += performance.now() - t1;
      },
    };
  }

  allGatherV<T extends CommArray>(send: T, recv: T, recvCounts: Int32Array): void {
    const t0 = performance.now();
    const b = send.BYTES_PER_ELEMENT;
    this.mpi.allGatherV(this.comm, send, recv, scaled(recvCounts, b));
    this.stats.ms += performance.now() - t0;
    const sent = new Int32Array(this.size).fill(recvCounts[this.rank]!);
    countBytes(this.stats, this.rank, b, sent, recvCounts);
  }

  reduceScatter(send: Float32Array, recv: Float32Array, recvCounts: Int32Array): void {
    const t0 = performance.now();
    this.mpi.reduceScatter(this.comm, send, recv, recvCounts);
    this.stats.ms += performance.now() - t0;
    // each rank's block of the others' send goes out, its own block of every other rank comes in
    const own = new Int32Array(this.size).fill(recvCounts[this.rank]!);
    countBytes(this.stats, this.rank, 4, recvCounts, own);
  }

  allReduce(buf: Float64Array, op: 'sum' | 'max' | 'min'): void {
    const t0 = performance.now();
    this.mpi.allReduce(this.comm, buf, op);
    this.stats.ms += performance.now() - t0;
    const n = new Int32Array(this.size).fill(buf.length);
    countBytes(this.stats, this.rank, 8, n, n);
  }

  barrier(): void {
    const t0 = performance.now();
    this.mpi.barrier(this.comm);
    this.stats.ms += performance.now() - t0;
    this.stats.calls++;
  }

  split(color: number, key: number): MpiCommunicator | null {
    const c = this.mpi.split(this.comm, color, key);
    if (c < 0) return null;
    const info = this.mpi.commInfo(c);
    return new MpiCommunicator(this.mpi, c, info.rank, info.size, this.host);
  }

  resetStats(): void {
    Object.assign(this.stats, zeroStats());
  }
}

/** Element counts -> byte counts for the addon. */
function scaled(counts: Int32Array, bytesPerElement: number): Int32Array {
  const out = new Int32Array(counts.length);
  for (let i = 0; i < counts.length; i++) out[i] = counts[i]! * bytesPerElement;
  return out;
}
