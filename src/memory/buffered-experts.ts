import { fail } from '../errors.js';
import type { ExpertProvider } from '../moe/expert-provider.js';
import type { MoeWeights } from '../moe/moe-layer.js';
import type { SwiGluWeights } from '../moe/swiglu.js';
import { createCachePolicy } from './cache-policies.js';
import { CacheSlots } from './cache-slots.js';
import type { ExpertCacheStats } from './expert-stats.js';
import { ExpertCounters } from './expert-stats.js';
import { ExpertStore } from './expert-store.js';
import type { ExpertTier } from './expert-tier.js';
import { LayerCache } from './layer-cache.js';
import type { MappedFiles } from './mapped-files.js';
import type { Prefetcher, PrefetchContext } from './prefetch.js';
import { createPrefetcher } from './prefetchers.js';
import type { ExpertReadPlan } from './slot-layout.js';
import { expertReadPlan } from './slot-layout.js';

export interface BufferedExpertsOptions {
  /** slots per MoE layer (at least 1; more than the layer's experts is capped) */
  readonly slots: number;
  /** eviction rule (an on-line one: lifo, lru, lfu, fifo) */
  readonly policy: string;
  /** 'none' | 'pregate' | 'history' */
  readonly prefetch: string;
  /** native I/O threads of the default tier (default 2) */
  readonly ioThreads?: number;
  /** the fast tier (default: an ExpertStore in RAM, read from the checkpoint on disk) */
  readonly tier?: (slots: number, slotBytes: number) => ExpertTier;
}

/**
 * Expert buffering at run time (Huang et al., "Towards MoE Deployment", arXiv 2303.06182 §5): expert
 * weights stay in the slow tier (the checkpoint on disk) and a bounded number of slots per MoE layer
 * holds the experts in use, managed by the same eviction code `simulate cache` replays.
 *
 * Per layer and step: gating gives the active set -> `beginLayer` claims every active expert in
 * ascending id and starts every missing read at once -> `next` runs resident experts first, then each
 * read as it lands -> `acquire`/`release` pin an expert while its product runs -> `endLayer` lets a
 * prefetcher start reads for the next MoE layer, into free slots or by the rule's evictions (the next
 * layer has nothing in use then, so nothing pinned is ever evicted).
 */
export class BufferedExperts implements ExpertProvider {
  readonly store: ExpertTier;
  private readonly caches: (LayerCache | undefined)[]; // [layers]
  private readonly plans: (readonly ExpertReadPlan[] | undefined)[]; // [layers][experts]
  private readonly nextMoe: Int32Array; // [layers] next MoE layer, -1: none
  private readonly firstMoe: number;
  private readonly prefetcher: Prefetcher | null;
  private readonly counters = new ExpertCounters();
  private readonly active: (number[] | undefined)[]; // [layers] this step's active experts
  private readonly predicted: (Uint8Array | undefined)[]; // [layers] 1: predicted for this step
  private readonly hasPrediction: Uint8Array; // [layers]
  private readonly waitList: number[] = [];
  private readonly guess: number[] = [];
  /** slots per MoE layer, as used */
  readonly slotsPerLayer: number;
  readonly expertBytes: number;

  constructor(
    layers: readonly (MoeWeights | undefined)[],
    files: MappedFiles,
    prefetch: Omit<PrefetchContext, 'layers'>,
    readonly options: BufferedExpertsOptions,
  ) {
    const moe = layers.flatMap((w, l) => (w ? [l] : []));
    if (moe.length === 0) fail('E_BAD_OPTION', '--expert-cache: the model has no MoE layers');
    const maxExperts = Math.max(...moe.map((l) => layers[l]!.experts.length));
    if (!Number.isInteger(options.slots) || options.slots < 1) fail('E_BAD_OPTION', `--expert-cache-slots must be a positive integer, got ${options.slots}`);
    this.slotsPerLayer = Math.min(options.slots, maxExperts);
    createCachePolicy(options.policy, 1, { online: true }); // an unknown or off-line rule fails before any allocation
    this.plans = layers.map((w, l) => w?.experts.map((x, e) => expertReadPlan(x, files, `expert ${e} of layer ${l}`)));
    const slotBytes = Math.max(...moe.flatMap((l) => this.plans[l]!.map((p) => p.slotBytes)));
    this.expertBytes = Math.max(...moe.flatMap((l) => this.plans[l]!.map((p) => p.tensorBytes)));
    const slots = moe.length * this.slotsPerLayer;
    this.store = options.tier ? options.tier(slots, slotBytes) : new ExpertStore(slots, slotBytes, options.ioThreads ?? 2);
    for (const l of moe) for (const p of this.plans[l]!) for (const path of p.paths) this.store.open(path);
    this.caches = layers.map((w, l) => {
      if (!w) return undefined;
      const E = w.experts.length;
      const slots = new CacheSlots(E, Math.min(this.slotsPerLayer, E), createCachePolicy(options.policy, E, { online: true }));
      return new LayerCache(slots, moe.indexOf(l) * this.slotsPerLayer);
    });
    this.nextMoe = new Int32Array(layers.length).fill(-1);
    for (let i = 0; i + 1 < moe.length; i++) this.nextMoe[moe[i]!] = moe[i + 1]!;
    this.firstMoe = moe[0]!;
    this.active = layers.map((w) => (w ? [] : undefined));
    this.predicted = layers.map((w) => (w ? new Uint8Array(w.experts.length) : undefined));
    this.hasPrediction = new Uint8Array(layers.length);
    this.prefetcher = createPrefetcher(options.prefetch, { ...prefetch, layers });
  }

  beginLayer(layer: number, active: readonly number[]): void {
    const c = this.cache(layer);
    const mine = this.active[layer]!;
    mine.length = 0;
    for (const e of active) mine.push(e);
    this.scorePrediction(layer, active);
    this.prefetcher?.observe?.(layer, active);
    c.slots.beginStep(active);
    for (const e of active) {
      const wasPrefetched = c.prefetched[e] === 1;
      const claim = c.claim(e);
      if (claim === 'hit') {
        this.counters.hits++;
        if (wasPrefetched) {
          this.counters.prefetchHits++;
          c.prefetched[e] = 0;
          if (!this.store.settled(c.base + c.slotFor[e]!)) this.store.promote(c.base + c.slotFor[e]!);
        }
      } else {
        this.counters.misses++;
        if (claim === 'load') this.read(layer, c, c.slotFor[e]!, e);
      }
    }
  }

  next(layer: number, pending: readonly number[]): number {
    const c = this.cache(layer);
    for (const e of pending) {
      if (c.hit[e] === 1 && this.store.settled(c.base + c.slotFor[e]!)) return e; // resident experts first
    }
    const waits = this.waitList;
    waits.length = 0;
    for (const e of pending) {
      const slot = c.slotFor[e]!;
      if (slot < 0 || c.owner[slot] !== e) continue; // chained behind an expert still to run
      if (this.store.settled(c.base + slot)) return e;
      waits.push(c.base + slot);
    }
    if (waits.length === 0) fail('E_BAD_OPTION', `expert cache: no runnable expert among ${pending.length} pending in layer ${layer} (chunked dispatch is not supported with --expert-cache)`);
    const t0 = performance.now();
    const slot = this.store.waitAny(waits);
    this.counters.stallMs += performance.now() - t0;
    return c.owner[slot - c.base]!;
  }

  acquire(layer: number, expert: number): SwiGluWeights {
    const c = this.cache(layer);
    const slot = c.slotFor[expert]!;
    if (slot < 0 || c.owner[slot] !== expert) {
      fail('E_BAD_OPTION', `expert cache: expert ${expert} of layer ${layer} acquired out of turn (chunked dispatch is not supported with --expert-cache)`);
    }
    if (this.store.settled(c.base + slot)) return this.store.weights(c.base + slot);
    const t0 = performance.now();
    const w = this.store.weights(c.base + slot);
    this.counters.stallMs += performance.now() - t0;
    return w;
  }

  release(layer: number, expert: number): void {
    const c = this.cache(layer);
    const slot = c.slotFor[expert]!;
    const n = c.release(expert);
    if (n >= 0) this.read(layer, c, slot, n);
  }

  endLayer(layer: number, hidden: Float32Array, tokens: number): void {
    if (layer === this.firstMoe) this.counters.tokens += tokens;
    const next = this.nextMoe[layer]!;
    if (!this.prefetcher || next < 0) return;
    const guess = this.guess;
    guess.length = 0;
    this.prefetcher.predict(layer, next, hidden, tokens, this.active[layer]!, guess);
    const c = this.cache(next);
    const mark = this.predicted[next]!.fill(0);
    this.hasPrediction[next] = 1;
    for (const e of guess) mark[e] = 1;
    const room = Math.min(guess.length, c.slots.slots);
    for (let i = 0; i < room; i++) {
      const slot = c.prefetch(guess[i]!);
      if (slot < 0) continue;
      this.counters.prefetchLoads++;
      this.read(next, c, slot, guess[i]!, true);
    }
  }

  stats(): ExpertCacheStats {
    let resident = 0;
    for (const [l, c] of this.caches.entries()) {
      if (!c) continue;
      for (const e of c.slots.holder) if (e >= 0) resident += this.plans[l]![e]!.tensorBytes;
    }
    return this.counters.snapshot(this.store.totals(), resident, this.store.arenaBytes);
  }

  close(): void {
    this.store.close();
  }

  private cache(layer: number): LayerCache {
    const c = this.caches[layer];
    if (!c) fail('E_BAD_OPTION', `expert cache: layer ${layer} is not a MoE layer`);
    return c;
  }

  /** Starts reading expert e of `layer` into the layer's slot (after any read still landing there). */
  private read(layer: number, c: LayerCache, slot: number, e: number, background = false): void {
    const s = c.base + slot;
    if (!this.store.settled(s)) {
      // an earlier read (a prefetch the rule evicted before it landed) still writes this slot
      const t0 = performance.now();
      this.store.settle(s);
      this.counters.stallMs += performance.now() - t0;
    }
    this.store.load(s, this.plans[layer]![e]!, `expert ${e} of layer ${layer}`, background);
  }

  /** Precision and recall of the prediction made for this layer (if any) against its active set. */
  private scorePrediction(layer: number, active: readonly number[]): void {
    if (!this.hasPrediction[layer]) return;
    this.hasPrediction[layer] = 0;
    const mark = this.predicted[layer]!;
    let predicted = 0;
    for (const m of mark) predicted += m;
    let right = 0;
    for (const e of active) right += mark[e]!;
    this.counters.predicted += predicted;
    this.counters.predictedActive += right;
    this.counters.activeOfPredicted += active.length;
  }
}
