import { fail } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import type { RoutingObserver } from '../moe/moe-layer.js';
import type { TraceHeader } from './format.js';
import { TraceWriter } from './format.js';

/**
 * Records a model's routing decisions as a trace: one record per forward step and
 * MoE layer, each token's k experts in the router's order, with their weights. A new step begins when
 * the layer index does not increase (the next forward pass started).
 */
export class TraceRecorder {
  private readonly writer: TraceWriter;
  private step = -1;
  private lastLayer = Infinity;

  constructor(path: string, model: string, cfg: ModelConfig) {
    const header: TraceHeader = {
      moesaic_trace: 1,
      model,
      num_layers: cfg.numLayers,
      moe_layers: cfg.sparse.flatMap((s, i) => (s ? [i] : [])),
      num_experts: cfg.numExperts,
      top_k: cfg.topK,
    };
    this.writer = new TraceWriter(path, header);
  }

  readonly observer: RoutingObserver = (layer, routing) => {
    if (layer <= this.lastLayer) this.step++;
    this.lastLayer = layer;
    const experts: number[][] = [];
    const weights: number[][] = [];
    const k = routing.k;
    if (routing.experts.includes(-1)) {
      fail('E_BAD_OPTION', 'this routing gives tokens varying numbers of experts (expert-choice); the trace format records exactly top_k experts per token');
    }
    for (let t = 0; t < routing.tokens; t++) {
      experts.push(Array.from(routing.experts.subarray(t * k, (t + 1) * k)));
      weights.push(Array.from(routing.weights.subarray(t * k, (t + 1) * k), (w) => Math.round(w * 1e6) / 1e6));
    }
    this.writer.write({ step: this.step, layer, experts, weights });
  };

  close(): Promise<void> {
    return this.writer.close();
  }

  /** Drop the partial trace (the run failed). */
  abort(): void {
    this.writer.abort();
  }
}
