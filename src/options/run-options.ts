import type { Command } from 'commander';
import { Option } from 'commander';
import { choiceArg, floatArg, inputFileArg, intArg } from '../cli/parse.js';
import { EP_MODES, EP_PLACEMENTS } from '../parallel/expert-map.js';
import { A2A_MODES } from '../parallel/topology-communicator.js';
import { parseCacheBudget } from '../memory/cache-budget.js';
import { ONLINE_CACHE_POLICIES } from '../memory/cache-policies.js';
import { DEFAULT_CACHE_POLICY } from '../memory/expert-cache-setup.js';
import { PREFETCH_NAMES } from '../memory/prefetchers.js';
import { LYNX_DEFAULTS } from '../moe/lynx.js';
import { DISPATCH_POLICY_NAMES } from '../moe/policies.js';
import type { QuantMix } from '../model/gguf/quant-mix.js';
import { QUANT_MIXES } from '../model/gguf/quant-mix.js';
import { ROUTER_NAMES } from '../moe/routers.js';
import type { BackendName } from '../tensor/backends.js';
import { BACKEND_NAMES } from '../tensor/backends.js';
import type { MatmulPrecision } from '../tensor/matmul-precision.js';
import { MATMUL_PRECISIONS } from '../tensor/matmul-precision.js';

/**
 * One run-time option: its command-line flag, help, parser, default and its key in `RunOptions`.
 * Defined once here; the CLI (every command that runs a model, the benchmarks, the server) and the
 * library's `loadModel` options are derived from this table, so an option never has two spellings.
 */
export interface RunOptionSpec<K extends string, T> {
  readonly key: K;
  /** commander flag, e.g. '--threads <n>' */
  readonly flag: string;
  readonly help: string;
  readonly parse: (raw: string) => T;
  readonly default?: T;
}

const spec = <K extends string, T>(s: RunOptionSpec<K, T>): RunOptionSpec<K, T> => s;

/** The run-time options. A subsystem adds its options here, one entry each. */
export const RUN_OPTIONS = [
  spec({ key: 'backend', flag: '--backend <name>', help: 'kernels: cpu (native) or ref (TypeScript reference, slow)', parse: choiceArg<BackendName>('--backend', BACKEND_NAMES), default: 'cpu' as BackendName }),
  spec({ key: 'hugepages', flag: '--hugepages <mode>', help: 'on: copy the weights at load into memory backed by transparent huge pages (faster streaming in decode; docs/kernels.md); off: use the memory-mapped checkpoint in place (the expert cache and --ranks always do)', parse: choiceArg('--hugepages', ['on', 'off'] as const), default: 'on' as 'on' | 'off' }),
  spec({ key: 'matmulPrecision', flag: '--matmul-precision <p>', help: 'products with bf16 weights: exact (f32 activations) or bf16 (activations rounded to bf16, AVX-512 BF16 dot products; docs/kernels.md)', parse: choiceArg<MatmulPrecision>('--matmul-precision', MATMUL_PRECISIONS), default: 'exact' as MatmulPrecision }),
  spec({ key: 'threads', flag: '--threads <n>', help: 'kernel threads (default: one per core)', parse: intArg('--threads', 1, 256) }),
  spec({ key: 'gating', flag: '--gating <policy>', help: `dispatch policy of the MoE layers: ${DISPATCH_POLICY_NAMES.join('|')}`, parse: choiceArg('--gating', DISPATCH_POLICY_NAMES), default: 'dynamic' }),
  spec({ key: 'capacityFactor', flag: '--capacity-factor <c>', help: 'static gating: slots per expert = ceil(C * tokens) (default 1)', parse: floatArg('--capacity-factor', 1e-6, 1e6) }),
  spec({ key: 'blockSize', flag: '--block-size <rows>', help: 'megablocks gating: rows per block (default 16)', parse: intArg('--block-size', 1, 4096) }),
  spec({ key: 'router', flag: '--router <name>', help: `override the routing function: ${ROUTER_NAMES.join('|')}`, parse: choiceArg('--router', ROUTER_NAMES) }),
  spec({ key: 'quantize', flag: '--quantize <type>', help: `quantize the weights in memory at load: ${QUANT_MIXES.join('|')} (llama.cpp's tensor mix)`, parse: choiceArg<QuantMix>('--quantize', QUANT_MIXES) }),
  // expert parallelism (docs/parallel.md); --ranks and --hostfile are read by the launcher
  spec({ key: 'ranks', flag: '--ranks <n>', help: 'run as N expert-parallel MPI ranks (starts mpirun; mpirun -np N moesaic ... works too)', parse: intArg('--ranks', 1, 4096) }),
  spec({ key: 'hostfile', flag: '--hostfile <file>', help: "mpirun's hostfile: run the ranks on several hosts", parse: inputFileArg('--hostfile') }),
  spec({ key: 'epMode', flag: '--ep-mode <mode>', help: `expert parallelism: ${EP_MODES.join('|')} (whole experts per rank, or MoEShard's slice of every expert; default experts)`, parse: choiceArg('--ep-mode', EP_MODES) }),
  spec({ key: 'placement', flag: '--placement <p>', help: `which rank holds which expert: ${EP_PLACEMENTS.join('|')} (default contiguous)`, parse: choiceArg('--placement', EP_PLACEMENTS) }),
  spec({ key: 'placementTrace', flag: '--placement-trace <file>', help: 'routing trace the fitted placements (greedy, anticorr, eplb) learn from', parse: inputFileArg('--placement-trace') }),
  spec({ key: 'replicas', flag: '--replicas <r>', help: 'EPLB: physical expert slots over all ranks (>= experts, a multiple of the ranks)', parse: intArg('--replicas', 1, 1 << 20) }),
  spec({ key: 'rebalanceEvery', flag: '--rebalance-every <k>', help: 'expert parallelism: every K steps, re-fit the placement on the last K steps\' routing and move experts', parse: intArg('--rebalance-every', 1, 1_000_000) }),
  spec({ key: 'epA2a', flag: '--ep-a2a <mode>', help: `expert parallelism across hosts: ${A2A_MODES.join('|')} all-to-all (MoNTA's hierarchical one through a leader per host; auto picks by message size; default auto)`, parse: choiceArg('--ep-a2a', A2A_MODES) }),
  spec({ key: 'epChunks', flag: '--ep-chunks <c>', help: 'FSMoE pipelining: each exchange in C pieces overlapped with the experts (default 1)', parse: intArg('--ep-chunks', 1, 64) }),
  spec({ key: 'expertCache', flag: '--expert-cache <size>', help: "expert buffering: keep experts on disk and cache SIZE bytes of them (512MB, 2GiB) or N% of the model's expert bytes", parse: parseCacheBudget }),
  spec({ key: 'expertCacheSlots', flag: '--expert-cache-slots <n>', help: 'expert buffering: cache N experts per MoE layer', parse: intArg('--expert-cache-slots', 1, 1_000_000) }),
  spec({ key: 'cachePolicy', flag: '--cache-policy <rule>', help: `expert cache eviction rule: ${ONLINE_CACHE_POLICIES.join('|')} (default ${DEFAULT_CACHE_POLICY})`, parse: choiceArg('--cache-policy', ONLINE_CACHE_POLICIES) }),
  spec({ key: 'prefetch', flag: '--prefetch <mode>', help: `expert cache prefetch of the next MoE layer: ${PREFETCH_NAMES.join('|')} (default none)`, parse: choiceArg('--prefetch', PREFETCH_NAMES) }),
  spec({ key: 'lynx', flag: '--lynx <mode>', help: 'Lynx batch-aware expert selection in decode steps: off|on', parse: choiceArg('--lynx', ['off', 'on'] as const), default: 'off' as 'off' | 'on' }),
  spec({ key: 'lynxThreshold', flag: '--lynx-threshold <t>', help: `Lynx: share of the batch's expert score the kept experts cover, (0, 1] (default ${LYNX_DEFAULTS.threshold})`, parse: floatArg('--lynx-threshold', 1e-6, 1) }),
] as const;

type Spec = (typeof RUN_OPTIONS)[number];

/** The run-time options as values (what `loadModel` takes); every field optional, defaults from the table. */
export type RunOptions = { readonly [S in Spec as S['key']]?: ReturnType<S['parse']> };

/** RunOptions with the table's defaults filled in. */
export type ResolvedRunOptions = RunOptions & { readonly backend: BackendName; readonly gating: string };

export const RUN_OPTION_KEYS: readonly string[] = RUN_OPTIONS.map((s) => s.key);

export function resolveRunOptions(opts: RunOptions): ResolvedRunOptions {
  const out: Record<string, unknown> = {};
  for (const s of RUN_OPTIONS) out[s.key] = (opts as Record<string, unknown>)[s.key] ?? s.default;
  return out as ResolvedRunOptions;
}

/**
 * Adds the run-time options to a command. `keys` limits them (a benchmark that sweeps one itself
 * leaves it out); `defaults` replaces a table default for this command.
 */
export function addRunOptions(cmd: Command, { keys, defaults = {} }: { keys?: readonly string[]; defaults?: Record<string, unknown> } = {}): Command {
  for (const s of RUN_OPTIONS) {
    if (keys && !keys.includes(s.key)) continue;
    const o = new Option(s.flag, s.help).argParser(s.parse as (raw: string) => unknown);
    const d = s.key in defaults ? defaults[s.key] : s.default;
    if (d !== undefined) o.default(d);
    cmd.addOption(o);
  }
  return cmd;
}

/** The run-time options among a command's parsed options. */
export function pickRunOptions(parsed: Record<string, unknown>): RunOptions {
  const out: Record<string, unknown> = {};
  for (const k of RUN_OPTION_KEYS) if (parsed[k] !== undefined) out[k] = parsed[k];
  return out as RunOptions;
}
