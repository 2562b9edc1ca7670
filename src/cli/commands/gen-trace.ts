import type { Command } from 'commander';
import { writeGenTrace, type GenTraceOptions } from '../../analysis/gen-trace.js';
import { floatArg, intArg, outputPathArg } from '../parse.js';

const MODEL_HELP = `
Generative model (docs/analysis.md), per MoE layer, all layers MoE:
  popularity   experts ranked by a seeded random permutation; rank r (0-based) has weight
               1/(r+1)^skew (Zipf-like; --skew 0 = uniform routing)
  correlation  experts split into random pairs; after a token picks an expert, its next pick is,
               with probability R, that expert's partner (if free), else a fresh popularity draw
  locality     from step 1 on, each token with probability P repeats the expert set of a random
               token of the previous step in the same layer (P = 1 keeps the previous step's
               active experts), else draws a fresh set
The trace is a pure function of the options and --seed.

Example:
  moesaic gen-trace --experts 64 --top-k 2 --layers 32 --steps 1000 --tokens 500 \\
    --skew 1 --locality 0.5 --correlation 0.3 --seed 1 --out big.jsonl.gz
`;

/** `moesaic gen-trace`: synthetic routing traces, for experiments without a model. */
export function register(program: Command): void {
  program
    .command('gen-trace')
    .description('write a synthetic routing trace: skewed popularity, temporal locality, co-activated expert pairs')
    .requiredOption('--out <file>', 'trace to write (.jsonl, or .jsonl.gz for gzip)', outputPathArg('--out'))
    .option('--experts <E>', 'experts per MoE layer', intArg('--experts', 1, 1 << 20), 16)
    .option('--top-k <k>', 'experts per token', intArg('--top-k', 1, 1 << 20), 2)
    .option('--layers <L>', 'MoE layers', intArg('--layers', 1, 1 << 16), 4)
    .option('--steps <S>', 'forward steps', intArg('--steps', 1, 100_000_000), 100)
    .option('--tokens <T>', 'tokens per step', intArg('--tokens', 1, 1_000_000), 32)
    .option('--skew <X>', 'popularity exponent: rank r has weight 1/(r+1)^X', floatArg('--skew', 0, 100), 1)
    .option('--locality <P>', 'probability a token repeats a previous-step token\'s expert set', floatArg('--locality', 0, 1), 0.5)
    .option('--correlation <R>', 'probability a token\'s next expert is the partner of its previous one', floatArg('--correlation', 0, 1), 0)
    .option('--seed <n>', 'random seed', intArg('--seed', 0, 0xffffffff), 0)
    .addHelpText('after', MODEL_HELP)
    .action(async (o: { out: string; experts: number; topK: number; layers: number; steps: number; tokens: number; skew: number; locality: number; correlation: number; seed: number }) => {
      const opts: GenTraceOptions = {
        experts: o.experts,
        topK: o.topK,
        layers: o.layers,
        steps: o.steps,
        tokens: o.tokens,
        skew: o.skew,
        locality: o.locality,
        correlation: o.correlation,
        seed: o.seed,
      };
      const t0 = performance.now();
      await writeGenTrace(opts, o.out);
      const secs = (performance.now() - t0) / 1000;
      const perLayer = o.steps * o.tokens * o.topK;
      process.stdout.write(
        `wrote ${o.out}: ${o.layers} layers x ${o.steps} steps x ${o.tokens} tokens x top-${o.topK} ` +
          `(${perLayer} assignments per layer) in ${secs.toFixed(2)} s\n`,
      );
    });
}
