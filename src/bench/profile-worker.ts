// Child process: one profiled moesaic decode (`bench generate --profile`, see profile.ts). Not a module to import.
import { performance } from 'node:perf_hooks';
import { Detokenizer } from '../model/detokenizer.js';
import { KvCache } from '../model/kv-cache.js';
import { loadModel } from '../model/model.js';
import { argmax } from '../model/sampling.js';
import type { FusedDecodeTimes } from '../model/fused-decode.js';
import { Transformer } from '../model/transformer.js';
import { zeroTimes } from '../moe/dispatch.js';
import type { LayerStats } from '../moe/moe-layer.js';
import { cpuBackend, getThreads, poolStats, setPoolProfiling } from '../tensor/cpu-backend.js';
import { childMain, readJob } from './child.js';
import type { DecodeProfile } from './profile.js';
import { ProfilingBackend, weightRows } from './profile.js';
import type { GenerateJob } from './protocol.js';
import { median } from './stats.js';

/** DecodeProfile with its Map as an object, for the JSON line. */
export type DecodeProfileJson = Omit<DecodeProfile, 'kernels'> & { kernels: Record<string, { calls: number; ms: number; bytes: number }> };

await childMain(async (): Promise<DecodeProfileJson> => {
  const job = await readJob<GenerateJob>();
  const model = await loadModel(job.model, { ...job.runOptions, backend: 'cpu', threads: job.threads });
  const { config: cfg, transformer: plain } = model;
  const rows = weightRows(plain.weights);
  const prof = new ProfilingBackend(plain.backend, rows);
  const t = new Transformer(cfg, plain.weights, prof, plain.router, plain.policy, plain.experts);
  for (const w of t.fusedQkv) if (w) rows.set(w, 'attn q/k/v GEMV');
  const P = job.promptIds.length;
  const N = job.genTokens;
  const newCache = () => new KvCache(cfg.numLayers, P + N, cfg.numKvHeads * cfg.headDim);
  const moe = zeroTimes();
  const observer = (_l: number, _r: unknown, _p: unknown, stats: LayerStats) => {
    for (const k of Object.keys(moe) as (keyof typeof moe)[]) moe[k] += stats.times[k];
  };

  // warm-up as in the timed bench: pages in the weights, sizes every buffer
  const warm = newCache();
  t.forward([argmax(t.forward(job.promptIds, warm))], warm);

  const cache = newCache();
  const generated = [argmax(t.forward(job.promptIds, cache))];
  const detok = new Detokenizer((ids) => model.decode(ids));
  detok.push(generated);
  prof.reset();
  for (const k of Object.keys(moe) as (keyof typeof moe)[]) moe[k] = 0;
  setPoolProfiling(true);
  let forwardMs = 0;
  let sampleMs = 0;
  let detokenizeMs = 0;
  for (let i = 1; i < N; i++) {
    const t0 = performance.now();
    const logits = t.forward([generated[generated.length - 1]!], cache, { observer });
    const t1 = performance.now();
    generated.push(argmax(logits));
    const t2 = performance.now();
    detok.push(generated);
    const t3 = performance.now();
    forwardMs += t1 - t0;
    sampleMs += t2 - t1;
    detokenizeMs += t3 - t2;
  }
  const pool = poolStats();
  setPoolProfiling(false);

  // The rows above profile the per-op path op by op (the profiling backend sees every call). The token
  // unprofiled, on the model's own path (fused where it qualifies, src/model/fused-decode.ts) and on the
  // per-op path, in alternating bursts at the same depth:
  const decodePath = plain.decodePath;
  const perOp = new Transformer(cfg, plain.weights, Object.create(plain.backend) as typeof plain.backend, plain.router, plain.policy, plain.experts);
  const last = generated[generated.length - 1]!;
  const bursts: Record<'fused' | 'perOp', number[]> = { fused: [], perOp: [] };
  // and the fused step's own split: its two native calls per layer and the routing between them
  const fusedTimes: FusedDecodeTimes = { attentionMs: 0, routingMs: 0, expertsMs: 0, expertBytes: 0 };
  let fusedTokenMs = 0;
  if (decodePath === 'fused') {
    for (let i = 0; i < 32; i++) {
      const t0 = performance.now();
      argmax(plain.forward([last], cache, { fusedTimes }));
      fusedTokenMs += performance.now() - t0;
      cache.length--;
    }
  }
  for (let r = 0; r < 7; r++) {
    for (const [name, tr] of [['fused', plain], ['perOp', perOp]] as const) {
      if (name === 'fused' && decodePath !== 'fused') continue;
      const t0 = performance.now();
      for (let i = 0; i < 8; i++) {
        argmax(tr.forward([last], cache));
        cache.length--;
      }
      bursts[name].push((performance.now() - t0) / 8);
    }
  }

  // one JS -> native call with (almost) no work: argument checks plus the N-API transition
  const one = new Float32Array(1);
  const calls = 20_000;
  const c0 = performance.now();
  for (let i = 0; i < calls; i++) cpuBackend.siluMul(one, one, one, 1);
  const callOverheadUs = ((performance.now() - c0) * 1000) / calls;

  return {
    tokens: N - 1,
    threads: getThreads(),
    forwardMs,
    sampleMs,
    detokenizeMs,
    kernels: Object.fromEntries(prof.snapshot()),
    moe,
    pool,
    callOverheadUs,
    decodePath,
    fusedMs: decodePath === 'fused' ? median(bursts.fused) : undefined,
    perOpMs: median(bursts.perOp),
    fused:
      decodePath === 'fused'
        ? {
            tokenMs: fusedTokenMs / 32,
            attentionMs: fusedTimes.attentionMs / 32,
            routingMs: fusedTimes.routingMs / 32,
            expertsMs: fusedTimes.expertsMs / 32,
            attentionBytes: plain.fusedAttentionBytes,
            expertBytes: fusedTimes.expertBytes / 32,
          }
        : undefined,
  };
});
