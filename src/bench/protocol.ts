import type { RunOptions } from '../options/run-options.js';

/**
 * What the bench parent sends to a measuring child process (as JSON on stdin) and what the child
 * prints back (one JSON line on stdout). Each measurement runs in a fresh child so that its peak
 * resident memory is the engine's own, and no engine inherits the other's warm heap or threads.
 */

export interface GenerateJob {
  /** a Hugging Face folder (moesaic) or a .gguf file (moesaic or llama.cpp) */
  readonly model: string;
  /** the exact prompt ids, already chosen by the parent: both engines evaluate the same ones */
  readonly promptIds: readonly number[];
  /** tokens to generate (greedy, EOS ignored) */
  readonly genTokens: number;
  readonly threads: number;
  /** untimed prefill + one decode step before the timed run (pages in the memory-mapped weights) */
  readonly warmup: boolean;
  /** moesaic only: run-time options the bench passes to loadModel (e.g. matmulPrecision) */
  readonly runOptions?: RunOptions;
  /** llama.cpp only: the node-llama-cpp entry module (file path) installed by llama-install.ts */
  readonly nodeLlamaCppEntry?: string;
}

/** One timed run of one engine. Times in milliseconds; memory in bytes. */
export interface RunResult {
  readonly engine: 'moesaic' | 'llama.cpp';
  /** wall time of the prefill forward over the whole prompt */
  readonly prefillMs: number;
  /** from the start of prefill to the first generated token (prefill + sampling) */
  readonly ttftMs: number;
  /** the decode steps only (never prefill): from the first generated token to the last for moesaic */
  readonly decodeMs: number;
  /** decode steps decodeMs covers: genTokens - 1 for a generation, genTokens for llama-bench */
  readonly decodeSteps: number;
  readonly genTokens: number;
  readonly promptTokens: number;
  /** the child process's peak resident set (VmHWM), mapped weight pages included; NaN if not measured */
  readonly peakRssBytes: number;
  /** the greedy ids generated (to check that both engines agree; none from llama-bench) */
  readonly ids: readonly number[];
  /** moesaic only: weight bytes one decode token reads, and multiply-accumulates per token */
  readonly cost?: TokenCost;
  /** human-readable: which engine build ran (llama.cpp: node-llama-cpp and llama.cpp release) */
  readonly build: string;
  readonly threads: number;
}

/** Model-side cost figures (see model-cost.ts for what is counted). */
export interface TokenCost {
  /** bytes of weights one decode token must read */
  readonly decodeBytesPerToken: number;
  /** multiply-accumulates of the weight matrices one token uses (no attention scores) */
  readonly macsPerToken: number;
  /** attention score + value MACs of the whole prefill (grows with P^2) */
  readonly prefillAttentionMacs: number;
}

/** Machine memory bandwidth, measured in its own child process. */
export interface BandwidthResult {
  readonly gbs: number;
  /** 'native' (the addon's multi-threaded streaming read) or 'js-approx' (worker threads in JS) */
  readonly method: 'native' | 'js-approx';
  readonly threads: number;
}
