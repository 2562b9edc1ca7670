// Child process of `bench memory`: one timed greedy generation, buffered or memory-mapped. Not a module to import.
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { loadModel } from '../model/model.js';
import { TraceRecorder } from '../trace/recorder.js';
import { childMain, peakRssBytes, readJob } from './child.js';
import type { MemoryJob, MemoryRun } from './memory-protocol.js';

await childMain(async (): Promise<MemoryRun> => {
  const job = await readJob<MemoryJob>();
  // into the memory cgroup before the model is touched: its page cache and heap are charged there
  if (job.cgroup) writeFileSync(`${job.cgroup}/cgroup.procs`, String(process.pid));
  const buffered = job.share !== undefined;
  const model = await loadModel(job.model, {
    backend: 'cpu',
    threads: job.threads,
    hugepages: 'off', // the baseline is the mapped checkpoint paged by the kernel inside the cgroup
    ...(buffered && { expertCache: { share: job.share! }, cachePolicy: job.policy as 'lifo' | undefined, prefetch: job.prefetch }),
  });
  const recorder = job.tracePath ? new TraceRecorder(job.tracePath, job.model, model.config) : undefined;
  try {
    const seq = model.newSequence(job.promptIds, { maxTokens: job.genTokens, stopAtEos: false });
    const observer = recorder?.observer;
    const t0 = performance.now();
    const first = model.step([{ seq, tokens: seq.remainingPrompt }], { observer });
    const t1 = performance.now();
    const ids = first.map((t) => t.id);
    while (!seq.done) ids.push(...model.step([{ seq, tokens: 1 }], { observer }).map((t) => t.id));
    const t2 = performance.now();
    const cache = model.expertCacheStats();
    await recorder?.close();
    return {
      prefillMs: t1 - t0,
      ttftMs: t1 - t0,
      decodeMs: t2 - t1,
      genTokens: ids.length,
      promptTokens: job.promptIds.length,
      peakRssBytes: peakRssBytes(),
      ids,
      cache,
      slotsPerLayer: model.expertCache?.sizing.slotsPerLayer,
      cacheBytes: model.expertCache?.sizing.cacheBytes,
    };
  } catch (e) {
    recorder?.abort();
    throw e;
  } finally {
    model.close();
  }
});
