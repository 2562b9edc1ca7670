import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fail } from '../errors.js';
import { loadModel, type Model } from '../model/model.js';
import { checkDevices, fitEnd, PLACEMENT_POLICIES, type PlacementPolicy } from '../parallel/placement.js';
import { buildExpertMap, type ExpertMap } from '../parallel/expert-map.js';
import { mpirunPlan } from '../parallel/launch.js';
import { readActivity, type TraceActivity } from '../trace/activity.js';
import { TraceRecorder } from '../trace/recorder.js';
import type { EpBenchConfig, EpBenchJob, EpRunFigures } from './ep-protocol.js';
import { promptIds, specialTokenIds } from './prompt.js';
import { median } from './stats.js';

/**
 * `moesaic bench ep`: the expert-parallel engine under every placement and mode, side by side in one
 * mpirun, on the same prompts (docs/parallel.md). The single-process engine first runs the workload
 * once to record its routing trace (the fitted placements learn from its first half, and the
 * simulator predicts each placement's Max Load on its second half) and to time the 1-process baseline.
 */
export interface EpBenchOptions {
  readonly model: string;
  readonly ranks: number;
  readonly prompts: number;
  readonly promptTokens: number;
  readonly genTokens: number;
  readonly reps: number;
  readonly threads: number;
  readonly replicas?: number;
  readonly chunks: number;
  readonly hostfile?: string;
  readonly seed: number;
}

/** `simulate placement`'s Max Load of a policy on a trace (the off-line simulator, passed in by the CLI). */
export type SimulateMaxLoad = (activity: TraceActivity, devices: number, policy: PlacementPolicy) => number;

export interface EpConfigReport {
  readonly name: string;
  readonly tok_s: number;
  /** tokens/s over the single-process engine's */
  readonly speedup: number;
  /** per-rank expert rows over the second half of the steps: max / mean */
  readonly rows_max_mean: number;
  /** Max Load on the trace's second half: measured (rows each rank ran) and predicted */
  readonly max_load: number;
  readonly predicted_max_load: number | null;
  readonly mb_exchanged: number;
  /** mean over ranks, ms per run */
  readonly exchange_ms: number;
  readonly expert_ms: number;
  /** largest rank's expert weights, MB */
  readonly expert_mb_per_rank: number;
  readonly rss_mb_per_rank: number;
  readonly runs: readonly EpRunFigures[];
}

export interface EpBenchResult {
  readonly model: string;
  readonly ranks: number;
  readonly prompts: number;
  readonly prompt_tokens: number;
  readonly gen_tokens: number;
  readonly reps: number;
  readonly threads_per_rank: number;
  readonly single_process_tok_s: number;
  readonly load_avg: readonly [number, number];
  readonly configs: readonly EpConfigReport[];
}

const RANK_SCRIPT = fileURLToPath(new URL('./ep-rank.js', import.meta.url));

export async function runEpBench(o: EpBenchOptions, simulate: SimulateMaxLoad, log: (msg: string) => void): Promise<EpBenchResult> {
  const loadBefore = loadavg()[0]!;
  const dir = mkdtempSync(join(tmpdir(), 'moesaic-bench-ep-'));
  try {
    const model = await loadModel(o.model, { threads: o.threads });
    checkDevices(model.config.numExperts, o.ranks, '--ranks');
    const prompts = benchPrompts(model, o);
    const trace = join(dir, 'routing.jsonl');
    log(`single process: recording the routing trace and timing ${o.reps} run(s)`);
    const single = await singleProcess(model, prompts, o, trace);
    const configs = epConfigs(model.config.numExperts, o);
    const job: EpBenchJob = { model: o.model, threads: o.threads, prompts, genTokens: o.genTokens, reps: o.reps, trace, configs };
    const jobFile = join(dir, 'job.json');
    const outFile = join(dir, 'result.json');
    writeFileSync(jobFile, JSON.stringify(job));
    log(`${o.ranks} ranks: ${configs.length} configurations x ${o.reps + 1} runs (the first warms up)`);
    const plan = mpirunPlan(o.ranks, [process.execPath, RANK_SCRIPT], [jobFile, outFile], { hostfile: o.hostfile, root: process.getuid?.() === 0, env: process.env });
    const r = spawnSync(plan.command, plan.args, { env: plan.env, stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.error || r.status !== 0 || !existsSync(outFile)) fail('E_NATIVE', `bench ep: mpirun ${r.error ? `failed: ${r.error.message}` : `exited with ${r.status}`}`);
    const { runs } = JSON.parse(readFileSync(outFile, 'utf8')) as { runs: EpRunFigures[][] };
    const activity = await readActivity(trace);
    const tokens = prompts.length * o.genTokens;
    return {
      model: o.model,
      ranks: o.ranks,
      prompts: prompts.length,
      prompt_tokens: o.promptTokens,
      gen_tokens: o.genTokens,
      reps: o.reps,
      threads_per_rank: o.threads,
      single_process_tok_s: single,
      load_avg: [loadBefore, loadavg()[0]!],
      configs: configs.map((c, i) => report(c, runs[i]!, tokens, single, activity, model, o, simulate)),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Equal-length prompts: windows of the model's held-out text when it ships one, else seeded ids. */
function benchPrompts(model: Model, o: EpBenchOptions): number[][] {
  const heldout = join(o.model, 'heldout.txt');
  if (model.tokenizer && existsSync(heldout)) {
    const ids = model.encode(readFileSync(heldout, 'utf8').slice(0, 200_000));
    if (ids.length >= o.prompts * o.promptTokens) {
      return Array.from({ length: o.prompts }, (_, i) => ids.slice(i * o.promptTokens, (i + 1) * o.promptTokens));
    }
  }
  const special = specialTokenIds(o.model, model.config, (p) => new Uint8Array(readFileSync(p)).buffer);
  return Array.from({ length: o.prompts }, (_, i) => promptIds(model.config.vocabSize, special, o.promptTokens, o.seed + i));
}

/** The single-process engine on the same prompts: records the trace on its first run, returns median tokens/s. */
async function singleProcess(model: Model, prompts: number[][], o: EpBenchOptions, trace: string): Promise<number> {
  const recorder = new TraceRecorder(trace, o.model, model.config);
  await model.generateBatch(prompts, { maxTokens: o.genTokens, temperature: 0, stopAtEos: false, observer: recorder.observer });
  await recorder.close();
  const rates: number[] = [];
  for (let rep = 0; rep < o.reps; rep++) {
    const t0 = performance.now();
    await model.generateBatch(prompts, { maxTokens: o.genTokens, temperature: 0, stopAtEos: false });
    rates.push((prompts.length * o.genTokens) / ((performance.now() - t0) / 1000));
  }
  return median(rates);
}

/** Every placement, EPLB without and with replicas, static gating's padded exchange, chunking, MoEShard. */
function epConfigs(E: number, o: EpBenchOptions): EpBenchConfig[] {
  const replicas = o.replicas ?? E + o.ranks;
  return [
    ...PLACEMENT_POLICIES.map((p) => ({ name: p, placement: p, fitted: p === 'greedy' || p === 'anticorr' })),
    { name: 'eplb', placement: 'eplb', fitted: true },
    { name: `eplb r=${replicas}`, placement: 'eplb', replicas, fitted: true },
    { name: 'static (contiguous)', gating: 'static' },
    { name: `chunks=${o.chunks} (contiguous)`, epChunks: o.chunks },
    { name: 'shard', epMode: 'shard' },
  ];
}

function report(c: EpBenchConfig, runs: readonly EpRunFigures[], tokens: number, single: number, activity: TraceActivity, model: Model, o: EpBenchOptions, simulate: SimulateMaxLoad): EpConfigReport {
  const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const tokS = median(runs.map((r) => tokens / (r.wall_ms / 1000)));
  const moeLayers = activity.layers.length;
  const log = runs[0]!.row_log;
  const steps = log.length / moeLayers;
  // per-rank rows over the second half of the steps (the ones no placement was fitted on)
  const rows = new Array<number>(o.ranks).fill(0);
  for (let i = fitEnd(steps) * moeLayers; i < log.length; i++) log[i]!.forEach((n, r) => (rows[r]! += n));
  return {
    name: c.name,
    tok_s: tokS,
    speedup: tokS / single,
    rows_max_mean: Math.max(...rows) / mean(rows),
    max_load: measuredMaxLoad(log, moeLayers),
    predicted_max_load: predictedMaxLoad(c, activity, model, o, simulate),
    mb_exchanged: median(runs.map((r) => r.bytes_sent)) / 1e6,
    exchange_ms: median(runs.map((r) => mean(r.exchange_ms))),
    expert_ms: median(runs.map((r) => mean(r.expert_ms))),
    expert_mb_per_rank: Math.max(...runs[0]!.expert_bytes) / 1e6,
    rss_mb_per_rank: Math.max(...runs[0]!.rss) / 1e6,
    runs,
  };
}

/**
 * Max Load as `simulate placement` defines it, from the rows each rank really ran: per MoE layer, the
 * largest share of a step's rows on one rank over the second half of the steps; the mean over layers.
 */
export function measuredMaxLoad(rowLog: readonly (readonly number[])[], moeLayers: number): number {
  const steps = rowLog.length / moeLayers;
  let sum = 0;
  for (let l = 0; l < moeLayers; l++) {
    let top = 0;
    for (let s = fitEnd(steps); s < steps; s++) {
      const r = rowLog[s * moeLayers + l]!;
      const all = r.reduce((a, b) => a + b, 0);
      if (all > 0) top = Math.max(top, Math.max(...r) / all);
    }
    sum += top;
  }
  return sum / moeLayers;
}

/**
 * The prediction beside each measurement: `simulate placement`'s Max Load for its four policies;
 * for EPLB, the same evaluation with each expert's count split evenly over its copies (EPLB's own
 * model; the engine deals whole rows, so it can only be as even as the integers allow); MoEShard gives every rank every row (of its slice), 1/N of the work. Static gating's padded
 * rows are not in a routing trace: no prediction.
 */
function predictedMaxLoad(c: EpBenchConfig, activity: TraceActivity, model: Model, o: EpBenchOptions, simulate: SimulateMaxLoad): number | null {
  if (c.epMode === 'shard') return 1 / o.ranks;
  if (c.gating === 'static') return null;
  const p = c.placement ?? 'contiguous';
  if ((PLACEMENT_POLICIES as readonly string[]).includes(p)) return simulate(activity, o.ranks, p as PlacementPolicy);
  const moeLayers = model.config.sparse;
  const map = buildExpertMap(moeLayers, model.config.numExperts, o.ranks, { placement: 'eplb', trace: activity, replicas: c.replicas });
  return splitMaxLoad(activity, map);
}

/** Max Load on the second half of a trace when each expert's count is split evenly over its copies. */
function splitMaxLoad(activity: TraceActivity, map: ExpertMap): number {
  const k = activity.header.top_k;
  let sum = 0;
  for (const act of activity.layers) {
    const layer = map.layers[act.layer]!;
    const S = act.steps.length;
    const load = new Float64Array(map.ranks);
    let top = 0;
    for (let i = fitEnd(S); i < S; i++) {
      load.fill(0);
      for (let p = act.offsets[i]!; p < act.offsets[i + 1]!; p++) {
        const copies = layer.holders[act.experts[p]!]!;
        for (const r of copies) load[r]! += act.counts[p]! / copies.length;
      }
      top = Math.max(top, Math.max(...load) / (act.tokens[i]! * k));
    }
    sum += top;
  }
  return sum / activity.layers.length;
}
