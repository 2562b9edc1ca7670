import type { Command } from 'commander';
import { ARCHS, MAX_EXPERTS, MAX_LAYERS, SIZES } from '../../gen/configs.js';
import type { Arch, Size } from '../../gen/configs.js';
import { DEFAULT_SHARD_MB, generateModel } from '../../gen/gen-model.js';
import { choiceArg, floatArg, intArg, outputPathArg } from '../parse.js';

/** `moesaic gen-model`: write a seeded synthetic checkpoint in the Hugging Face layout (docs/gen-model.md). */
export function register(program: Command): void {
  program
    .command('gen-model')
    .description('write a seeded synthetic MoE checkpoint in the Hugging Face layout')
    .requiredOption('--arch <arch>', `architecture: ${ARCHS.join('|')}`, choiceArg('--arch', ARCHS))
    .requiredOption('--size <size>', `model size: ${SIZES.join('|')}`, choiceArg('--size', SIZES))
    .requiredOption('--out <dir>', 'output directory (absent, empty, or an earlier gen-model output)', outputPathArg('--out', 'dir'))
    .option('--seed <n>', 'random seed', intArg('--seed', 0), 0)
    .option('--dtype <dtype>', 'weight dtype: f32|bf16', choiceArg('--dtype', ['f32', 'bf16'] as const), 'f32')
    .option('--skew <x>', 'routing skew >= 0 (0 = roughly uniform expert popularity)', floatArg('--skew', 0, 100), 0)
    .option('--shard-mb <n>', 'largest weight file in MB before sharding', floatArg('--shard-mb', 1e-6), DEFAULT_SHARD_MB)
    .option('--experts <n>', `routed experts per MoE layer instead of the size's (2..${MAX_EXPERTS})`, intArg('--experts', 2, MAX_EXPERTS))
    .option('--layers <n>', `decoder layers instead of the size's (1..${MAX_LAYERS})`, intArg('--layers', 1, MAX_LAYERS))
    .action(async (o: { arch: Arch; size: Size; out: string; seed: number; dtype: 'f32' | 'bf16'; skew: number; shardMb: number; experts?: number; layers?: number }) => {
      const started = Date.now();
      await generateModel({
        ...o,
        onProgress: o.size === 'bench' ? (msg) => process.stderr.write(`gen-model: ${msg}\n`) : undefined,
      });
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      process.stdout.write(`wrote ${o.arch} ${o.size} model (${o.dtype}, seed ${o.seed}, skew ${o.skew}) to ${o.out} in ${secs} s\n`);
    });
}
