import type { ModelConfig } from '../model/config.js';
import type { TraceHeader, TraceRecord } from '../trace/format.js';

/**
 * Records the routing decisions of live traffic in the trace format of `moesaic trace` (one header,
 * one record per step and MoE layer), like SGLang's expert-distribution recorder, so `analyze` and
 * `simulate` run on production traffic. Held in memory between start and stop, bounded by
 * `maxRecords`: when full it stops itself and says so (`truncated`).
 */
export class RoutingRecorder {
  private records: TraceRecord[] = [];
  private step = -1;
  recording = false;
  truncated = false;
  /** steps skipped because a token had no expert in some slot (expert-choice routing): not in the format */
  skipped = 0;

  constructor(
    private readonly header: TraceHeader,
    private readonly maxRecords: number,
  ) {}

  static forModel(name: string, cfg: ModelConfig, maxRecords: number): RoutingRecorder {
    const header: TraceHeader = {
      moesaic_trace: 1,
      model: name,
      num_layers: cfg.numLayers,
      moe_layers: cfg.sparse.flatMap((s, i) => (s ? [i] : [])),
      num_experts: cfg.numExperts,
      top_k: cfg.topK,
    };
    return new RoutingRecorder(header, maxRecords);
  }

  /** Clears what was recorded and starts again. */
  start(): void {
    this.records = [];
    this.step = -1;
    this.recording = true;
    this.truncated = false;
    this.skipped = 0;
  }

  stop(): void {
    this.recording = false;
  }

  /** A model step begins (its records share one step number). */
  beginStep(): void {
    if (this.recording) this.step++;
  }

  record(layer: number, tokens: number, k: number, experts: Int32Array, weights: Float32Array): void {
    if (!this.recording) return;
    if (k !== this.header.top_k || experts.includes(-1)) {
      this.skipped++;
      return;
    }
    if (this.records.length >= this.maxRecords) {
      this.truncated = true;
      this.recording = false;
      return;
    }
    const rec: TraceRecord = { step: this.step, layer, experts: [], weights: [] };
    for (let t = 0; t < tokens; t++) {
      rec.experts.push(Array.from(experts.subarray(t * k, (t + 1) * k)));
      rec.weights!.push(Array.from(weights.subarray(t * k, (t + 1) * k), (w) => Math.round(w * 1e6) / 1e6));
    }
    this.records.push(rec);
  }

  get status(): { recording: boolean; steps: number; records: number; truncated: boolean; skipped_steps: number } {
    return { recording: this.recording, steps: this.step + 1, records: this.records.length, truncated: this.truncated, skipped_steps: this.skipped };
  }

  /** The trace as JSON Lines text (header first). */
  toJsonLines(): string {
    const lines = [JSON.stringify(this.header)];
    for (const r of this.records) lines.push(JSON.stringify(r));
    return `${lines.join('\n')}\n`;
  }
}
