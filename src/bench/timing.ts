/**
 * The timing protocol of one generation run, apart from any engine so that it can be tested with a
 * fake clock: prefill is timed alone, the first token's sampling is added for the time to first
 * token, and decode is timed from the first generated token to the last (genTokens - 1 steps), so
 * no prefill work ever counts as decode.
 */
export interface Clock {
  /** milliseconds, monotonic */
  now(): number;
}

/** The engine side of one greedy generation. */
export interface GenerationSteps {
  /** the forward over the whole prompt (no sampling) */
  prefill(): void;
  /** the first generated id, from the prefill's logits */
  sampleFirst(): number;
  /** one decode step: forward of `last` and the next greedy id */
  decode(last: number): number;
}

export interface GenerationTiming {
  readonly prefillMs: number;
  readonly ttftMs: number;
  readonly decodeMs: number;
  readonly ids: readonly number[];
}

export function timeGeneration(clock: Clock, steps: GenerationSteps, genTokens: number): GenerationTiming {
  const ids: number[] = [];
  const t0 = clock.now();
  steps.prefill();
  const t1 = clock.now();
  ids.push(steps.sampleFirst());
  const t2 = clock.now();
  while (ids.length < genTokens) ids.push(steps.decode(ids[ids.length - 1]!));
  const t3 = clock.now();
  return { prefillMs: t1 - t0, ttftMs: t2 - t0, decodeMs: t3 - t2, ids };
}
