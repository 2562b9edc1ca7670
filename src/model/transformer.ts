import { fail } from '../errors.js';
import type { AttentionSeq, Backend } from '../tensor/backend.js';
import { Scratch } from '../tensor/scratch.js';
import { readRows } from '../tensor/weight.js';
import type { DispatchPolicy } from '../moe/dispatch.js';
import type { ExpertProvider } from '../moe/expert-provider.js';
import { MappedExperts } from '../moe/expert-provider.js';
import type { RoutingObserver } from '../moe/moe-layer.js';
import { moeForward } from '../moe/moe-layer.js';
import type { Router } from '../moe/routing.js';
import { swiglu } from '../moe/swiglu.js';
import type { ModelConfig } from './config.js';
import type { KvCache } from './kv-cache.js';
import type { LayerWeights, ModelWeights } from './layer-weights.js';

/** One sequence's new tokens and its cache, within a batched forward step. */
export interface BatchEntry {
  readonly ids: ArrayLike<number>;
  readonly cache: KvCache;
}

export interface ForwardOptions {
  /** logits for every position ([tokens, vocab]) instead of only the last one ([1, vocab]) */
  readonly allLogits?: boolean;
  readonly observer?: RoutingObserver;
}

/**
 * The decoder stack shared by every supported family: pre-norm attention and FFN blocks with
 * residuals. Family differences come from config fields (qk-norm placement, biases, dense layers,
 * shared experts), never from branches on the architecture name.
 */
export class Transformer {
  private readonly scratch = new Scratch();
  /** Runs before every forward step (expert parallelism's lock-step between ranks, src/parallel/ep-runtime.ts). */
  stepHook: (() => void) | undefined;

  constructor(
    readonly cfg: ModelConfig,
    readonly weights: ModelWeights,
    readonly backend: Backend,
    readonly router: Router,
    readonly policy: DispatchPolicy,
    /** where expert weights come from (default: the memory-mapped weights) */
    readonly experts: ExpertProvider = new MappedExperts(weights.layers.map((l) => l.moe?.experts)),
  ) {}

  /**
   * Run `ids` at positions cache.length .. cache.length + ids.length - 1, appending their keys and
   * values to the cache. Returns logits [rows, vocab] (rows = tokens with allLogits, else 1).
   */
  forward(ids: ArrayLike<number>, cache: KvCache, opts: ForwardOptions = {}): Float32Array {
    return this.forwardBatch([{ ids, cache }], opts);
  }

  /**
   * One forward step over several sequences at once: their tokens are stacked into one batch for the
   * norms, projections and MoE layers (so the experts see every sequence's tokens together, as in
   * batched serving), while RoPE and attention run per sequence against its own KV cache.
   * Returns logits [rows, vocab]: every token's row with allLogits, else each sequence's last row.
   * The array is a reused buffer, valid until the next forward (decode allocates nothing per token).
   */
  forwardBatch(seqs: readonly BatchEntry[], opts: ForwardOptions = {}): Float32Array {
    const { cfg, weights, backend, scratch } = this;
    this.stepHook?.();
    const H = cfg.hiddenSize;
    let T = 0;
    for (const s of seqs) {
      if (s.ids.length === 0) fail('E_BAD_INPUT', 'no input tokens');
      for (let t = 0; t < s.ids.length; t++) {
        const id = s.ids[t]!;
        if (!Number.isInteger(id) || id < 0 || id >= cfg.vocabSize) {
          fail('E_BAD_INPUT', `token id ${id} at position ${t} is outside the vocabulary [0, ${cfg.vocabSize})`);
        }
      }
      s.cache.reserve(s.ids.length);
      T += s.ids.length;
    }

    // a decode-only step (every sequence adds one token after its prompt): batch-aware routing applies
    const decode = seqs.length > 0 && seqs.every((s) => s.ids.length === 1 && s.cache.length > 0);
    const x = scratch.get('x', T * H); // [T, H] residual stream
    let row = 0;
    for (const s of seqs) for (let t = 0; t < s.ids.length; t++) readRows(weights.embed, s.ids[t]!, 1, x, row++ * H);
    const h = scratch.get('h', T * H); // [T, H] normed input of a block
    const y = scratch.get('y', T * H); // [T, H] block output
    for (let l = 0; l < cfg.numLayers; l++) {
      const lw = weights.layers[l]!;
      backend.rmsNorm(h, x, lw.inputNorm, T, cfg.rmsEps);
      this.attention(l, lw, y, h, T, seqs);
      addInPlace(x, y, T * H);
      backend.rmsNorm(h, x, lw.postAttnNorm, T, cfg.rmsEps);
      if (lw.moe) {
        const ctx = { backend, scratch, router: this.router, policy: this.policy, experts: this.experts, observer: opts.observer, decode };
        moeForward(ctx, l, lw.moe, cfg.topK, y, h, T);
      } else {
        swiglu(backend, scratch, 'dense', y, h, T, lw.dense!);
      }
      addInPlace(x, y, T * H);
    }
    for (const s of seqs) s.cache.length += s.ids.length;

    // final norm and lm_head only on the rows whose logits are wanted
    const rows = opts.allLogits ? T : seqs.length;
    const last = scratch.get('last', rows * H); // [rows, H]
    if (opts.allLogits) last.set(x.subarray(0, T * H));
    else {
      let end = 0;
      seqs.forEach((s, i) => {
        end += s.ids.length;
        last.set(x.subarray((end - 1) * H, end * H), i * H);
      });
    }
    backend.rmsNorm(last, last, weights.finalNorm, rows, cfg.rmsEps);
    const logits = scratch.get('logits', rows * cfg.vocabSize); // [rows, vocab]
    backend.matmul(logits, last, weights.lmHead, rows);
    return logits;
  }

  /** Self-attention block: out[T, H] from normed input h[T, H]; RoPE and attention per sequence. */
  private attention(l: number, lw: LayerWeights, out: Float32Array, h: Float32Array, T: number, seqs: readonly BatchEntry[]): void {
    const { cfg, backend, scratch } = this;
    const a = lw.attn;
    const D = cfg.headDim;
    const qDim = cfg.numHeads * D;
    const kvDim = cfg.numKvHeads * D;
    const q = scratch.get('attn.q', T * qDim); // [T, heads, D]
    const k = scratch.get('attn.k', T * kvDim); // [T, kvHeads, D]
    const v = scratch.get('attn.v', T * kvDim); // [T, kvHeads, D]
    backend.matmul(q, h, a.q, T, a.qBias);
    backend.matmul(k, h, a.k, T, a.kBias);
    backend.matmul(v, h, a.v, T, a.vBias);
    if (a.qNorm && a.kNorm) {
      // per-head norm (Qwen3) normalises rows of headDim; full norm (OLMoE) rows of the whole projection
      const perHead = cfg.arch.qkNorm === 'per-head';
      backend.rmsNorm(q, q, a.qNorm, perHead ? T * cfg.numHeads : T, cfg.rmsEps);
      backend.rmsNorm(k, k, a.kNorm, perHead ? T * cfg.numKvHeads : T, cfg.rmsEps);
    }
    if (cfg.clipQkv > 0) for (const m of [q, k, v]) clamp(m, cfg.clipQkv);
    const ctx = scratch.get('attn.ctx', T * qDim); // [T, heads, D]
    // RoPE and attention for every sequence of the step, one call each
    const rows: AttentionSeq[] = seqs.map(({ ids, cache }) => ({ tokens: ids.length, pos0: cache.length, kCache: cache.keys[l]!, vCache: cache.values[l]! }));
    backend.rope(q, rows, cfg.numHeads, D, cfg.ropeTheta);
    backend.rope(k, rows, cfg.numKvHeads, D, cfg.ropeTheta);
    let r = 0;
    for (const { tokens: n, pos0, kCache, vCache } of rows) {
      kCache.set(k.subarray(r * kvDim, (r + n) * kvDim), pos0 * kvDim);
      vCache.set(v.subarray(r * kvDim, (r + n) * kvDim), pos0 * kvDim);
      r += n;
    }
    backend.attention(ctx, q, rows, cfg.numHeads, cfg.numKvHeads, D, cfg.slidingWindow);
    backend.matmul(out, ctx, a.o, T, a.oBias);
  }

  /** Bytes of reusable activation buffers currently held. */
  get activationBytes(): number {
    return this.scratch.bytes;
  }
}

function addInPlace(x: Float32Array, y: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) x[i]! += y[i]!;
}

function clamp(m: Float32Array, c: number): void {
  for (let i = 0; i < m.length; i++) m[i] = Math.min(c, Math.max(-c, m[i]!));
}
