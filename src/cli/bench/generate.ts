import type { Command } from 'commander';
import { Option } from 'commander';
import type { Competitor } from '../../bench/generate-bench.js';
import { BENCH_RUN_OPTION_KEYS, COMPETITORS, defaultThreads, runGenerateBench } from '../../bench/generate-bench.js';
import { formatProfile, runProfile } from '../../bench/profile-run.js';
import { formatGenerateTable } from '../../bench/report.js';
import { cacheDir } from '../cache-dir.js';
import { fail } from '../../errors.js';
import { addRunOptions, pickRunOptions } from '../../options/run-options.js';
import { choiceArg, idListArg, intArg } from '../parse.js';

interface GenerateBenchCli {
  model: string;
  promptTokens: number;
  genTokens: number;
  reps: number;
  threads?: number[];
  vs?: Competitor;
  json?: boolean;
  warmup: boolean;
  seed: number;
  timeout: number;
  profile?: boolean;
}

/**
 * `moesaic bench generate`: prefill and decode speed, time to first token and peak memory of
 * moesaic over a sweep of thread counts, optionally side by side with llama.cpp's own llama-bench (or
 * llama.cpp through node-llama-cpp) on the same weights, best thread count against best.
 */
export function register(bench: Command): void {
  addRunOptions(bench.command('generate'), { keys: BENCH_RUN_OPTION_KEYS })
    .description('generation speed over a thread sweep: prefill/decode tokens/s, time to first token, peak memory, achieved GB/s; --vs llama.cpp compares with llama-bench on the same weights, best against best')
    .requiredOption('--model <path>', 'Hugging Face checkpoint folder or .gguf file')
    .requiredOption('--prompt-tokens <p>', 'prompt length (seeded token ids)', intArg('--prompt-tokens', 1, 1_000_000))
    .requiredOption('--gen-tokens <n>', 'tokens to generate (greedy, EOS ignored)', intArg('--gen-tokens', 2, 1_000_000))
    .option('--reps <r>', 'repetitions per engine and thread count; medians are reported', intArg('--reps', 1, 1000), 3)
    .option('--threads <csv>', 'thread counts to sweep, e.g. 1,2 (default: 1 .. the cores)', idListArg('--threads'))
    .addOption(new Option('--vs <engine>', "also run a competitor on the same weights: llama.cpp (its own llama-bench, built once from node-llama-cpp's source bundle) | node-llama-cpp").argParser(choiceArg('--vs', COMPETITORS)))
    .option('--json', 'print the whole result as JSON (per engine: by_threads, best_decode, best_prefill; best_vs_best) instead of the table')
    .option('--no-warmup', 'time the first pass through the weights too (cold page mappings)')
    .option('--seed <s>', 'seed of the prompt ids', intArg('--seed', 0), 0)
    .option('--profile', 'instead of the comparison: where one decode token\'s time goes (each GEMV and its GB/s, attention, norms, MoE stages in TypeScript, sampling, detokenizing, pool wake/sync, call overhead)')
    .option('--timeout <s>', 'seconds one measuring child may take', intArg('--timeout', 1), 1800)
    .action(async (o: GenerateBenchCli) => {
      const log = (msg: string) => process.stderr.write(`bench generate: ${msg}\n`);
      if (o.threads?.some((t) => t < 1 || t > 256)) fail('E_BAD_OPTION', `--threads: each thread count must be in 1..256, got ${o.threads.join(',')}`);
      const threads = o.threads ? [...new Set(o.threads)] : defaultThreads();
      if (o.profile) {
        if (o.vs) fail('E_BAD_OPTION', '--profile profiles moesaic alone: drop --vs');
        const p = await runProfile({ model: o.model, promptTokens: o.promptTokens, genTokens: o.genTokens, reps: o.reps, threads, seed: o.seed, childTimeoutMs: o.timeout * 1000, runOptions: pickRunOptions(o as unknown as Record<string, unknown>) }, log);
        process.stdout.write(o.json ? `${JSON.stringify(p, null, 2)}\n` : formatProfile(p, o.model));
        return;
      }
      const result = await runGenerateBench(
        {
          model: o.model,
          promptTokens: o.promptTokens,
          genTokens: o.genTokens,
          reps: o.reps,
          threads,
          vs: o.vs,
          warmup: o.warmup,
          seed: o.seed,
          cacheRoot: cacheDir(),
          childTimeoutMs: o.timeout * 1000,
          runOptions: pickRunOptions(o as unknown as Record<string, unknown>),
        },
        log,
      );
      process.stdout.write(o.json ? `${JSON.stringify(result, null, 2)}\n` : formatGenerateTable(result));
    });
}
