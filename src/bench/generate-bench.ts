import { statSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fail } from '../errors.js';
import { openCheckpoint } from '../model/checkpoint.js';
import type { ExportType } from '../model/gguf/metadata.js';
import { fileMapper } from '../tensor/backends.js';
import { runChild } from './child.js';
import { cachedGguf } from './gguf-cache.js';
import { ensureNodeLlamaCpp } from './llama-install.js';
import { prefillFlops } from './model-cost.js';
import { promptIds, specialTokenIds } from './prompt.js';
import type { BandwidthResult, GenerateJob, RunResult, TokenCost } from './protocol.js';
import { median, medianRecord, ratioRecord } from './stats.js';

/**
 * `bench generate`: the same P prompt ids and N greedy tokens through moesaic and (with vs) llama.cpp,
 * each run in a fresh child process, alternating engines repetition by repetition; every figure is
 * the median over the repetitions and the ratio is moesaic / llama.cpp per figure.
 */
export interface GenerateBenchOptions {
  readonly model: string;
  readonly promptTokens: number;
  readonly genTokens: number;
  readonly reps: number;
  readonly threads: number;
  readonly vs?: 'llama.cpp';
  readonly warmup: boolean;
  readonly seed: number;
  readonly cacheRoot: string;
  readonly childTimeoutMs: number;
}

/** The per-run figures that get a median and a ratio. */
export type Figure = 'prefill_tok_s' | 'ttft_ms' | 'decode_tok_s' | 'peak_rss_mib' | 'decode_gb_s' | 'prefill_gflop_s';
export type Figures = Record<Figure, number>;

export interface EngineReport extends Figures {
  readonly build: string;
  readonly model: string;
  readonly threads: number;
  readonly runs: readonly Figures[];
  readonly ids: readonly number[];
}

export interface MoesaicReport extends EngineReport {
  readonly prompt_tokens: number;
  readonly gen_tokens: number;
  readonly reps: number;
  readonly decode_bytes_per_token: number;
  readonly macs_per_token: number;
  readonly prefill_flops: number;
  readonly memory_bandwidth_gb_s: number;
  readonly bandwidth_method: BandwidthResult['method'];
  /** achieved decode GB/s over measured machine bandwidth, in percent */
  readonly decode_pct_of_bandwidth: number;
  /** where it ran; a 1-minute load average above the cores means other work shared the machine */
  readonly machine: { readonly cpu: string; readonly cores: number; readonly load_avg_before: number; readonly load_avg_after: number };
}

export interface LlamaReport extends EngineReport {
  /** how many leading generated ids equal moesaic's (first repetition of each) */
  readonly greedy_ids_agree: number;
}

export interface GenerateBenchResult {
  readonly moesaic: MoesaicReport;
  readonly llama_cpp?: LlamaReport;
  readonly ratio?: Partial<Figures>;
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

  let llamaModel: string | undefined;
  let entry: string | undefined;
  if (o.vs === 'llama.cpp') {
    entry = ensureNodeLlamaCpp(o.cacheRoot, log).entry;
    if (statSync(o.model).isDirectory()) {
      const type: ExportType = ckpt.tensors.get('model.embed_tokens.weight').dtype === 'f32' ? 'f32' : 'bf16';
      llamaModel = cachedGguf(o.model, type, o.cacheRoot, mapFile, log);
    } else llamaModel = o.model;
  }

  const job = (model: string): GenerateJob => ({
    model,
    promptIds: ids,
    genTokens: o.genTokens,
    threads: o.threads,
    warmup: o.warmup,
    nodeLlamaCppEntry: entry,
  });
  const loadBefore = loadavg()[0]!;
  const mo: RunResult[] = [];
  const ll: RunResult[] = [];
  const bw: BandwidthResult[] = [];
  for (let rep = 1; rep <= o.reps; rep++) {
    bw.push(await runChild<BandwidthResult>(WORKER('bandwidth-worker'), { threads: o.threads }, o.childTimeoutMs));
    log(`rep ${rep}/${o.reps}: memory bandwidth ${bw[bw.length - 1]!.gbs.toFixed(1)} GB/s (${bw[bw.length - 1]!.method})`);
    mo.push(await runChild<RunResult>(WORKER('moesaic-worker'), job(o.model), o.childTimeoutMs));
    log(`rep ${rep}/${o.reps}: moesaic   ${oneLine(mo[mo.length - 1]!)}`);
    if (llamaModel) {
      ll.push(await runChild<RunResult>(WORKER('llama-worker'), job(llamaModel), o.childTimeoutMs));
      log(`rep ${rep}/${o.reps}: llama.cpp ${oneLine(ll[ll.length - 1]!)}`);
    }
  }

  const cost = mo[0]!.cost!;
  const bandwidth = median(bw.map((b) => b.gbs));
  const moesaic = engineReport(mo, cost, o.model);
  const result: { moesaic: MoesaicReport; llama_cpp?: LlamaReport; ratio?: Partial<Figures> } = {
    moesaic: {
      ...moesaic,
      prompt_tokens: o.promptTokens,
      gen_tokens: o.genTokens,
      reps: o.reps,
      decode_bytes_per_token: cost.decodeBytesPerToken,
      macs_per_token: cost.macsPerToken,
      prefill_flops: prefillFlops(cost, o.promptTokens),
      memory_bandwidth_gb_s: bandwidth,
      bandwidth_method: bw[0]!.method,
      decode_pct_of_bandwidth: (100 * moesaic.decode_gb_s) / bandwidth,
      machine: { cpu: cpus()[0]?.model ?? '?', cores: cpus().length, load_avg_before: loadBefore, load_avg_after: loadavg()[0]! },
    },
  };
  if (llamaModel && ll.length > 0) {
    // the same model-side cost applies: llama.cpp reads the same weights (exported in the same dtype)
    const llama = engineReport(ll, cost, llamaModel);
    result.llama_cpp = { ...llama, greedy_ids_agree: agreeingPrefix(mo[0]!.ids, ll[0]!.ids) };
    result.ratio = ratioRecord<Figure>(pickFigures(moesaic), pickFigures(llama));
  }
  return result;
}

/** Figures of one run; decode needs at least 2 generated tokens (N-1 decode steps). */
export function runFigures(r: RunResult, cost: TokenCost): Figures {
  const decodeSecs = r.decodeMs / 1000;
  const steps = r.genTokens - 1;
  const decodeTokS = steps > 0 && decodeSecs > 0 ? steps / decodeSecs : NaN;
  return {
    prefill_tok_s: r.promptTokens / (r.prefillMs / 1000),
    ttft_ms: r.ttftMs,
    decode_tok_s: decodeTokS,
    peak_rss_mib: r.peakRssBytes / 2 ** 20,
    decode_gb_s: (decodeTokS * cost.decodeBytesPerToken) / 1e9,
    prefill_gflop_s: prefillFlops(cost, r.promptTokens) / (r.prefillMs / 1000) / 1e9,
  };
}

export function engineReport(runs: readonly RunResult[], cost: TokenCost, model: string): EngineReport {
  const figures = runs.map((r) => runFigures(r, cost));
  return { ...medianRecord<Figure>(figures), build: runs[0]!.build, model, threads: runs[0]!.threads, runs: figures, ids: runs[0]!.ids };
}

export function pickFigures(r: Figures): Figures {
  const { prefill_tok_s, ttft_ms, decode_tok_s, peak_rss_mib, decode_gb_s, prefill_gflop_s } = r;
  return { prefill_tok_s, ttft_ms, decode_tok_s, peak_rss_mib, decode_gb_s, prefill_gflop_s };
}

/** Number of leading positions where two id sequences are equal. */
export function agreeingPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

export function defaultThreads(): number {
  return cpus().length;
}

function oneLine(r: RunResult): string {
  const decode = r.genTokens > 1 ? ((r.genTokens - 1) / (r.decodeMs / 1000)).toFixed(2) : 'n/a';
  return `prefill ${(r.promptTokens / (r.prefillMs / 1000)).toFixed(1)} tok/s, ttft ${r.ttftMs.toFixed(0)} ms, decode ${decode} tok/s, peak RSS ${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB`;
}
