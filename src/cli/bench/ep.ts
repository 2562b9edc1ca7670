import type { Command } from 'commander';
import { simulatePlacement } from '../../analysis/placement-sim.js';
import { runEpBench } from '../../bench/ep-bench.js';
import { formatEpTable } from '../../bench/ep-report.js';
import { inputFileArg, intArg } from '../parse.js';

interface EpBenchCli {
  model: string;
  ranks: number;
  prompts: number;
  promptTokens: number;
  genTokens: number;
  reps: number;
  threads: number;
  replicas?: number;
  chunks: number;
  hostfile?: string;
  seed: number;
  json?: boolean;
}

/**
 * `moesaic bench ep`: expert parallelism on MPI under every placement and mode side by side
 * (docs/parallel.md): tokens/s, per-rank expert rows, measured and predicted Max Load, bytes and time
 * in the exchange against the experts.
 */
export function register(bench: Command): void {
  bench
    .command('ep')
    .description('expert parallelism over MPI ranks: every placement, EPLB replicas, static vs dynamic exchange, chunking and MoEShard side by side')
    .requiredOption('--model <dir>', 'Hugging Face checkpoint folder')
    .requiredOption('--ranks <n>', 'MPI ranks (must divide the number of experts)', intArg('--ranks', 1, 4096))
    .option('--prompts <n>', 'prompts, dealt to the ranks in turn', intArg('--prompts', 1, 4096), 8)
    .option('--prompt-tokens <p>', "tokens per prompt (the model's heldout.txt when it has one, else seeded ids)", intArg('--prompt-tokens', 1, 100_000), 32)
    .option('--gen-tokens <g>', 'greedy tokens per prompt (EOS ignored)', intArg('--gen-tokens', 2, 100_000), 16)
    .option('--reps <r>', 'measured runs per configuration (after one warm-up); medians are reported', intArg('--reps', 1, 100), 3)
    .option('--threads <t>', 'kernel threads per rank', intArg('--threads', 1, 256), 1)
    .option('--replicas <r>', 'physical expert slots of the EPLB-with-replicas row (default experts + ranks)', intArg('--replicas', 1, 1 << 20))
    .option('--chunks <c>', 'pieces of the chunked (FSMoE) row', intArg('--chunks', 2, 64), 4)
    .option('--hostfile <file>', "mpirun's hostfile: ranks on several hosts", inputFileArg('--hostfile'))
    .option('--seed <s>', 'seed of the prompt ids when the model has no held-out text', intArg('--seed', 0), 0)
    .option('--json', 'print the JSON result instead of the table')
    .action(async (o: EpBenchCli) => {
      const result = await runEpBench(o, (a, n, p) => simulatePlacement(a, n, p).max_load, (msg) => process.stderr.write(`bench ep: ${msg}\n`));
      process.stdout.write(o.json ? `${JSON.stringify(result, (k, v) => (k === 'runs' || k === 'row_log' ? undefined : v), 2)}\n` : formatEpTable(result));
    });
}
