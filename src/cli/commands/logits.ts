import type { Command } from 'commander';
import type { ModelOptions } from '../model-options.js';
import { addModelOptions, withModel } from '../model-options.js';
import { idListArg } from '../parse.js';

/** `moesaic logits`: the stable contract tests and external checks compare against. */
export function register(program: Command): void {
  addModelOptions(
    program
      .command('logits')
      .description('print JSON {"logits": [[...], ...]} with one row of vocab_size floats per input position')
      .requiredOption('--ids <csv>', 'input token ids, e.g. 1,2,3', idListArg('--ids')),
  ).action(async (opts: ModelOptions & { ids: number[] }) => {
    const rows = await withModel(opts, (model, observer) => model.logits(opts.ids, observer));
    // rows are finite: Model.logits refuses NaN/Inf (which JSON cannot hold either)
    const body = rows.map((r) => `[${Array.from(r).join(',')}]`).join(',');
    process.stdout.write(`{"logits":[${body}]}\n`);
  });
}
