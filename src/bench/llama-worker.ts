// Child process: one timed llama.cpp generation through node-llama-cpp (see protocol.ts).
// node-llama-cpp is not a dependency of moesaic: it is imported from the cache folder where
// llama-install.ts put it, so only the few calls used here are typed.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { childMain, peakRssBytes, readJob } from './child.js';
import type { GenerateJob, RunResult } from './protocol.js';

interface LlamaSequence {
  evaluate(tokens: number[], options: { temperature: number; yieldEogToken: boolean }): AsyncGenerator<number, void, void>;
  clearHistory(): Promise<void>;
}
interface LlamaContext {
  getSequence(): LlamaSequence;
  readonly idealThreads: number;
  readonly flashAttention: 'auto' | boolean;
}
interface LlamaModel {
  createContext(o: { contextSize: number; batchSize: number; threads: number; sequences: number }): Promise<LlamaContext>;
}
interface Llama {
  loadModel(o: { modelPath: string; gpuLayers: number }): Promise<LlamaModel>;
  readonly llamaCppRelease: { repo: string; release: string };
  readonly buildType: string;
}
interface NodeLlamaCpp {
  getLlama(o: { gpu: false; build: 'never'; logLevel: string; maxThreads: number }): Promise<Llama>;
}

await childMain(async (): Promise<RunResult> => {
  const job = await readJob<GenerateJob>();
  if (!job.nodeLlamaCppEntry) throw new Error('no node-llama-cpp entry given');
  const lib = (await import(pathToFileURL(job.nodeLlamaCppEntry).href)) as NodeLlamaCpp;
  // maxThreads 0: the context's thread count is then exactly the one asked for, never a hint
  const llama = await lib.getLlama({ gpu: false, build: 'never', logLevel: 'error', maxThreads: 0 });
  const model = await llama.loadModel({ modelPath: job.model, gpuLayers: 0 });
  const P = job.promptIds.length;
  const N = job.genTokens;
  // batch >= P so the prefill is one llama_decode call; context >= P + N so no context shift happens
  const context = await model.createContext({ contextSize: P + N, batchSize: P, threads: job.threads, sequences: 1 });
  const seq = context.getSequence();
  // temperature 0 is greedy sampling; yieldEogToken keeps generating through an end-of-generation token
  const opts = { temperature: 0, yieldEogToken: true };

  if (job.warmup) {
    const it = seq.evaluate([...job.promptIds], opts);
    await it.next();
    if (N > 1) await it.next();
    await it.return();
    await seq.clearHistory();
  }

  // the ids are passed as tokens, so nothing is tokenised and no BOS is added
  const ids: number[] = [];
  const t0 = performance.now();
  let t1 = t0;
  for await (const id of seq.evaluate([...job.promptIds], opts)) {
    if (ids.length === 0) t1 = performance.now();
    ids.push(id);
    if (ids.length >= N) break;
  }
  const t2 = performance.now();

  const version = packageVersion(job.nodeLlamaCppEntry);
  const rel = llama.llamaCppRelease;
  return {
    engine: 'llama.cpp',
    // node-llama-cpp samples inside the same call as the prefill decode, so prefill = time to first token
    prefillMs: t1 - t0,
    ttftMs: t1 - t0,
    decodeMs: t2 - t1,
    decodeSteps: ids.length - 1,
    genTokens: ids.length, // fewer than N only if llama.cpp stopped early
    promptTokens: P,
    peakRssBytes: peakRssBytes(),
    ids,
    build: `node-llama-cpp ${version}, llama.cpp ${rel.repo} ${rel.release} (${llama.buildType} CPU build, ${context.idealThreads} threads, flash attention ${String(context.flashAttention)})`,
    threads: context.idealThreads,
  };
});

/** node-llama-cpp's version from the package.json above its entry module. */
function packageVersion(entry: string): string {
  let dir = dirname(entry);
  for (let i = 0; i < 4; i++, dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'node-llama-cpp') return pkg.version ?? '?';
    } catch {
      // keep walking up
    }
  }
  return '?';
}
