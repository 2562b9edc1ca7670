import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { fail } from '../../errors.js';
import { cpus } from 'node:os';
import { runMemoryBench } from '../../bench/memory-bench.js';
import type { MemoryBenchResult, SettingReport } from '../../bench/memory-bench.js';
import { formatMemoryTable } from '../../bench/memory-report.js';
import { simulateCache } from '../../analysis/cache-sim.js';
import { lineChartSvg } from '../../analysis/svg-chart.js';
import { readActivity } from '../../trace/activity.js';
import type { CachePolicyName } from '../../memory/cache-policies.js';
import { ONLINE_CACHE_POLICIES } from '../../memory/cache-policies.js';
import { PREFETCH_NAMES } from '../../memory/prefetchers.js';
import { intArg, outputPathArg } from '../parse.js';

interface MemoryBenchCli {
  model: string;
  budgets: number[];
  policies: string[];
  prefetch: string[];
  promptTokens: number;
  genTokens: number;
  reps: number;
  threads?: number;
  headroomMb: number;
  seed: number;
  timeout: number;
  json?: boolean;
  chart?: string;
}

function listArg<T>(name: string, parse: (s: string) => T) {
  return (value: string): T[] => {
    const parts = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    if (parts.length === 0) fail('E_BAD_OPTION', `${name} must be a comma-separated list, got '${value}'`);
    return parts.map(parse);
  };
}

const share = (s: string): number => {
  const m = /^(\d+(?:\.\d+)?)%$/.exec(s);
  const v = m ? Number(m[1]) / 100 : NaN;
  if (!(v > 0 && v <= 1)) fail('E_BAD_OPTION', `--budgets takes shares such as 10%,25%,50%,100%, got '${s}'`);
  return v;
};

const oneOf = (name: string, choices: readonly string[]) => (s: string): string => {
  if (!choices.includes(s)) fail('E_BAD_OPTION', `${name} must list values among ${choices.join('|')}, got '${s}'`);
  return s;
};

/**
 * `moesaic bench memory`: expert buffering (policies x prefetch modes) against the same model fully
 * memory-mapped in a memory cgroup of the same size, per budget, side by side (docs/memory.md).
 */
export function register(bench: Command): void {
  bench
    .command('memory')
    .description('expert buffering vs memory-mapped paging at the same memory: tokens/s, TTFT, stall share, peak RSS, miss rate (measured and simulated), per budget')
    .requiredOption('--model <path>', 'Hugging Face checkpoint folder')
    .option('--budgets <list>', 'expert cache budgets as shares of the expert bytes', listArg('--budgets', share), [0.1, 0.25, 0.5, 1])
    .option('--policies <list>', `eviction rules: ${ONLINE_CACHE_POLICIES.join(',')}`, listArg('--policies', oneOf('--policies', ONLINE_CACHE_POLICIES)), ['lifo', 'lfu'])
    .option('--prefetch <list>', `prefetch modes: ${PREFETCH_NAMES.join(',')}`, listArg('--prefetch', oneOf('--prefetch', PREFETCH_NAMES)), [...PREFETCH_NAMES])
    .option('--prompt-tokens <p>', 'prompt length (seeded token ids)', intArg('--prompt-tokens', 1, 100_000), 16)
    .option('--gen-tokens <n>', 'tokens to generate (greedy, EOS ignored)', intArg('--gen-tokens', 2, 100_000), 32)
    .option('--reps <r>', 'runs per setting; medians are reported', intArg('--reps', 1, 100), 3)
    .option('--threads <t>', 'kernel threads (default: one per core)', intArg('--threads', 1, 256))
    .option('--headroom-mb <m>', 'memory limit = other weights + cache + this many MiB (process heap, buffers)', intArg('--headroom-mb', 0, 1_000_000), 200)
    .option('--seed <s>', 'seed of the prompt ids', intArg('--seed', 0), 0)
    .option('--timeout <s>', 'seconds one measuring child may take', intArg('--timeout', 1), 1800)
    .option('--json', 'print the result as JSON instead of the table')
    .option('--chart <file.svg>', 'write decode tokens/s vs budget here, and the miss rates beside it (-misses.svg)', outputPathArg('--chart'))
    .action(async (o: MemoryBenchCli) => {
      const log = (msg: string) => process.stderr.write(`bench memory: ${msg}\n`);
      const result = await runMemoryBench(
        {
          model: o.model,
          budgets: o.budgets,
          policies: o.policies,
          prefetch: o.prefetch,
          promptTokens: o.promptTokens,
          genTokens: o.genTokens,
          reps: o.reps,
          threads: o.threads ?? cpus().length,
          headroomBytes: o.headroomMb * 2 ** 20,
          seed: o.seed,
          childTimeoutMs: o.timeout * 1000,
          simulate: async (trace, policy, slots) => simulateCache(await readActivity(trace), { policy: policy as CachePolicyName, slots }).miss_rate,
        },
        log,
      );
      if (o.chart) {
        const { speed, misses } = memoryChartSvg(result);
        try {
          writeFileSync(o.chart, speed);
          writeFileSync(o.chart.replace(/(\.svg)?$/, '-misses.svg'), misses);
        } catch (e) {
          fail('E_IO', `cannot write chart ${o.chart}: ${(e as Error).message}`);
        }
      }
      process.stdout.write(o.json ? `${JSON.stringify(result, null, 2)}\n` : formatMemoryTable(result));
    });
}

/** Decode tokens/s and miss rate against the budget, one line per setting (the paper's latency/memory trade-off). */
export function memoryChartSvg(r: MemoryBenchResult): { speed: string; misses: string } {
  const key = (s: SettingReport) => (s.mode === 'mmap' ? 'mmap in cgroup' : `${s.policy} + ${s.prefetch}`);
  const names = [...new Set(r.settings.map(key))];
  const series = (f: (s: SettingReport) => number | undefined) =>
    names.map((name) => ({
      name,
      points: r.settings.filter((s) => key(s) === name && f(s) !== undefined).map((s): [number, number] => [100 * s.budget, f(s)!]),
    })).filter((s) => s.points.length > 0);
  return {
    speed: lineChartSvg({ title: `decode tokens/s vs expert cache budget (${r.model})`, xLabel: 'budget, % of expert bytes', yLabel: 'decode tokens/s', series: series((s) => s.decode_tok_s) }),
    misses: lineChartSvg({ title: 'expert miss rate vs budget', xLabel: 'budget, % of expert bytes', yLabel: 'miss rate', series: series((s) => s.miss_rate) }),
  };
}
