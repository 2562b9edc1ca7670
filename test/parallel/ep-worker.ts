/**
 * One rank of the expert-parallel equality test (test/parallel/ep-equality.test.ts starts it with
 * mpirun). For each model and each configuration it loads the model as this rank, runs data-parallel
 * logits and greedy generation over the prompts, and rank 0 prints one JSON line with the results and
 * the bytes every configuration exchanged. Doing every configuration in one mpirun keeps CI short.
 * It does nothing unless MOESAIC_EP_WORKER names a job file (node --test also loads this file).
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { loadModel } from '../../src/model/model.js';
import { dpGenerate, dpLogits } from '../../src/parallel/data-parallel.js';
import type { ParallelOptions } from '../../src/parallel/ep-runtime.js';

export interface WorkerJob {
  models: string[];
  prompts: number[][];
  maxTokens: number;
  configs: { name: string; gating?: string; capacityFactor?: number; parallel: ParallelOptions; trace?: boolean }[];
  /** per model: a routing trace for the fitted placements */
  traces: string[];
}

export interface WorkerResult {
  model: string;
  config: string;
  logits: number[][][];
  ids: number[][];
  bytes: number;
  expertRows: number;
  /** distinct network namespaces the ranks ran in (the two-host test's evidence) */
  hosts: number;
  /** online rebalances done */
  rebalances: number;
}

/** This process's network namespace, as a number (/proc/self/ns/net -> net:[inode]). */
function netNamespace(): number {
  try {
    return Number(/\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/net'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

async function main(path: string): Promise<void> {
  const job = JSON.parse(readFileSync(path, 'utf8')) as WorkerJob;
  const results: WorkerResult[] = [];
  for (const [m, dir] of job.models.entries()) {
    for (const c of job.configs) {
      const parallel = c.trace ? { ...c.parallel, placementTrace: job.traces[m] } : c.parallel;
      const model = await loadModel(dir, { backend: 'cpu', threads: 1, gating: c.gating, capacityFactor: c.capacityFactor, ...parallel });
      const comm = model.ep!.comm;
      comm.resetStats();
      const logits = dpLogits(model, job.prompts);
      const ids = await dpGenerate(model, job.prompts, { maxTokens: job.maxTokens, temperature: 0, stopAtEos: false });
      const bytes = new Float64Array([comm.stats.bytesSent, model.ep!.counters.expertRows]);
      comm.allReduce(bytes, 'sum');
      const spaces = new Float64Array(comm.size);
      comm.allGatherV(Float64Array.of(netNamespace()), spaces, new Int32Array(comm.size).fill(1));
      if (logits && ids) {
        const hosts = new Set(spaces).size;
        results.push({ model: dir, config: c.name, logits: logits.map((p) => p.map((r) => Array.from(r))), ids, bytes: bytes[0]!, expertRows: bytes[1]!, hosts, rebalances: model.ep!.rebalances.length });
      }
    }
  }
  if (results.length > 0) process.stdout.write(`${JSON.stringify(results)}\n`);
}

const jobFile = process.env['MOESAIC_EP_WORKER'];
if (jobFile) await main(jobFile);
