import type { DispatchPolicy } from '../moe/dispatch.js';
import type { ExpertProvider } from '../moe/expert-provider.js';
import { MappedExperts } from '../moe/expert-provider.js';
import type { RoutingListener } from '../moe/moe-layer.js';
import type { Router, Routing, SoftmaxTopK } from '../moe/routing.js';
import { softmaxTopKRow } from '../moe/router-softmax-topk.js';
import type { Backend } from '../tensor/backend.js';
import { nativePrecisionCode } from '../tensor/cpu-backend.js';
import { DTYPE_CODE } from '../tensor/dtype.js';
import { isQuantType } from '../tensor/quant/formats.js';
import type { DecodePlanHandle, NativeAddon } from '../tensor/native.js';
import { nativeAddon } from '../tensor/native.js';
import type { Weight } from '../tensor/weight.js';
import type { ModelConfig } from './config.js';
import type { KvCache } from './kv-cache.js';
import type { ModelWeights } from './layer-weights.js';

/** Where the fused step's time went (`bench generate --profile`), summed over layers and tokens. */
export interface FusedDecodeTimes {
  attentionMs: number;
  routingMs: number;
  expertsMs: number;
  /** weight bytes the experts halves streamed */
  expertBytes: number;
}
/** native/decode-layer.h: kMaxChosen, kMaxDecodeExperts, kMaxDecodeSize */
const MAX_CHOSEN = 64;
const MAX_EXPERTS = 4096;
const MAX_SIZE = 2 ** 20;

/**
 * One sequence's decode token through every layer in two native calls per layer (native/decode-layer.h):
 * the attention half (norm, q/k/v, RoPE, cache write, attention, o, residual, norm, router logits), then
 * in TypeScript the token's softmax-top-k routing (8 logits), then the experts half (the chosen experts'
 * grouped products, the weighted combine, residual). The per-op path made ~7 calls per layer and ran its
 * glue in TypeScript; with 260 MB of weights streaming through the caches every token, each call and
 * each line of glue started on cold caches, about 1 ms of a 10 ms token on the bench model. The same
 * kernels run in the same order, and the routing and combine round as the per-op path does, so the
 * logits are bit-identical to it (tested).
 *
 * Used only where it is that path exactly: the native `cpu` backend (any precision); every layer a MoE
 * layer without a shared expert, its q, k and v adjacent in memory (fusedQkv) with no biases or norms,
 * weights in f32/bf16/f16; no q/k/v clipping; a softmax-top-k router; dynamic gating; the mapped experts
 * (no cache); one sequence's one token, unobserved (Transformer.forwardBatch checks the step).
 */
export class FusedDecode {
  private readonly plan: DecodePlanHandle;
  private readonly addon: NativeAddon;
  private readonly logits: Float32Array; // [experts] the router's
  private readonly chosen: Int32Array; // [k]
  private readonly weights: Float32Array; // [k]
  private readonly probs: Float64Array; // [experts]
  private readonly top: Float64Array; // [k]

  private constructor(
    sizes: { attentionBytes: number; expertBytes: number },
    plan: DecodePlanHandle,
    private readonly layers: number,
    private readonly experts: number,
    private readonly k: number,
    private readonly rule: SoftmaxTopK,
  ) {
    this.plan = plan;
    this.attentionBytes = sizes.attentionBytes;
    this.expertBytes = sizes.expertBytes;
    this.addon = nativeAddon();
    this.logits = new Float32Array(experts);
    this.chosen = new Int32Array(k);
    this.weights = new Float32Array(k);
    this.probs = new Float64Array(experts);
    this.top = new Float64Array(k);
    this.routing = { tokens: 1, k, experts: this.chosen, weights: this.weights };
  }

  /** the token's routing, as a routing listener sees it (the arrays above) */
  private readonly routing: Routing;

  /** The fused step for this model, or undefined where the per-op path must run (see the class doc). */
  static create(
    cfg: ModelConfig,
    weights: ModelWeights,
    backend: Backend,
    router: Router,
    policy: DispatchPolicy,
    experts: ExpertProvider,
    fusedQkv: readonly (Weight | undefined)[],
  ): FusedDecode | undefined {
    const precision = nativePrecisionCode(backend);
    const rule = router.softmaxTopK;
    if (precision === undefined || !rule || policy.name !== 'dynamic' || !(experts instanceof MappedExperts) || cfg.clipQkv > 0) return undefined;
    const E = weights.layers[0]?.moe?.router.shape[0] ?? 0;
    const k = Math.min(rule.fixedK ?? cfg.topK, E);
    const ffn = weights.layers[0]?.moe?.experts[0]?.gate.shape[0] ?? 0;
    // the native plan's limits (native/decode-layer.h)
    const within = (n: number): boolean => n >= 1 && n <= MAX_SIZE;
    if (!within(E) || E > MAX_EXPERTS || k < 1 || k > MAX_CHOSEN || !within(ffn) || !within(cfg.hiddenSize) || !within(cfg.numLayers) || !within(cfg.numHeads * cfg.headDim)) return undefined;
    const e0 = weights.layers[0]!.moe!.experts[0]!;
    const expertDtype = e0.gate.dtype;
    const arrays: (Float32Array | Uint16Array)[] = [];
    let attentionBytes = 0;
    const dtypes: number[] = [];
    const add = (w: Weight): boolean => {
      if (isQuantType(w.dtype)) return false;
      arrays.push(w.data as Float32Array | Uint16Array);
      dtypes.push(DTYPE_CODE[w.dtype]);
      return true;
    };
    for (let l = 0; l < weights.layers.length; l++) {
      const lw = weights.layers[l]!;
      const moe = lw.moe;
      const qkv = fusedQkv[l];
      const a = lw.attn;
      if (!moe || moe.shared || !qkv || a.oBias || a.qNorm || a.kNorm || moe.router.shape[0] !== E || moe.experts.length !== E) return undefined;
      const attention = [lw.inputNorm, qkv, a.o, lw.postAttnNorm, moe.router];
      if (!attention.every(add)) return undefined;
      for (const w of attention) attentionBytes += w.data.byteLength;
      for (const part of ['gate', 'up', 'down'] as const) {
        for (const e of moe.experts) {
          if (e[part].dtype !== expertDtype || e[part].data.length !== e0[part].data.length || !add(e[part])) return undefined;
        }
      }
    }
    const sizes = Float64Array.of(cfg.hiddenSize, cfg.numHeads, cfg.numKvHeads, cfg.headDim, ffn, E, cfg.numLayers, cfg.slidingWindow, cfg.ropeTheta, cfg.rmsEps, DTYPE_CODE[expertDtype], precision, k);
    const plan = nativeAddon().createDecodePlan(sizes, arrays, Int32Array.from(dtypes));
    return new FusedDecode({ attentionBytes, expertBytes: e0.gate.data.byteLength + e0.up.data.byteLength + e0.down.data.byteLength }, plan, cfg.numLayers, E, k, rule);
  }

  /**
   * x [hidden] (the token's embedding row) through every layer, in place; the token's keys and values
   * go to row cache.length of each layer's cache (the caller advances cache.length).
   */
  run(x: Float32Array, cache: KvCache, onRouting?: RoutingListener, times?: FusedDecodeTimes): void {
    const { addon, plan, logits, chosen, weights, probs, top, experts, k } = this;
    const pos = cache.length;
    for (let l = 0; l < this.layers; l++) {
      const t0 = times ? performance.now() : 0;
      addon.decodeAttention(plan, l, x, cache.keys[l]!, cache.values[l]!, pos, logits);
      const t1 = times ? performance.now() : 0;
      const found = softmaxTopKRow(logits, 0, experts, k, this.rule.renormalize, probs, top, chosen, weights, 0);
      // (a softmax always yields k; fewer would be a router masking experts, as the per-op path allows)
      if (found < k) chosen.fill(-1, found); // empty slots, as the router's own routing marks them
      if (onRouting) onRouting(l, this.routing);
      const t2 = times ? performance.now() : 0;
      if (found === k) addon.decodeExperts(plan, l, x, chosen, weights);
      else if (found > 0) addon.decodeExperts(plan, l, x, chosen.subarray(0, found), weights.subarray(0, found));
      if (times) {
        times.attentionMs += t1 - t0;
        times.routingMs += t2 - t1;
        times.expertsMs += performance.now() - t2;
        times.expertBytes += found * this.expertBytes;
      }
    }
  }

  /** Weight bytes every attention half streams, all layers (norms, q/k/v, o, router). */
  readonly attentionBytes: number;
  /** Weight bytes of one expert (gate, up, down). */
  readonly expertBytes: number;
}
