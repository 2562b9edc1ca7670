import { fail } from '../errors.js';
import type { Command } from 'commander';
import { Option } from 'commander';
import type { Model } from '../model/model.js';
import { loadModel } from '../model/model.js';
import type { RoutingObserver } from '../moe/moe-layer.js';
import { DISPATCH_POLICY_NAMES } from '../moe/policies.js';
import { ROUTER_NAMES } from '../moe/routers.js';
import type { BackendName } from '../tensor/backends.js';
import { BACKEND_NAMES } from '../tensor/backends.js';
import { TraceRecorder } from '../trace/recorder.js';
import { choiceArg, floatArg, intArg, outputPathArg } from './parse.js';

/** Options shared by every command that runs a model (architecture.md, "Policy options"). */
export interface ModelOptions {
  model: string;
  backend: BackendName;
  threads?: number;
  gating: string;
  capacityFactor?: number;
  router?: string;
  trace?: string;
}

/** `trace: false` for commands whose main output is a trace already (`moesaic trace --out`). */
export function addModelOptions(cmd: Command, { trace = true } = {}): Command {
  cmd = cmd
    .requiredOption('--model <dir>', 'Hugging Face checkpoint folder (config.json, *.safetensors, tokenizer.json) or a .gguf file')
    .addOption(new Option('--backend <name>', 'kernels: cpu (native) or ref (TypeScript reference)').default('cpu').argParser(choiceArg('--backend', BACKEND_NAMES)))
    .option('--threads <n>', 'kernel threads (default: one per core)', intArg('--threads', 1, 256))
    .addOption(
      new Option('--gating <policy>', `dispatch policy: ${DISPATCH_POLICY_NAMES.join('|')}`)
        .default('dynamic')
        .argParser(choiceArg('--gating', DISPATCH_POLICY_NAMES)),
    )
    .option('--capacity-factor <c>', 'static gating: slots per expert = ceil(C * tokens)', floatArg('--capacity-factor', 1e-6, 1e6))
    .addOption(new Option('--router <name>', `override the routing function: ${ROUTER_NAMES.join('|')}`).argParser(choiceArg('--router', ROUTER_NAMES)));
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
  const model = await loadModel(opts.model, {
    backend: opts.backend,
    threads: opts.threads,
    gating: opts.gating,
    capacityFactor: opts.capacityFactor,
    router: opts.router,
  });
  const recorder = opts.trace ? new TraceRecorder(opts.trace, opts.model, model.config) : undefined;
  try {
    const result = await fn(model, recorder?.observer);
    await recorder?.close();
    return result;
  } catch (e) {
    recorder?.abort();
    throw e;
  }
}
