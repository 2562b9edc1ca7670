import type { SwiGluWeights } from '../moe/swiglu.js';
import type { ExpertReadPlan } from './slot-layout.js';

/** Bytes copied and time spent copying, for read GB/s. */
export interface ReadTotals {
  readonly bytes: number;
  /** wall seconds with at least one copy in flight */
  readonly seconds: number;
}

/**
 * The fast tier of expert buffering: a fixed number of equal slots that experts are copied into from
 * the slow tier, asynchronously, and handed out from. `ExpertStore` is the CPU one (disk -> RAM with
 * pread on I/O threads); a device tier (host RAM -> GPU memory with copy streams and events) fills the
 * same contract, so the cache, pinning, overlap and prefetch logic in BufferedExperts stays as it is.
 */
export interface ExpertTier {
  readonly slots: number;
  /** bytes the tier holds for its slots (allocated once) */
  readonly arenaBytes: number;
  /** how the slow tier is read, for the user ('O_DIRECT reads', 'buffered reads', ...) */
  readonly readMode: string;
  /** Prepares to read this file (opening it once). */
  open(path: string): void;
  /** Starts copying an expert into `slot`; `background` copies (prefetches) yield to the others. */
  load(slot: number, plan: ExpertReadPlan, what: string, background?: boolean): void;
  /** True once the slot's copy finished (successfully or not). */
  settled(slot: number): boolean;
  /** Blocks until the slot's copy finished, without judging it. */
  settle(slot: number): void;
  /** A queued background copy of the slot is now needed first. */
  promote(slot: number): void;
  /** Blocks until one of `slots` (non-empty) is settled; returns it. */
  waitAny(slots: readonly number[]): number;
  /** The slot's weights (waiting for its copy); an E_IO when the copy failed. */
  weights(slot: number): SwiGluWeights;
  totals(): ReadTotals;
  close(): void;
}
