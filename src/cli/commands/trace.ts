import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { fail } from '../../errors.js';
import type { ModelOptions } from '../model-options.js';
import { addModelOptions, withModel } from '../model-options.js';
import { floatArg, idListArg, inputFileArg, intArg, outputPathArg } from '../parse.js';

interface TraceCliOptions extends ModelOptions {
  prompt?: string;
  ids?: number[];
  promptsFile?: string;
  maxTokens: number;
  batch: number;
  temperature: number;
  seed: number;
  out: string;
}

/**
 * `moesaic trace`: run prompts through a model and record every routing decision (prefill and
 * decode steps) as a routing trace — the history that expert buffering and placement are fitted on
 * (techniques.md §2-3). Prompts run in batches of --batch sequences, so a decode step routes one
 * token of each sequence in the batch.
 */
export function register(program: Command): void {
  addModelOptions(
    program
      .command('trace')
      .description('record a routing trace (JSON Lines, .gz for gzip) from prefill and decode steps')
      .option('--prompt <text>', 'one text prompt')
      .option('--ids <csv>', 'one prompt as token ids', idListArg('--ids'))
      .option('--prompts-file <file>', 'text prompts, one per line', inputFileArg('--prompts-file'))
      .option('--max-tokens <n>', 'tokens to generate per prompt', intArg('--max-tokens', 0, 1_000_000), 32)
      .option('--batch <b>', 'sequences decoded together per step', intArg('--batch', 1, 4096), 1)
      .option('--temperature <t>', 'sampling temperature; 0 = greedy', floatArg('--temperature', 0, 100), 0)
      .option('--seed <s>', 'sampling seed (sequence i uses seed + i)', intArg('--seed', 0), 0)
      .requiredOption('--out <file>', 'trace file to write (.jsonl or .jsonl.gz)', outputPathArg('--out')),
    { trace: false },
  ).action(async (opts: TraceCliOptions) => {
    const given = [opts.prompt, opts.ids, opts.promptsFile].filter((v) => v !== undefined).length;
    if (given !== 1) fail('E_BAD_OPTION', 'give exactly one of --prompt, --ids or --prompts-file');
    const start = performance.now();
    const { prompts, generated } = await withModel({ ...opts, trace: opts.out }, async (model, observer) => {
      const prompts = loadPrompts(opts, (t) => model.encode(t), model.config.maxPositions);
      let generated = 0;
      for (let i = 0; i < prompts.length; i += opts.batch) {
        const batch = prompts.slice(i, i + opts.batch);
        const outs = await model.generateBatch(batch, { maxTokens: opts.maxTokens, temperature: opts.temperature, seed: opts.seed + i, observer });
        generated += outs.reduce((n, o) => n + o.length, 0);
        process.stderr.write(`trace: ${Math.min(i + opts.batch, prompts.length)}/${prompts.length} prompts\n`);
      }
      return { prompts: prompts.length, generated };
    });
    process.stderr.write(`trace: ${prompts} prompts, ${generated} generated tokens in ${((performance.now() - start) / 1000).toFixed(1)} s -> ${opts.out}\n`);
  });
}

function loadPrompts(opts: TraceCliOptions, encode: (text: string) => number[], maxPositions: number): number[][] {
  if (opts.ids) return [opts.ids];
  if (opts.prompt !== undefined) return [encode(opts.prompt)];
  let text: string;
  try {
    text = readFileSync(opts.promptsFile!, 'utf8');
  } catch (e) {
    fail('E_IO', `cannot read --prompts-file ${opts.promptsFile}: ${(e as Error).message}`);
  }
  const prompts: number[][] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim().length === 0) return;
    const ids = encode(line.trim());
    if (ids.length > maxPositions) {
      fail('E_BAD_INPUT', `${opts.promptsFile} line ${i + 1}: prompt of ${ids.length} tokens exceeds the context of ${maxPositions} positions`);
    }
    prompts.push(ids);
  });
  if (prompts.length === 0) fail('E_BAD_INPUT', `${opts.promptsFile} has no prompts`);
  return prompts;
}
