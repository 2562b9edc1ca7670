/** What an expert cache did over a run (the library's `model.expertCacheStats()`, `generate --stats`/`--json`). */
export interface ExpertCacheStats {
  /** active experts found resident when their layer began (including prefetch hits) */
  readonly hits: number;
  /** active experts that had to be read */
  readonly misses: number;
  /** hits on an expert a prefetch loaded and the layer had not used since */
  readonly prefetchHits: number;
  /** experts a prefetch started loading */
  readonly prefetchLoads: number;
  /** prefetch precision: predicted experts that were then active / predicted (NaN: no predictions) */
  readonly prefetchPrecision: number;
  /** prefetch recall: active experts that had been predicted / active experts of predicted layers */
  readonly prefetchRecall: number;
  readonly missRate: number;
  readonly bytesRead: number;
  /** bytes read / wall seconds with a read in flight */
  readonly readGBs: number;
  /** time the layers waited for reads, ms */
  readonly stallMs: number;
  /** tokens that went through the model (stall per token = stallMs / tokens) */
  readonly tokens: number;
  readonly stallMsPerToken: number;
  /** bytes of the expert tensors resident now */
  readonly residentBytes: number;
  /** bytes of the slot arena (allocated once) */
  readonly arenaBytes: number;
}

/** The running counters behind ExpertCacheStats. */
export class ExpertCounters {
  hits = 0;
  misses = 0;
  prefetchHits = 0;
  prefetchLoads = 0;
  predicted = 0; // experts predicted by prefetches whose layer then ran
  predictedActive = 0; // of those, active
  activeOfPredicted = 0; // active experts of layers that had a prediction
  stallMs = 0;
  tokens = 0;

  snapshot(read: { bytes: number; seconds: number }, residentBytes: number, arenaBytes: number): ExpertCacheStats {
    const requests = this.hits + this.misses;
    return {
      hits: this.hits,
      misses: this.misses,
      prefetchHits: this.prefetchHits,
      prefetchLoads: this.prefetchLoads,
      prefetchPrecision: this.predicted > 0 ? this.predictedActive / this.predicted : NaN,
      prefetchRecall: this.activeOfPredicted > 0 ? this.predictedActive / this.activeOfPredicted : NaN,
      missRate: requests > 0 ? this.misses / requests : 0,
      bytesRead: read.bytes,
      readGBs: read.seconds > 0 ? read.bytes / read.seconds / 1e9 : 0,
      stallMs: this.stallMs,
      tokens: this.tokens,
      stallMsPerToken: this.tokens > 0 ? this.stallMs / this.tokens : 0,
      residentBytes,
      arenaBytes,
    };
  }
}

/** `generate --stats`: the figures, one per line. */
export function formatExpertCacheStats(s: ExpertCacheStats): string {
  const pct = (x: number) => (Number.isNaN(x) ? 'n/a' : `${(100 * x).toFixed(1)}%`);
  const mb = (x: number) => `${(x / 1e6).toFixed(2)} MB`;
  return [
    `expert cache: ${s.hits} hits, ${s.misses} misses (miss rate ${pct(s.missRate)}), ${s.prefetchHits} prefetch hits`,
    `  prefetch: ${s.prefetchLoads} loads, precision ${pct(s.prefetchPrecision)}, recall ${pct(s.prefetchRecall)}`,
    `  read: ${mb(s.bytesRead)} at ${s.readGBs.toFixed(2)} GB/s; stalled ${s.stallMs.toFixed(1)} ms (${s.stallMsPerToken.toFixed(3)} ms per token over ${s.tokens} tokens)`,
    `  resident experts: ${mb(s.residentBytes)} in an arena of ${mb(s.arenaBytes)}`,
    '',
  ].join('\n');
}
