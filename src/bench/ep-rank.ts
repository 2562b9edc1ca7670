/**
 * One rank of `moesaic bench ep` (started by mpirun from src/bench/ep-bench.ts): loads the model once
 * per configuration, then for each repetition runs every configuration on the same prompts
 * (data-parallel greedy generation, prompt i on rank i mod N) and gathers each run's figures on
 * rank 0, which writes them as JSON to the result file. The first repetition warms the page
 * mappings and is not reported.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { loadModel, type Model } from '../model/model.js';
import type { Communicator } from '../parallel/communicator.js';
import { dpGenerate } from '../parallel/data-parallel.js';
import type { EpBenchJob, EpRunFigures } from './ep-protocol.js';

async function main(jobPath: string, outPath: string): Promise<void> {
  const job = JSON.parse(readFileSync(jobPath, 'utf8')) as EpBenchJob;
  const models: Model[] = [];
  for (const c of job.configs) {
    models.push(await loadModel(job.model, { threads: job.threads, gating: c.gating, epMode: c.epMode, placement: c.placement, placementTrace: c.fitted ? job.trace : undefined, replicas: c.replicas, epChunks: c.epChunks }));
  }
  const runs: EpRunFigures[][] = job.configs.map(() => []);
  for (let rep = 0; rep <= job.reps; rep++) {
    for (const [i, model] of models.entries()) {
      const fig = await runOnce(model, job);
      if (rep > 0 && fig) runs[i]!.push(fig);
    }
  }
  if (models[0]!.ep!.comm.rank === 0) writeFileSync(outPath, JSON.stringify({ runs }));
}

/** One data-parallel generation; rank 0 gets the figures of every rank. */
async function runOnce(model: Model, job: EpBenchJob): Promise<EpRunFigures | null> {
  const ep = model.ep!;
  const comm = ep.comm;
  const c = ep.counters;
  const before = { rows: c.expertRows, exchange: c.exchangeMs, expert: c.expertMs };
  c.rowLog = [];
  comm.barrier();
  comm.resetStats();
  const t0 = performance.now();
  await dpGenerate(model, job.prompts, { maxTokens: job.genTokens, temperature: 0, stopAtEos: false });
  const wall = performance.now() - t0;
  // per rank: wall, bytes sent, exchange ms, expert ms, expert rows, held expert bytes, RSS; then the row log
  const mine = Float64Array.of(wall, comm.stats.bytesSent, c.exchangeMs - before.exchange, c.expertMs - before.expert, c.expertRows - before.rows, ep.experts.bytes, process.memoryUsage().rss);
  const per = gather(comm, mine);
  const log = gather(comm, Float64Array.from(c.rowLog));
  c.rowLog = undefined;
  if (comm.rank !== 0) return null;
  const N = comm.size;
  const col = (i: number): number[] => Array.from({ length: N }, (_, r) => per[r * mine.length + i]!);
  const calls = c.layers > 0 ? log.length / N : 0;
  return {
    wall_ms: Math.max(...col(0)),
    bytes_sent: col(1).reduce((a, b) => a + b, 0),
    exchange_ms: col(2),
    expert_ms: col(3),
    expert_rows: col(4),
    expert_bytes: col(5),
    rss: col(6),
    row_log: Array.from({ length: calls }, (_, i) => Array.from({ length: N }, (_, r) => log[r * calls + i]!)),
  };
}

/** Every rank's equal-length array, concatenated in rank order (on every rank). */
function gather(comm: Communicator, mine: Float64Array): Float64Array {
  const out = new Float64Array(mine.length * comm.size);
  comm.allGatherV(mine, out, new Int32Array(comm.size).fill(mine.length));
  return out;
}

const [jobPath, outPath] = process.argv.slice(2);
if (jobPath && outPath) await main(jobPath, outPath);
