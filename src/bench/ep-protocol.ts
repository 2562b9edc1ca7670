/** What `bench ep` hands its ranks (src/bench/ep-rank.ts) and what rank 0 hands back. */

/** One configuration of the expert-parallel engine, run side by side with the others. */
export interface EpBenchConfig {
  readonly name: string;
  readonly gating?: string;
  readonly epMode?: 'experts' | 'shard';
  readonly placement?: 'contiguous' | 'roundrobin' | 'greedy' | 'anticorr' | 'eplb';
  readonly replicas?: number;
  readonly epChunks?: number;
  /** the placement is fitted on the job's trace */
  readonly fitted?: boolean;
}

export interface EpBenchJob {
  readonly model: string;
  readonly threads: number;
  readonly prompts: number[][];
  readonly genTokens: number;
  /** reported repetitions (one more runs first, unreported, to warm the mappings) */
  readonly reps: number;
  /** routing trace of the same workload, recorded by the single-process engine */
  readonly trace: string;
  readonly configs: readonly EpBenchConfig[];
}

/** One run of one configuration; per-rank arrays are in rank order. */
export interface EpRunFigures {
  /** slowest rank's wall time of the generation, ms */
  readonly wall_ms: number;
  /** bytes all ranks sent to other ranks */
  readonly bytes_sent: number;
  readonly exchange_ms: number[];
  readonly expert_ms: number[];
  /** rows each rank ran through its experts */
  readonly expert_rows: number[];
  /** bytes of expert weights each rank holds */
  readonly expert_bytes: number[];
  readonly rss: number[];
  /** [layer call][rank] rows per MoE layer call, calls in order (step-major, MoE layers within) */
  readonly row_log: number[][];
}
