import type { Command } from 'commander';
import { fail } from '../../errors.js';
import type { ModelOptions } from '../model-options.js';
import { addModelOptions, withModel } from '../model-options.js';
import { floatArg, idListArg, intArg } from '../parse.js';
import { formatExpertCacheStats } from '../../memory/expert-stats.js';

interface GenerateCliOptions extends ModelOptions {
  prompt?: string;
  ids?: number[];
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  json?: boolean;
  stats?: boolean;
  eos: boolean;
}

export function register(program: Command): void {
  addModelOptions(
    program
      .command('generate')
      .description('generate text: prefill the prompt, then decode with the KV cache (streams text unless --json)')
      .option('--prompt <text>', 'text prompt (needs tokenizer.json)')
      .option('--ids <csv>', 'prompt as token ids', idListArg('--ids'))
      .option('--max-tokens <n>', 'tokens to generate at most', intArg('--max-tokens', 0, 1_000_000), 64)
      .option('--temperature <t>', 'sampling temperature; 0 = greedy', floatArg('--temperature', 0, 100), 0)
      .option('--top-k <k>', 'sample among the k most likely tokens (0 = all)', intArg('--top-k', 0), 0)
      .option('--top-p <p>', 'nucleus sampling threshold', floatArg('--top-p', 1e-9, 1), 1)
      .option('--seed <s>', 'sampling seed', intArg('--seed', 0), 0)
      .option('--no-eos', 'do not stop at the end-of-sequence token')
      .option('--json', 'print {"ids": [...generated ids...], "text": "...", "expert_cache": {...}} instead of streaming')
      .option('--stats', 'print the expert cache figures (hits, misses, bytes read, stalls) to stderr at the end'),
  ).action(async (opts: GenerateCliOptions) => {
    if ((opts.prompt === undefined) === (opts.ids === undefined)) fail('E_BAD_OPTION', 'give exactly one of --prompt or --ids');
    await withModel(opts, async (model, observer) => {
      const ids: number[] = [];
      const stream = model.generate(opts.prompt ?? opts.ids!, {
        maxTokens: opts.maxTokens,
        temperature: opts.temperature,
        topK: opts.topK,
        topP: opts.topP,
        seed: opts.seed,
        stopAtEos: opts.eos,
        observer,
      });
      for await (const tok of stream) {
        // the prompt is echoed with the first token, so a prompt that fails (too long, no tokenizer) prints nothing
        if (!opts.json && ids.length === 0 && opts.prompt !== undefined) process.stdout.write(opts.prompt);
        ids.push(tok.id);
        if (!opts.json) process.stdout.write(tok.text);
      }
      const cache = model.expertCacheStats();
      process.stdout.write(opts.json ? `${JSON.stringify({ ids, text: model.decode(ids), ...(cache && { expert_cache: cache }) })}\n` : '\n');
      if (opts.stats) process.stderr.write(cache ? formatExpertCacheStats(cache) : 'moesaic: no expert cache (--expert-cache / --expert-cache-slots): every expert is memory-mapped\n');
      if (!opts.json && !model.tokenizer) process.stderr.write(`moesaic: ${opts.model} has no tokenizer.json, so there is no text: use --json to see the ${ids.length} generated ids\n`);
      const last = ids[ids.length - 1];
      const stoppedAtEos = last !== undefined && opts.eos && model.config.eosTokenIds.includes(last);
      if (ids.length < opts.maxTokens && !stoppedAtEos) {
        process.stderr.write(`moesaic: stopped after ${ids.length} tokens: the context of ${model.config.maxPositions} positions is full\n`);
      }
    });
  });
}
