import type { Command } from 'commander';
import { Option } from 'commander';
import { defaultThreads, runGenerateBench } from '../../bench/generate-bench.js';
import { formatGenerateTable } from '../../bench/report.js';
import { cacheDir } from '../cache-dir.js';
import { choiceArg, intArg } from '../parse.js';

interface GenerateBenchCli {
  model: string;
  promptTokens: number;
  genTokens: number;
  reps: number;
  threads?: number;
  vs?: 'llama.cpp';
  json?: boolean;
  warmup: boolean;
  seed: number;
  timeout: number;
}

/**
 * `moesaic bench generate`: prefill and decode speed, time to first token and peak memory of
 * moesaic, optionally side by side with llama.cpp (node-llama-cpp) on the same weights (issue 3).
 */
export function register(bench: Command): void {
  bench
    .command('generate')
    .description('generation speed: prefill/decode tokens/s, time to first token, peak memory, achieved GB/s; --vs llama.cpp compares on the same weights')
    .requiredOption('--model <path>', 'Hugging Face checkpoint folder or .gguf file')
    .requiredOption('--prompt-tokens <p>', 'prompt length (seeded token ids)', intArg('--prompt-tokens', 1, 1_000_000))
    .requiredOption('--gen-tokens <n>', 'tokens to generate (greedy, EOS ignored)', intArg('--gen-tokens', 2, 1_000_000))
    .option('--reps <r>', 'repetitions per engine; medians are reported', intArg('--reps', 1, 1000), 3)
    .option('--threads <t>', 'threads for every engine (default: one per core)', intArg('--threads', 1, 256))
    .addOption(new Option('--vs <engine>', 'also run a competitor on the same weights: llama.cpp').argParser(choiceArg('--vs', ['llama.cpp'] as const)))
    .option('--json', 'print {"moesaic": {...}, "llama_cpp": {...}, "ratio": {...}} instead of the table')
    .option('--no-warmup', 'time the first pass through the weights too (cold page mappings)')
    .option('--seed <s>', 'seed of the prompt ids', intArg('--seed', 0), 0)
    .option('--timeout <s>', 'seconds one measuring child may take', intArg('--timeout', 1), 1800)
    .action(async (o: GenerateBenchCli) => {
      const log = (msg: string) => process.stderr.write(`bench generate: ${msg}\n`);
      const result = await runGenerateBench(
        {
          model: o.model,
          promptTokens: o.promptTokens,
          genTokens: o.genTokens,
          reps: o.reps,
          threads: o.threads ?? defaultThreads(),
          vs: o.vs,
          warmup: o.warmup,
          seed: o.seed,
          cacheRoot: cacheDir(),
          childTimeoutMs: o.timeout * 1000,
        },
        log,
      );
      process.stdout.write(o.json ? `${JSON.stringify(result, null, 2)}\n` : formatGenerateTable(result));
    });
}
