import { statSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fail } from '../errors.js';
import { openCheckpoint } from '../model/checkpoint.js';
import type { ExportType } from '../model/gguf/metadata.js';
import type { RunOptions } from '../options/run-options.js';
import { fileMapper } from '../tensor/backends.js';
import { runChild } from './child.js';
import { cachedGguf } from './gguf-cache.js';
import { runLlamaBench } from './llama-bench-run.js';
import { ensureNodeLlamaCpp } from './llama-install.js';
import { ensureLlamaCppTools } from './llama-tools.js';
import { prefillFlops } from './model-cost.js';
import { promptIds, specialTokenIds } from './prompt.js';
import type { BandwidthResult, GenerateJob, RunResult, TokenCost } from './protocol.js';
import { median, medianRecord } from './stats.js';

/**
 * `bench generate`: the same P prompt ids and N greedy tokens through moesaic and (with vs) a
 * competitor on the same weights, each engine swept over thread counts. Every run is a fresh process;
 * within a repetition each thread count runs the bandwidth probe, moesaic and the competitor one
 * after another, so load from elsewhere hits all alike. Every figure is the median over repetitions;
 * engines are compared best thread count against best thread count, since that is what a user of
 * either would run.
 *
 * Competitors: `llama.cpp` is llama.cpp's own `llama-bench` (built from node-llama-cpp's source
 * bundle, llama-tools.ts), the fair yardstick; `node-llama-cpp` runs the same library through its Node
 * binding, which adds a libuv worker per token and reports the greedy ids it generated.
 */
export type Competitor = 'llama.cpp' | 'node-llama-cpp';
export const COMPETITORS: readonly Competitor[] = ['llama.cpp', 'node-llama-cpp'];

export interface GenerateBenchOptions {
  readonly model: string;
  readonly promptTokens: number;
  readonly genTokens: number;
  readonly reps: number;
  /** thread counts to sweep, each engine runs at every one */
  readonly threads: readonly number[];
  readonly vs?: Competitor;
  readonly warmup: boolean;
  readonly seed: number;
  readonly cacheRoot: string;
  readonly childTimeoutMs: number;
  /** moesaic's run-time options (BENCH_RUN_OPTION_KEYS), passed to every moesaic worker */
  readonly runOptions?: RunOptions;
}

/** The run-time options `bench generate` accepts for moesaic (threads are swept, the backend is cpu). */
export const BENCH_RUN_OPTION_KEYS: readonly string[] = ['matmulPrecision', 'hugepages'];

/** The per-run figures that get a median and a ratio. */
export type Figure = 'prefill_tok_s' | 'ttft_ms' | 'decode_tok_s' | 'peak_rss_mib' | 'decode_gb_s' | 'prefill_gflop_s';
export type Figures = Record<Figure, number>;

/** One engine at one thread count: medians, every run, and the bandwidth probe at that count. */
export interface ThreadsReport extends Figures {
  readonly threads: number;
  readonly memory_bandwidth_gb_s: number;
  /** achieved decode GB/s over the probe at the same thread count, in percent */
  readonly decode_pct_of_bandwidth: number;
  readonly runs: readonly Figures[];
}

export interface EngineReport {
  readonly build: string;
  readonly model: string;
  readonly by_threads: readonly ThreadsReport[];
  /** the thread counts with the highest median decode and prefill tokens/s */
  readonly best_decode: ThreadsReport;
  readonly best_prefill: ThreadsReport;
  /** greedy ids of the first run (empty for llama-bench, which samples nothing) */
  readonly ids: readonly number[];
}

export interface GenerateBenchResult {
  readonly prompt_tokens: number;
  readonly gen_tokens: number;
  readonly reps: number;
  readonly decode_bytes_per_token: number;
  readonly macs_per_token: number;
  readonly prefill_flops: number;
  /** the best probe over the sweep's thread counts: the machine's read bandwidth */
  readonly memory_bandwidth_gb_s: number;
  readonly bandwidth_method: BandwidthResult['method'];
  /** where it ran; a 1-minute load average above the cores means other work shared the machine */
  readonly machine: { readonly cpu: string; readonly cores: number; readonly load_avg_before: number; readonly load_avg_after: number };
  readonly moesaic: EngineReport;
  readonly competitor?: EngineReport & { readonly engine: Competitor; readonly greedy_ids_agree: number | null };
  /** moesaic over the competitor, each at its best thread count; and per thread count */
  readonly best_vs_best?: { readonly decode_tok_s: number; readonly prefill_tok_s: number };
  readonly ratio_by_threads?: readonly { readonly threads: number; readonly decode_tok_s: number; readonly prefill_tok_s: number }[];
}

const WORKER = (name: string) => new URL(`./${name}.js`, import.meta.url);

export async function runGenerateBench(o: GenerateBenchOptions, log: (msg: string) => void): Promise<GenerateBenchResult> {
  const mapFile = await fileMapper();
  const ckpt = openCheckpoint(o.model, mapFile);
  const cfg = ckpt.config;
  if (o.promptTokens + o.genTokens > cfg.maxPositions) {
    fail('E_BAD_OPTION', `--prompt-tokens ${o.promptTokens} + --gen-tokens ${o.genTokens} exceed the model's context of ${cfg.maxPositions} positions`);
  }
  const ids = promptIds(cfg.vocabSize, specialTokenIds(o.model, cfg, mapFile), o.promptTokens, o.seed);

  const job = (model: string, threads: number, nodeLlamaCppEntry?: string): GenerateJob => ({
    model,
    promptIds: ids,
    genTokens: o.genTokens,
    threads,
    warmup: o.warmup,
    runOptions: o.runOptions,
    nodeLlamaCppEntry,
  });
  let competitor: ((threads: number) => Promise<RunResult>) | undefined;
  let competitorModel = o.model;
  if (o.vs) {
    if (statSync(o.model).isDirectory()) {
      const type: ExportType = ckpt.tensors.get('model.embed_tokens.weight').dtype === 'f32' ? 'f32' : 'bf16';
      competitorModel = cachedGguf(o.model, type, o.cacheRoot, mapFile, log);
    }
    if (o.vs === 'llama.cpp') {
      const exe = (await ensureLlamaCppTools(o.cacheRoot, log)).paths['llama-bench'];
      competitor = (threads) => runLlamaBench(exe, competitorModel, o.promptTokens, o.genTokens, threads, o.childTimeoutMs);
    } else {
      const entry = ensureNodeLlamaCpp(o.cacheRoot, log).entry;
      competitor = (threads) => runChild<RunResult>(WORKER('llama-worker'), job(competitorModel, threads, entry), o.childTimeoutMs);
    }
  }

  const loadBefore = loadavg()[0]!;
  const mo = new Map<number, RunResult[]>(o.threads.map((t) => [t, []]));
  const co = new Map<number, RunResult[]>(o.threads.map((t) => [t, []]));
  const bw = new Map<number, BandwidthResult[]>(o.threads.map((t) => [t, []]));
  for (let rep = 1; rep <= o.reps; rep++) {
    for (const t of o.threads) {
      const b = await runChild<BandwidthResult>(WORKER('bandwidth-worker'), { threads: t }, o.childTimeoutMs);
      bw.get(t)!.push(b);
      const m = await runChild<RunResult>(WORKER('moesaic-worker'), job(o.model, t), o.childTimeoutMs);
      mo.get(t)!.push(m);
      log(`rep ${rep}/${o.reps}, ${t} threads: bandwidth ${b.gbs.toFixed(1)} GB/s; moesaic   ${oneLine(m)}`);
      if (competitor) {
        const c = await competitor(t);
        co.get(t)!.push(c);
        log(`rep ${rep}/${o.reps}, ${t} threads: ${o.vs!.padEnd(9)} ${oneLine(c)}`);
      }
    }
  }

  const first = mo.get(o.threads[0]!)![0]!;
  const cost = first.cost!;
  const bandwidth = new Map(o.threads.map((t) => [t, median(bw.get(t)!.map((b) => b.gbs))]));
  const moesaic = engineReport(mo, bandwidth, cost, o.model);
  const result: GenerateBenchResult = {
    prompt_tokens: o.promptTokens,
    gen_tokens: o.genTokens,
    reps: o.reps,
    decode_bytes_per_token: cost.decodeBytesPerToken,
    macs_per_token: cost.macsPerToken,
    prefill_flops: prefillFlops(cost, o.promptTokens),
    memory_bandwidth_gb_s: Math.max(...bandwidth.values()),
    bandwidth_method: bw.get(o.threads[0]!)![0]!.method,
    machine: { cpu: cpus()[0]?.model ?? '?', cores: cpus().length, load_avg_before: loadBefore, load_avg_after: loadavg()[0]! },
    moesaic,
  };
  if (!competitor || !o.vs) return result;
  // the same model-side cost applies: the competitor reads the same weights (exported in the same dtype)
  const other = engineReport(co, bandwidth, cost, competitorModel);
  const otherIds = other.ids;
  return {
    ...result,
    competitor: { ...other, engine: o.vs, greedy_ids_agree: otherIds.length > 0 ? agreeingPrefix(moesaic.ids, otherIds) : null },
    best_vs_best: {
      decode_tok_s: moesaic.best_decode.decode_tok_s / other.best_decode.decode_tok_s,
      prefill_tok_s: moesaic.best_prefill.prefill_tok_s / other.best_prefill.prefill_tok_s,
    },
    ratio_by_threads: moesaic.by_threads.map((m, i) => ({
      threads: m.threads,
      decode_tok_s: m.decode_tok_s / other.by_threads[i]!.decode_tok_s,
      prefill_tok_s: m.prefill_tok_s / other.by_threads[i]!.prefill_tok_s,
    })),
  };
}

/** Figures of one run: decode counts the run's decode steps over decode time only. */
export function runFigures(r: RunResult, cost: TokenCost): Figures {
  const decodeSecs = r.decodeMs / 1000;
  const decodeTokS = r.decodeSteps > 0 && decodeSecs > 0 ? r.decodeSteps / decodeSecs : NaN;
  return {
    prefill_tok_s: r.promptTokens / (r.prefillMs / 1000),
    ttft_ms: r.ttftMs,
    decode_tok_s: decodeTokS,
    peak_rss_mib: r.peakRssBytes / 2 ** 20,
    decode_gb_s: (decodeTokS * cost.decodeBytesPerToken) / 1e9,
    prefill_gflop_s: prefillFlops(cost, r.promptTokens) / (r.prefillMs / 1000) / 1e9,
  };
}

/** Medians per thread count, and the best thread count for decode and for prefill (by median). */
export function engineReport(runs: ReadonlyMap<number, readonly RunResult[]>, bandwidth: ReadonlyMap<number, number>, cost: TokenCost, model: string): EngineReport {
  const byThreads: ThreadsReport[] = [...runs].map(([threads, rs]) => {
    const figures = rs.map((r) => runFigures(r, cost));
    const med = medianRecord<Figure>(figures);
    const gbs = bandwidth.get(threads) ?? NaN;
    return { threads, ...med, memory_bandwidth_gb_s: gbs, decode_pct_of_bandwidth: (100 * med.decode_gb_s) / gbs, runs: figures };
  });
  const best = (key: Figure) => byThreads.reduce((a, b) => (b[key] > a[key] ? b : a));
  const firstRuns = [...runs.values()][0]!;
  return { build: firstRuns[0]!.build, model, by_threads: byThreads, best_decode: best('decode_tok_s'), best_prefill: best('prefill_tok_s'), ids: firstRuns[0]!.ids };
}

/** Number of leading positions where two id sequences are equal. */
export function agreeingPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** The default sweep: 1 .. the machine's cores. */
export function defaultThreads(): number[] {
  return Array.from({ length: cpus().length }, (_, i) => i + 1);
}

function oneLine(r: RunResult): string {
  const decode = r.decodeSteps > 0 ? (r.decodeSteps / (r.decodeMs / 1000)).toFixed(2) : 'n/a';
  const rss = Number.isFinite(r.peakRssBytes) ? `, peak RSS ${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB` : '';
  return `prefill ${(r.promptTokens / (r.prefillMs / 1000)).toFixed(1)} tok/s, ttft ${r.ttftMs.toFixed(0)} ms, decode ${decode} tok/s${rss}`;
}
