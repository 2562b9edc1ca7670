/**
 * One rank of `moesaic bench a2a` (started by mpirun from src/cli/bench/a2a.ts): the flat and the
 * hierarchical all-to-all-v on the same buffers, for message sizes from 256 B to 1 MB per pair of
 * ranks, alternating, each timed as the slowest rank's wall time; the two results are compared byte
 * for byte. Rank 0 prints one JSON line.
 */
import { HierarchicalAllToAll } from '../parallel/hierarchical-a2a.js';
import { mpiWorld } from '../parallel/mpi-communicator.js';
import { median } from './stats.js';

const SIZES = [256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576];

function main(reps: number): void {
  const world = mpiWorld();
  const hier = HierarchicalAllToAll.create(world, Number(process.env['OMPI_COMM_WORLD_LOCAL_RANK'] ?? 0));
  const N = world.size;
  const rows: { bytes_per_pair: number; flat_us: number; hierarchical_us: number | null }[] = [];
  for (const bytes of SIZES) {
    const n = bytes / 4;
    const send = Float32Array.from({ length: n * N }, (_, i) => world.rank * 1e6 + i);
    const counts = new Int32Array(N).fill(n);
    const a = new Float32Array(n * N);
    const b = new Float32Array(n * N);
    const flat: number[] = [];
    const tree: number[] = [];
    const time = (f: () => void): number => {
      world.barrier();
      const t0 = performance.now();
      f();
      const t = new Float64Array([performance.now() - t0]);
      world.allReduce(t, 'max');
      return t[0]! * 1000;
    };
    for (let rep = 0; rep < reps + 1; rep++) {
      const tf = time(() => world.allToAllV(send, counts, a, counts));
      const th = hier ? time(() => hier.allToAllV(send, counts, b, counts)) : NaN;
      if (rep > 0) {
        flat.push(tf);
        tree.push(th);
      }
    }
    if (hier && a.some((v, i) => v !== b[i])) throw new Error(`hierarchical all-to-all-v differs from the flat one at ${bytes} B per pair`);
    rows.push({ bytes_per_pair: bytes, flat_us: median(flat), hierarchical_us: hier ? median(tree) : null });
  }
  if (world.rank === 0) process.stdout.write(`${JSON.stringify({ ranks: N, hosts: hier?.hosts ?? 1, reps, rows })}\n`);
}

const reps = Number(process.argv[2] ?? 0);
if (reps > 0) main(reps);
