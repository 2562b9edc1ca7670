import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CacheSlots } from '../../src/memory/cache-slots.js';
import { CACHE_POLICIES, ONLINE_CACHE_POLICIES, createCachePolicy, type CachePolicyName } from '../../src/memory/cache-policies.js';
import { MoesaicError } from '../../src/errors.js';

/** A small deterministic generator, so the random cases are the same on every run. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
}

const isCode = (code: string) => (e: unknown) => e instanceof MoesaicError && e.code === code;

/**
 * The on-line rules by their text, scanning the resident experts: the victim is the unpinned resident
 * expert with the largest key (compared left to right).
 */
class ReferenceRule {
  loadedAt = new Map<number, number>();
  lastReq = new Map<number, number>();
  count = new Map<number, number>();
  active = new Set<number>();
  clock = 0;
  constructor(readonly policy: CachePolicyName) {}
  request(e: number, miss: boolean): void {
    if (miss) this.loadedAt.set(e, this.clock);
    this.lastReq.set(e, this.clock);
    this.count.set(e, (this.count.get(e) ?? 0) + 1);
    this.clock++;
  }
  key(m: number): number[] {
    switch (this.policy) {
      case 'fifo': return [-this.loadedAt.get(m)!];
      case 'lru': return [-this.lastReq.get(m)!];
      case 'lfu': return [-this.count.get(m)!, -this.lastReq.get(m)!];
      case 'lifo': return [this.active.has(m) ? 0 : 1, this.loadedAt.get(m)!];
      default: throw new Error(`no on-line rule ${this.policy}`);
    }
  }
  victim(resident: number[], pinned: (e: number) => boolean): number {
    let best = -1;
    let bestKey: number[] = [];
    for (const m of resident) {
      if (pinned(m)) continue;
      const k = this.key(m);
      const i = k.findIndex((v, j) => v !== bestKey[j]);
      if (best < 0 || (i >= 0 && k[i] > bestKey[i])) [best, bestKey] = [m, k];
    }
    return best;
  }
}

test('with pinned experts, every on-line rule evicts what a scan of its text evicts among the unpinned', () => {
  const rand = lcg(5);
  for (const policy of ONLINE_CACHE_POLICIES) {
    for (let trial = 0; trial < 25; trial++) {
      const E = 4 + Math.floor(rand() * 10);
      const slots = 2 + Math.floor(rand() * (E - 2));
      const cache = new CacheSlots(E, slots, createCachePolicy(policy, E, { online: true }));
      const ref = new ReferenceRule(policy);
      for (let step = 0; step < 30; step++) {
        const set = [...new Set(Array.from({ length: 1 + Math.floor(rand() * E) }, () => Math.floor(rand() * E)))].sort((a, b) => a - b);
        cache.beginStep(set);
        ref.active = new Set(set);
        for (const e of set) {
          const resident = Array.from(cache.holder).filter((m) => m >= 0);
          // pin a random part of the residents, never all of them
          for (const m of resident) if (rand() < 0.3) cache.pin(m);
          if (resident.every((m) => cache.pins[m] > 0)) cache.unpin(resident[0]);
          const full = resident.length === slots;
          const expected = !cache.resident(e) && full ? ref.victim(resident, (m) => cache.pins[m] > 0) : -1;
          const hit = cache.access(e);
          assert.equal(cache.evicted, expected, `${policy}, E=${E}, slots=${slots}, step ${step}, expert ${e}`);
          ref.request(e, !hit);
          for (const m of resident) while (cache.pins[m] > 0) cache.unpin(m);
        }
      }
    }
  }
});

test('a cache smaller than the active set streams experts through; the victim\'s slot is reused', () => {
  for (const policy of ONLINE_CACHE_POLICIES) {
    const cache = new CacheSlots(8, 2, createCachePolicy(policy, 8));
    for (let step = 0; step < 3; step++) {
      const active = [0, 2, 3, 5, 7];
      cache.beginStep(active);
      for (const e of active) {
        // the engine pins an expert while its product runs; the previous one is released already
        cache.pin(e);
        const before = Array.from(cache.holder);
        const hit = cache.access(e);
        assert.ok(cache.resident(e) && cache.holder[cache.slotOf[e]] === e, `${policy}: ${e} resident in its slot`);
        if (!hit && cache.evicted >= 0) {
          assert.equal(before[cache.slotOf[e]], cache.evicted, `${policy}: loaded into the victim's slot`);
          assert.ok(!cache.resident(cache.evicted));
        }
        cache.unpin(e);
      }
      assert.equal(Array.from(cache.holder).filter((m) => m >= 0).length, 2);
    }
  }
});

test('every slot pinned, or an unbalanced unpin, is a clear error', () => {
  const cache = new CacheSlots(4, 2, createCachePolicy('lru', 4));
  cache.beginStep([0, 1, 2]);
  for (const e of [0, 1]) {
    cache.access(e);
    cache.pin(e);
  }
  assert.throws(() => cache.access(2), (e: unknown) => isCode('E_BAD_OPTION')(e) && /all 2 slots hold experts in use/.test((e as Error).message));
  cache.unpin(0);
  assert.equal(cache.access(2), false);
  assert.equal(cache.evicted, 0);
  assert.throws(() => cache.unpin(3), /unpinned more often than pinned/);
  assert.throws(() => new CacheSlots(4, 0, createCachePolicy('lru', 4)), isCode('E_BAD_OPTION'));
});

test('registry: every rule by name; Belady is simulator-only; unknown names are refused', () => {
  for (const p of CACHE_POLICIES) assert.equal(createCachePolicy(p, 3).name, p);
  assert.deepEqual(ONLINE_CACHE_POLICIES, ['lifo', 'lru', 'lfu', 'fifo']);
  assert.throws(() => createCachePolicy('belady', 3, { online: true }), (e: unknown) => isCode('E_BAD_OPTION')(e) && /needs the future/.test((e as Error).message));
  assert.throws(() => createCachePolicy('mru', 3), (e: unknown) => isCode('E_BAD_OPTION')(e) && /unknown cache policy 'mru'/.test((e as Error).message));
});
