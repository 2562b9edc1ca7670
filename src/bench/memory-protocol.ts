import type { ExpertCacheStats } from '../memory/expert-stats.js';

/**
 * `bench memory`: what the parent sends a measuring child (JSON on stdin) and what comes back. Each
 * setting runs in a fresh process, so its peak RSS is its own and a cgroup limit applies to it alone.
 */
export interface MemoryJob {
  readonly model: string;
  readonly promptIds: readonly number[];
  readonly genTokens: number;
  readonly threads: number;
  /** expert cache as a share of the model's expert bytes; absent: fully memory-mapped */
  readonly share?: number;
  readonly policy?: string;
  readonly prefetch?: string;
  /** record the run's routing here and replay it through `simulate cache` (buffered runs only) */
  readonly tracePath?: string;
  /** cgroup v1 memory folder the child moves itself into before loading the model (the mmap baseline) */
  readonly cgroup?: string;
}

export interface MemoryRun {
  readonly prefillMs: number;
  readonly ttftMs: number;
  readonly decodeMs: number;
  readonly genTokens: number;
  readonly promptTokens: number;
  readonly peakRssBytes: number;
  readonly ids: readonly number[];
  /** the cache's figures (buffered runs) */
  readonly cache?: ExpertCacheStats;
  readonly slotsPerLayer?: number;
  readonly cacheBytes?: number;
  /** the miss rate `simulate cache` predicts from this run's trace, same policy and slots */
  readonly simulatedMissRate?: number;
}
