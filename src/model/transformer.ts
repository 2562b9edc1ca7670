import { fail } from '../errors.js';
import type { AttentionSeq, Backend } from '../tensor/backend.js';
import { Scratch } from '../tensor/scratch.js';
import type { Weight } from '../tensor/weight.js';
import { readRows } from '../tensor/weight.js';
import { isQuantType } from '../tensor/quant/formats.js';
import { rowRange } from '../moe/buffers.js';
import type { DispatchPolicy } from '../moe/dispatch.js';
import type { ExpertProvider } from '../moe/expert-provider.js';
import { MappedExperts } from '../moe/expert-provider.js';
import type { RoutingListener, RoutingObserver } from '../moe/moe-layer.js';
import { moeForward } from '../moe/moe-layer.js';
import type { Router } from '../moe/routing.js';
import { swiglu } from '../moe/swiglu.js';
import type { ModelConfig } from './config.js';
import type { FusedDecodeTimes } from './fused-decode.js';
import { FusedDecode } from './fused-decode.js';
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
  /** sees each layer's routing decisions only (the fused decode step reports to it too) */
  readonly onRouting?: RoutingListener;
  /** where a fused decode step's time went, added up here (`bench generate --profile`) */
  readonly fusedTimes?: FusedDecodeTimes;
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
  ) {
    this.fusedQkv = weights.layers.map((l) => (l.attn.qBias || l.attn.kBias || l.attn.vBias ? undefined : adjacentRows([l.attn.q, l.attn.k, l.attn.v])));
  }

  /**
   * Per layer, q, k and v as one [q + k + v rows, hidden] weight where they lie one after another in
   * memory (as copyToHugePages lays them out), so each layer makes one product instead of three: one
   * pool job, and longer streams for the small k and v. Each element is computed as in its own matmul.
   */
  readonly fusedQkv: readonly (Weight | undefined)[];

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
    // one sequence's decode token, unobserved: two native calls per layer where the model allows
    const fused = decode && T === 1 && !opts.observer ? this.fusedDecode() : undefined;
    if (fused) fused.run(x, seqs[0]!.cache, opts.onRouting, opts.fusedTimes);
    else for (let l = 0; l < cfg.numLayers; l++) {
      const lw = weights.layers[l]!;
      backend.rmsNorm(h, x, lw.inputNorm, T, cfg.rmsEps);
      this.attention(l, lw, y, h, T, seqs);
      addInPlace(x, y, T * H);
      backend.rmsNorm(h, x, lw.postAttnNorm, T, cfg.rmsEps);
      if (lw.moe) {
        const ctx = { backend, scratch, router: this.router, policy: this.policy, experts: this.experts, observer: opts.observer, onRouting: opts.onRouting, decode };
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
    let q = scratch.get('attn.q', T * qDim); // [T, heads, D]
    let k = scratch.get('attn.k', T * kvDim); // [T, kvHeads, D]
    let v = scratch.get('attn.v', T * kvDim); // [T, kvHeads, D]
    // the fused product for few rows, where streaming the weights is the cost; past that (prefill) the
    // three products write q, k and v in place, where copying the rows apart cost more than it saved
    const qkv = T <= FUSED_QKV_MAX_ROWS ? this.fusedQkv[l] : undefined;
    let qk: Float32Array | undefined; // one row's q and k, one after another (RoPE rotates both in one call)
    if (qkv) {
      // one product for q, k and v; a single row splits by views, several rows are copied apart
      const W = qDim + 2 * kvDim;
      const all = scratch.get('attn.qkv', T * W); // [T, q | k | v]
      backend.matmul(all, h, qkv, T);
      if (T === 1) {
        ({ q, qk, k, v } = this.rowViews(all, qDim, kvDim));
      } else {
        for (let t = 0; t < T; t++) {
          q.set(all.subarray(t * W, t * W + qDim), t * qDim);
          k.set(all.subarray(t * W + qDim, t * W + qDim + kvDim), t * kvDim);
          v.set(all.subarray(t * W + qDim + kvDim, (t + 1) * W), t * kvDim);
        }
      }
    } else {
      backend.matmul(q, h, a.q, T, a.qBias);
      backend.matmul(k, h, a.k, T, a.kBias);
      backend.matmul(v, h, a.v, T, a.vBias);
    }
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
    if (qk) {
      // q and k of one row lie one after another in the fused product: one call rotates both, and the
      // position's angles are computed once
      backend.rope(qk, rows, cfg.numHeads + cfg.numKvHeads, D, cfg.ropeTheta);
    } else {
      backend.rope(q, rows, cfg.numHeads, D, cfg.ropeTheta);
      backend.rope(k, rows, cfg.numKvHeads, D, cfg.ropeTheta);
    }
    let r = 0;
    for (const { tokens: n, pos0, kCache, vCache } of rows) {
      kCache.set(rowRange(k, r * kvDim, (r + n) * kvDim), pos0 * kvDim);
      vCache.set(rowRange(v, r * kvDim, (r + n) * kvDim), pos0 * kvDim);
      r += n;
    }
    backend.attention(ctx, q, rows, cfg.numHeads, cfg.numKvHeads, D, cfg.slidingWindow);
    backend.matmul(out, ctx, a.o, T, a.oBias);
  }

  /**
   * q, q+k, k and v of one row of the fused q/k/v product, as views of it. A decode step asks for the
   * same four views of the same scratch buffer in every layer; making a typed-array view costs more
   * than the copy it saves, so they are made again only when the buffer changes.
   */
  private rowViews(all: Float32Array, qDim: number, kvDim: number): QkvViews {
    let views = this.qkvViews;
    if (views?.all !== all) {
      views = { all, q: all.subarray(0, qDim), qk: all.subarray(0, qDim + kvDim), k: all.subarray(qDim, qDim + kvDim), v: all.subarray(qDim + kvDim, qDim + 2 * kvDim) };
      this.qkvViews = views;
    }
    return views;
  }

  private qkvViews: QkvViews | undefined;

  /** Weight bytes of the fused step's attention halves per token (0 when the model decodes op by op). */
  get fusedAttentionBytes(): number {
    return this.fusedDecode()?.attentionBytes ?? 0;
  }

  /** How a single sequence's unobserved decode token runs: 'fused' (src/model/fused-decode.ts) or 'per-op'. */
  get decodePath(): 'fused' | 'per-op' {
    return this.fusedDecode() ? 'fused' : 'per-op';
  }

  /** The fused decode step, decided at the first decode step: undefined where the model cannot use it. */
  private fusedDecode(): FusedDecode | undefined {
    if (this.fused === null) {
      this.fused = undefined; // decided once: a plan that fails to build is not retried every step
      this.fused = FusedDecode.create(this.cfg, this.weights, this.backend, this.router, this.policy, this.experts, this.fusedQkv);
    }
    return this.fused;
  }

  private fused: FusedDecode | undefined | null = null;

  /** Bytes of reusable activation buffers currently held. */
  get activationBytes(): number {
    return this.scratch.bytes;
  }
}

/** Rows up to which a step's q, k and v are one product (a batched decode step of this many sequences). */
const FUSED_QKV_MAX_ROWS = 16;

/** Views of one row of the fused q/k/v product (see Transformer.rowViews). */
interface QkvViews {
  readonly all: Float32Array;
  readonly q: Float32Array;
  readonly qk: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
}

function addInPlace(x: Float32Array, y: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) x[i]! += y[i]!;
}

function clamp(m: Float32Array, c: number): void {
  for (let i = 0; i < m.length; i++) m[i] = Math.min(c, Math.max(-c, m[i]!));
}

/** The weights as one [Σ rows, K] weight when they are consecutive rows of one buffer in one plain dtype; else undefined. */
function adjacentRows(ws: readonly Weight[]): Weight | undefined {
  const first = ws[0]!;
  if (isQuantType(first.dtype)) return undefined;
  const K = first.shape[1]!;
  let rows = 0;
  let end = first.data.byteOffset;
  for (const w of ws) {
    if (w.dtype !== first.dtype || w.shape.length !== 2 || w.shape[1] !== K || w.data.buffer !== first.data.buffer || w.data.byteOffset !== end) return undefined;
    end += w.data.byteLength;
    rows += w.shape[0]!;
  }
  const Ctor = first.data.constructor as Float32ArrayConstructor | Uint16ArrayConstructor;
  const data = new Ctor(first.data.buffer as ArrayBuffer, first.data.byteOffset, rows * K);
  return { name: ws.map((w) => w.name).join('+'), dtype: first.dtype, shape: [rows, K], data };
}
