import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Cumulative expert-cache counters, when an expert cache is on. */
export interface CacheCounters {
  readonly hits: number;
  readonly misses: number;
}

/**
 * The server's Prometheus metrics (prom-client) in a registry of its own, so two servers in one
 * process (tests, benches) never share counters. It also keeps the cumulative layer x expert
 * activation counts that the dashboard draws as a heatmap.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'route' | 'status'>;
  readonly promptTokens: Counter;
  readonly generationTokens: Counter;
  readonly ttft: Histogram;
  readonly tpot: Histogram;
  readonly queueLength: Gauge;
  readonly batchSize: Gauge;
  readonly stepTokens: Gauge;
  readonly kvBytes: Gauge;
  /** [layer][expert] the labelled activation counter, made once: the routing hook of every step allocates nothing */
  private readonly expertActivations: ReturnType<Counter<'layer' | 'expert'>['labels']>[][];
  /** [layer][expert] tokens routed, since start */
  readonly activations: Float64Array[];
  tokensOut = 0;
  private readonly stepCounts: Int32Array;

  constructor(
    readonly numLayers: number,
    readonly numExperts: number,
    cacheCounters?: () => CacheCounters | null,
  ) {
    const registers = [this.registry];
    this.requests = new Counter({ name: 'moesaic_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers });
    this.promptTokens = new Counter({ name: 'moesaic_prompt_tokens_total', help: 'prompt tokens admitted', registers });
    this.generationTokens = new Counter({ name: 'moesaic_generation_tokens_total', help: 'tokens generated', registers });
    const latency = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
    this.ttft = new Histogram({ name: 'moesaic_time_to_first_token_seconds', help: 'request arrival to its first token', buckets: latency, registers });
    this.tpot = new Histogram({ name: 'moesaic_time_per_output_token_seconds', help: 'mean time between output tokens of a request', buckets: latency, registers });
    this.queueLength = new Gauge({ name: 'moesaic_queue_length', help: 'requests waiting for admission', registers });
    this.batchSize = new Gauge({ name: 'moesaic_batch_size', help: 'sequences in the last step', registers });
    this.stepTokens = new Gauge({ name: 'moesaic_step_tokens', help: 'tokens (decode + prefill chunks) in the last step', registers });
    this.kvBytes = new Gauge({ name: 'moesaic_kv_cache_bytes', help: 'bytes of KV cache held by running sequences', registers });
    const activations = new Counter({ name: 'moesaic_expert_activations_total', help: 'tokens routed to each expert', labelNames: ['layer', 'expert'], registers });
    this.expertActivations = Array.from({ length: numLayers }, (_, l) => Array.from({ length: numExperts }, (_, e) => activations.labels(String(l), String(e))));
    this.stepCounts = new Int32Array(numExperts);
    this.activations = Array.from({ length: numLayers }, () => new Float64Array(numExperts));
    if (cacheCounters) {
      new Gauge({ name: 'moesaic_expert_cache_hits', help: 'expert cache hits since start', registers, collect() { this.set(cacheCounters()?.hits ?? 0); } });
      new Gauge({ name: 'moesaic_expert_cache_misses', help: 'expert cache misses since start', registers, collect() { this.set(cacheCounters()?.misses ?? 0); } });
    }
  }

  /** Count one layer's routing of one step: `experts` holds T*k ids (-1 = empty slot). */
  recordRouting(layer: number, experts: Int32Array): void {
    const row = this.activations[layer];
    if (!row) return;
    const counts = this.stepCounts;
    counts.fill(0);
    for (const e of experts) if (e >= 0 && e < this.numExperts) counts[e]! += 1;
    for (let e = 0; e < this.numExperts; e++) {
      if (counts[e] === 0) continue;
      row[e]! += counts[e]!;
      this.expertActivations[layer]![e]!.inc(counts[e]!);
    }
  }
}
