import { fail } from '../errors.js';
import type { Command } from 'commander';
import type { Model } from '../model/model.js';
import { loadModel } from '../model/model.js';
import type { RoutingObserver } from '../moe/moe-layer.js';
import type { RunOptions } from '../options/run-options.js';
import { addRunOptions, pickRunOptions } from '../options/run-options.js';
import { TraceRecorder } from '../trace/recorder.js';
import { outputPathArg } from './parse.js';
import { launchHook } from './parallel-options.js';

/** Options shared by every command that runs a model: the model, the run-time options, a trace. */
export interface ModelOptions extends RunOptions {
  model: string;
  trace?: string;
}

/** `trace: false` for commands whose main output is a trace already (`moesaic trace --out`). */
export function addModelOptions(cmd: Command, { trace = true } = {}): Command {
  cmd = cmd.requiredOption('--model <dir>', 'Hugging Face checkpoint folder (config.json, *.safetensors, tokenizer.json) or a .gguf file');
  addRunOptions(cmd);
  cmd.hook('preAction', launchHook); // --ranks N: restart this command under mpirun
  if (trace) cmd.option('--trace <file>', 'record routing decisions to a trace (.jsonl or .jsonl.gz)', outputPathArg('--trace'));
  return cmd;
}

/**
 * Load the model, run `fn`, then finish the routing trace if one is recorded; on failure the partial
 * trace is removed, so nothing is left half-written.
 */
export async function withModel<T>(opts: ModelOptions, fn: (model: Model, observer?: RoutingObserver) => Promise<T> | T): Promise<T> {
  if (opts.capacityFactor !== undefined && opts.gating !== 'static') {
    fail('E_BAD_OPTION', `--capacity-factor sets static gating's capacity: it needs --gating static (got --gating ${opts.gating})`);
  }
  if (opts.blockSize !== undefined && opts.gating !== 'megablocks') {
    fail('E_BAD_OPTION', `--block-size sets megablocks' block: it needs --gating megablocks (got --gating ${opts.gating})`);
  }
  if (opts.lynxThreshold !== undefined && opts.lynx !== 'on') fail('E_BAD_OPTION', '--lynx-threshold sets Lynx\'s selection: it needs --lynx on');
  const model = await loadModel(opts.model, pickRunOptions(opts as unknown as Record<string, unknown>));
  // expert parallelism: rank 0 owns the command's output; the other ranks serve the exchanges
  if (model.ep && model.ep.comm.rank !== 0) {
    model.ep.finish();
    process.exit(0);
  }
  if (model.expertCache) process.stderr.write(`moesaic: ${model.expertCache.summary}\n`);
  const recorder = opts.trace ? new TraceRecorder(opts.trace, opts.model, model.config) : undefined;
  try {
    const result = await fn(model, recorder?.observer);
    model.ep?.finish();
    await recorder?.close();
    return result;
  } catch (e) {
    recorder?.abort();
    throw e;
  } finally {
    model.close();
  }
}
