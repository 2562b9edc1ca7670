import { fail } from '../errors.js';
import type { SwiGluWeights } from '../moe/swiglu.js';
import type { NativeExpertArena } from '../tensor/native.js';
import { nativeAddon, SLOT_FAILED, SLOT_LOADING, SLOT_READY } from '../tensor/native.js';
import type { ExpertReadPlan } from './slot-layout.js';
import type { ExpertTier, ReadTotals } from './expert-tier.js';
import { IO_ALIGN, slotWeights } from './slot-layout.js';

/**
 * The slow tier -> fast tier mover: one preallocated arena of equal slots, filled with pread on native
 * I/O threads (O_DIRECT where the file system allows, else buffered reads dropped from the page cache
 * with posix_fadvise(DONTNEED)), so neither the page cache nor the heap grows with the experts read.
 * A slot is loaded (asynchronously), then waited on or polled; its weights are views into the arena,
 * valid until the slot is loaded again. A failed or short read is an E_IO naming the expert and the
 * file; the slot's bytes are never handed out.
 */
export class ExpertStore implements ExpertTier {
  readonly slotBytes: number;
  private readonly arena: NativeExpertArena;
  private readonly files = new Map<string, number>(); // path -> native file index
  private readonly loaded: (SwiGluWeights | undefined)[]; // [slots] weights of the slot's last load
  private readonly what: string[]; // [slots] what the slot holds, for error messages
  private readonly anyScratch: Int32Array; // [slots] waitAny's argument, reused
  /** true when every file is read with O_DIRECT */
  direct = true;

  constructor(
    readonly slots: number,
    slotBytes: number,
    ioThreads = 2,
  ) {
    if (!Number.isInteger(slots) || slots < 1) fail('E_BAD_OPTION', `expert store: slots must be a positive integer, got ${slots}`);
    this.slotBytes = Math.max(IO_ALIGN, Math.ceil(slotBytes / IO_ALIGN) * IO_ALIGN);
    try {
      this.arena = new (nativeAddon().ExpertArena)(this.slotBytes, slots, ioThreads);
    } catch (e) {
      fail('E_IO', `cannot allocate ${slots} expert slots of ${this.slotBytes} bytes: ${(e as Error).message}`);
    }
    this.loaded = new Array<SwiGluWeights | undefined>(slots);
    this.what = new Array<string>(slots).fill('');
    this.anyScratch = new Int32Array(slots);
  }

  /** Bytes the arena holds (resident from creation). */
  get arenaBytes(): number {
    return this.slots * this.slotBytes;
  }

  /** Start reading an expert into `slot` (which must not be loading). `what` names it in errors;
   *  a `background` read (a prefetch) yields to every read queued without that flag. */
  load(slot: number, plan: ExpertReadPlan, what: string, background = false): void {
    if (plan.slotBytes > this.slotBytes) fail('E_BAD_OPTION', `${what} needs ${plan.slotBytes} slot bytes, slots hold ${this.slotBytes}`);
    const spans = plan.spans.slice();
    for (let i = 0; i < spans.length; i += 5) spans[i] = this.open(plan.paths[spans[i]!]!);
    this.loaded[slot] = undefined;
    this.what[slot] = what;
    this.arena.load(slot, spans, background);
    this.loaded[slot] = slotWeights(plan, this.arena.buffer, slot * this.slotBytes);
  }

  /** The slot's read, if it is a queued prefetch, is now needed: it goes before later prefetches. */
  promote(slot: number): void {
    this.arena.promote(slot);
  }

  /** True once the slot's read finished (successfully or not: `weights` reports a failure). */
  settled(slot: number): boolean {
    return this.arena.status(slot) !== SLOT_LOADING;
  }

  /** Block until the slot's read (if any) finished, without judging it. */
  settle(slot: number): void {
    this.arena.wait(slot);
  }

  /** The slot's weights, waiting for its read if needed; an E_IO if the read failed or was short. */
  weights(slot: number): SwiGluWeights {
    const status = this.arena.wait(slot);
    const w = this.loaded[slot];
    if (status === SLOT_FAILED) fail('E_IO', `cannot read ${this.what[slot]}: ${this.arena.error(slot)}`);
    if (status !== SLOT_READY || !w) fail('E_IO', `expert slot ${slot} holds no loaded expert`);
    return w;
  }

  /** Block until one of `slots` (non-empty) is settled; returns that slot. */
  waitAny(slots: readonly number[]): number {
    for (const s of slots) if (this.settled(s)) return s;
    const list = this.anyScratch.subarray(0, slots.length);
    for (let i = 0; i < slots.length; i++) list[i] = slots[i]!;
    return slots[this.arena.waitAny(list)]!;
  }

  totals(): ReadTotals {
    const [bytes, seconds] = this.arena.stats();
    return { bytes: bytes!, seconds: seconds! };
  }

  /** Stops the I/O threads (queued reads fail) and closes the files. */
  close(): void {
    this.arena.close();
  }

  get readMode(): string {
    return this.direct ? 'O_DIRECT reads' : 'buffered reads (posix_fadvise DONTNEED)';
  }

  /** Opens a file for reading (once; load() opens what it needs too): the native file index. */
  open(path: string): number {
    let f = this.files.get(path);
    if (f === undefined) {
      let opened: { file: number; direct: boolean };
      try {
        opened = this.arena.open(path);
      } catch (e) {
        fail('E_IO', (e as Error).message);
      }
      f = opened.file;
      this.direct &&= opened.direct;
      this.files.set(path, f);
    }
    return f;
  }
}
