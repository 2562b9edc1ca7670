import { readdirSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fail } from '../errors.js';
import { openCheckpoint } from '../model/checkpoint.js';
import { resolveWeights } from '../model/layer-weights.js';
import { fileMapper } from '../tensor/backends.js';
import { nativeAddon } from '../tensor/native.js';
import { runChild } from './child.js';
import { cgroupUnavailable, MemoryCgroup } from './memory-cgroup.js';
import type { MemoryJob, MemoryRun } from './memory-protocol.js';
import { promptIds, specialTokenIds } from './prompt.js';
import { median } from './stats.js';

/**
 * `bench memory`: expert buffering against the page-cache paging that memory-mapped engines get, at
 * the same memory. For each budget (a share of the model's expert bytes) the memory limit is
 * non-expert bytes + cache bytes + headroom; every buffered setting (policy x prefetch) runs in a
 * memory cgroup of that limit, and so does the same model fully memory-mapped (the baseline). Settings
 * alternate within each repetition, every run in a fresh process with the model file dropped from the
 * page cache first; figures are medians over repetitions.
 */
export interface MemoryBenchOptions {
  readonly model: string;
  /** shares of the model's expert bytes, e.g. [0.1, 0.25, 0.5, 1] */
  readonly budgets: readonly number[];
  readonly policies: readonly string[];
  readonly prefetch: readonly string[];
  readonly promptTokens: number;
  readonly genTokens: number;
  readonly reps: number;
  readonly threads: number;
  readonly headroomBytes: number;
  readonly seed: number;
  readonly childTimeoutMs: number;
  /** `simulate cache`'s miss rate for a recorded trace, policy and slots (the CLI passes the simulator in) */
  readonly simulate?: (trace: string, policy: string, slots: number) => Promise<number>;
}

/** One setting's medians. */
export interface SettingReport {
  readonly budget: number;
  /** 'buffered' or 'mmap' (the whole model memory-mapped, paging within the same cgroup limit) */
  readonly mode: 'buffered' | 'mmap';
  readonly policy?: string;
  readonly prefetch?: string;
  readonly limit_mib: number | null;
  readonly cache_mib?: number;
  readonly slots_per_layer?: number;
  readonly prefill_tok_s: number;
  readonly decode_tok_s: number;
  readonly ttft_ms: number;
  /** share of prefill + decode time spent waiting for expert reads */
  readonly stall_share?: number;
  readonly peak_rss_mib: number;
  /** the cgroup's peak charge: RSS + page cache */
  readonly cgroup_peak_mib?: number;
  readonly miss_rate?: number;
  /** `simulate cache` on this run's trace, same policy and slots (equal to miss_rate without prefetch) */
  readonly sim_miss_rate?: number;
  readonly prefetch_precision?: number;
  readonly prefetch_recall?: number;
  readonly read_gb_s?: number;
  /** runs the cgroup's OOM killer ended (their figures are missing from the medians) */
  readonly killed: number;
  /** greedy ids equal to the first memory-mapped run's */
  readonly ids_agree: boolean;
  /** decode tokens/s over the mmap baseline's at the same budget */
  readonly decode_vs_mmap?: number;
}

export interface MemoryBenchResult {
  readonly model: string;
  readonly expert_mib: number;
  readonly non_expert_mib: number;
  readonly headroom_mib: number;
  readonly prompt_tokens: number;
  readonly gen_tokens: number;
  readonly reps: number;
  readonly threads: number;
  /** why there is no baseline (cgroups unavailable), else null */
  readonly baseline_unavailable: string | null;
  readonly machine: { readonly cpu: string; readonly cores: number; readonly load_avg_before: number; readonly load_avg_after: number };
  readonly settings: readonly SettingReport[];
}

const WORKER = new URL('./memory-worker.js', import.meta.url);
const MIB = 2 ** 20;

/** Bytes of expert tensors and of everything else in the checkpoint. */
function modelBytes(model: string, mapFile: (path: string) => ArrayBuffer) {
  const ckpt = openCheckpoint(model, mapFile);
  const weights = resolveWeights(ckpt.config, ckpt.tensors);
  let experts = 0;
  for (const l of weights.layers) for (const e of l.moe?.experts ?? []) experts += e.gate.data.byteLength + e.up.data.byteLength + e.down.data.byteLength;
  let all = 0;
  for (const n of ckpt.tensors.names) all += ckpt.tensors.get(n).data.byteLength;
  return { cfg: ckpt.config, experts, nonExpert: all - experts, files: ckpt.tensors.source };
}

interface Setting {
  readonly budget: number;
  readonly mode: 'buffered' | 'mmap';
  readonly policy?: string;
  readonly prefetch?: string;
}

export async function runMemoryBench(o: MemoryBenchOptions, log: (msg: string) => void): Promise<MemoryBenchResult> {
  const mapFile = await fileMapper();
  const { cfg, experts, nonExpert } = modelBytes(o.model, mapFile);
  if (o.promptTokens + o.genTokens > cfg.maxPositions) fail('E_BAD_OPTION', `--prompt-tokens + --gen-tokens exceed the model's context of ${cfg.maxPositions}`);
  const ids = promptIds(cfg.vocabSize, specialTokenIds(o.model, cfg, mapFile), o.promptTokens, o.seed);
  const noCgroup = cgroupUnavailable();
  if (noCgroup) log(`memory cgroups unavailable (${noCgroup}): no memory limits, no mmap baseline; buffered settings still run`);
  const limitOf = (budget: number) => nonExpert + budget * experts + o.headroomBytes;
  const settings: Setting[] = [];
  for (const budget of o.budgets) {
    for (const policy of o.policies) for (const prefetch of o.prefetch) settings.push({ budget, mode: 'buffered', policy, prefetch });
    if (!noCgroup) settings.push({ budget, mode: 'mmap' });
  }
  const runs = new Map<Setting, Measured[]>(settings.map((s) => [s, []]));
  const files = modelFiles(o.model);
  const loadBefore = loadavg()[0]!;
  for (let rep = 1; rep <= o.reps; rep++) {
    for (const s of settings) {
      for (const f of files) nativeAddon().dropPageCache(f);
      const cg = noCgroup ? undefined : new MemoryCgroup(`moesaic-bench-${process.pid}-${rep}`, limitOf(s.budget));
      const trace = s.mode === 'buffered' ? join(tmpdir(), `moesaic-bench-memory-${process.pid}.jsonl`) : undefined;
      const job: MemoryJob = {
        model: o.model,
        promptIds: ids,
        genTokens: o.genTokens,
        threads: o.threads,
        ...(s.mode === 'buffered' && { share: s.budget, policy: s.policy, prefetch: s.prefetch, tracePath: trace }),
        cgroup: cg?.path,
      };
      const what = `${(100 * s.budget).toFixed(0)}% ${s.mode === 'mmap' ? 'mmap' : `${s.policy}/${s.prefetch}`}`;
      try {
        const run = await runChild<MemoryRun>(WORKER, job, o.childTimeoutMs);
        const sim = trace && o.simulate && run.slotsPerLayer ? await o.simulate(trace, s.policy!, run.slotsPerLayer) : undefined;
        runs.get(s)!.push({ run, cgroupPeak: cg?.peakBytes(), sim });
        log(`rep ${rep}/${o.reps} ${what}: decode ${((run.genTokens - 1) / (run.decodeMs / 1000)).toFixed(2)} tok/s, peak RSS ${(run.peakRssBytes / MIB).toFixed(0)} MiB${cg ? ` (limit ${(limitOf(s.budget) / MIB).toFixed(0)} MiB)` : ''}`);
      } catch (e) {
        if (!cg?.oomKilled()) throw e;
        runs.get(s)!.push({});
        log(`rep ${rep}/${o.reps} ${what}: KILLED by the cgroup's OOM killer (limit ${(limitOf(s.budget) / MIB).toFixed(0)} MiB)`);
      } finally {
        cg?.remove();
        if (trace) rmSync(trace, { force: true });
      }
    }
  }
  const reference = [...runs.values()].flatMap((r) => r.map((x) => x.run)).find((r) => r !== undefined)?.ids;
  const reports = settings.map((s) => report(s, runs.get(s)!, noCgroup ? null : limitOf(s.budget), reference ?? []));
  const withRatio = reports.map((r) => {
    const base = reports.find((b) => b.mode === 'mmap' && b.budget === r.budget);
    return r.mode === 'buffered' && base ? { ...r, decode_vs_mmap: r.decode_tok_s / base.decode_tok_s } : r;
  });
  return {
    model: o.model,
    expert_mib: experts / MIB,
    non_expert_mib: nonExpert / MIB,
    headroom_mib: o.headroomBytes / MIB,
    prompt_tokens: o.promptTokens,
    gen_tokens: o.genTokens,
    reps: o.reps,
    threads: o.threads,
    baseline_unavailable: noCgroup,
    machine: { cpu: cpus()[0]?.model ?? '?', cores: cpus().length, load_avg_before: loadBefore, load_avg_after: loadavg()[0]! },
    settings: withRatio,
  };
}

/** One child's result (none when the cgroup's OOM killer ended it), the cgroup's peak, the simulated miss rate. */
interface Measured {
  readonly run?: MemoryRun;
  readonly cgroupPeak?: number;
  readonly sim?: number;
}

function report(s: Setting, rs: Measured[], limit: number | null, reference: readonly number[]): SettingReport {
  const ok = rs.flatMap((r) => (r.run ? [{ run: r.run, cgroupPeak: r.cgroupPeak, sim: r.sim }] : []));
  const med = (f: (r: MemoryRun) => number | undefined) => {
    const v = ok.map((x) => f(x.run)).filter((x): x is number => x !== undefined);
    return v.length > 0 ? median(v) : undefined;
  };
  const first = ok[0]?.run;
  return {
    budget: s.budget,
    mode: s.mode,
    policy: s.policy,
    prefetch: s.prefetch,
    limit_mib: limit === null ? null : limit / MIB,
    cache_mib: first?.cacheBytes !== undefined ? first.cacheBytes / MIB : undefined,
    slots_per_layer: first?.slotsPerLayer,
    prefill_tok_s: med((r) => r.promptTokens / (r.prefillMs / 1000)) ?? NaN,
    decode_tok_s: med((r) => (r.genTokens - 1) / (r.decodeMs / 1000)) ?? NaN,
    ttft_ms: med((r) => r.ttftMs) ?? NaN,
    stall_share: med((r) => (r.cache ? r.cache.stallMs / (r.prefillMs + r.decodeMs) : undefined)),
    peak_rss_mib: (med((r) => r.peakRssBytes) ?? NaN) / MIB,
    cgroup_peak_mib: ok.some((x) => x.cgroupPeak !== undefined) ? median(ok.flatMap((x) => (x.cgroupPeak === undefined ? [] : [x.cgroupPeak]))) / MIB : undefined,
    miss_rate: med((r) => r.cache?.missRate),
    sim_miss_rate: ok.some((x) => x.sim !== undefined) ? median(ok.flatMap((x) => (x.sim === undefined ? [] : [x.sim]))) : undefined,
    prefetch_precision: med((r) => (r.cache && !Number.isNaN(r.cache.prefetchPrecision) ? r.cache.prefetchPrecision : undefined)),
    prefetch_recall: med((r) => (r.cache && !Number.isNaN(r.cache.prefetchRecall) ? r.cache.prefetchRecall : undefined)),
    read_gb_s: med((r) => r.cache?.readGBs),
    killed: rs.length - ok.length,
    ids_agree: ok.every((x) => x.run.ids.length === reference.length && x.run.ids.every((id, i) => id === reference[i])),
  };
}

/** The weight files of a checkpoint folder or GGUF (what the page cache is dropped for). */
function modelFiles(model: string): string[] {
  if (!statSync(model).isDirectory()) return [model];
  return readdirSync(model)
    .filter((f) => f.endsWith('.safetensors'))
    .map((f) => join(model, f));
}
