// Child process: one timed moesaic generation (see protocol.ts). Not a module to import.
import { performance } from 'node:perf_hooks';
import { loadModel } from '../model/model.js';
import { KvCache } from '../model/kv-cache.js';
import { argmax } from '../model/sampling.js';
import { bf16MatmulKernel, getThreads, isa } from '../tensor/cpu-backend.js';
import { childMain, peakRssBytes, readJob } from './child.js';
import { tokenCost } from './model-cost.js';
import { timeGeneration } from './timing.js';
import type { GenerateJob, RunResult } from './protocol.js';

await childMain(async (): Promise<RunResult> => {
  const job = await readJob<GenerateJob>();
  const model = await loadModel(job.model, { ...job.runOptions, backend: 'cpu', threads: job.threads });
  const { config: cfg, transformer } = model;
  const P = job.promptIds.length;
  const N = job.genTokens;
  const newCache = () => new KvCache(cfg.numLayers, P + N, cfg.numKvHeads * cfg.headDim);

  if (job.warmup) {
    const cache = newCache();
    const first = argmax(transformer.forward(job.promptIds, cache));
    if (N > 1) transformer.forward([first], cache);
  }

  // greedy = argmax, exactly what Sampler does at temperature 0; buffers are allocated before timing
  const cache = newCache();
  let logits: Float32Array = new Float32Array(0);
  const t = timeGeneration(performance, {
    prefill: () => void (logits = transformer.forward(job.promptIds, cache)),
    sampleFirst: () => argmax(logits),
    decode: (last) => argmax(transformer.forward([last], cache)),
  }, N);

  return {
    engine: 'moesaic',
    prefillMs: t.prefillMs,
    ttftMs: t.ttftMs,
    decodeMs: t.decodeMs,
    decodeSteps: N - 1,
    genTokens: N,
    promptTokens: P,
    peakRssBytes: peakRssBytes(),
    ids: t.ids,
    cost: tokenCost(cfg, transformer.weights, P),
    build: `moesaic cpu backend (${isa()}${job.runOptions?.matmulPrecision === 'bf16' ? `, bf16 matmul precision: ${bf16MatmulKernel()}` : ''}; decode: ${transformer.decodePath === 'fused' ? 'fused step' : 'op by op'})`,
    threads: getThreads(),
  };
});
