import type { ExpertCacheStats } from '../memory/expert-stats.js';
import type { RunResult } from './protocol.js';

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
  /** record the run's routing here (the parent replays it through `simulate cache`) */
  readonly tracePath?: string;
  /** cgroup v1 memory folder the child moves itself into before loading the model (the mmap baseline) */
  readonly cgroup?: string;
}

/** One timed run: `bench generate`'s timing and memory fields, plus the cache's figures. */
export interface MemoryRun extends Pick<RunResult, 'prefillMs' | 'ttftMs' | 'decodeMs' | 'genTokens' | 'promptTokens' | 'peakRssBytes' | 'ids'> {
  /** the cache's figures (buffered runs) */
  readonly cache?: ExpertCacheStats;
  readonly slotsPerLayer?: number;
  readonly cacheBytes?: number;
}
