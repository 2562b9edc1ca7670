import { fail } from '../errors.js';

/** `--expert-cache`: bytes, or a share of the model's expert bytes. */
export type CacheBudget = { readonly bytes: number } | { readonly share: number };

const UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30 };

/** '512MB', '1.5GiB', '1000000', '25%' -> a budget; anything else is an E_BAD_OPTION naming the flag. */
export function parseCacheBudget(raw: string): CacheBudget {
  const s = raw.trim().toLowerCase();
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(s);
  if (pct) {
    const share = Number(pct[1]) / 100;
    if (!(share > 0 && share <= 1)) fail('E_BAD_OPTION', `--expert-cache must be a share in (0%, 100%], got '${raw}'`);
    return { share };
  }
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(s);
  const unit = m ? UNITS[m[2]!] : undefined;
  if (!m || unit === undefined || !(Number(m[1]) > 0)) {
    fail('E_BAD_OPTION', `--expert-cache must be a size such as 512MB, 2GiB or 25% (of the model's expert bytes), got '${raw}'`);
  }
  return { bytes: Math.floor(Number(m[1]) * unit) };
}

/** What a budget becomes: slots per MoE layer, and the numbers to print once. */
export interface CacheSizing {
  readonly slotsPerLayer: number;
  readonly moeLayers: number;
  readonly expertBytes: number;
  /** bytes of every expert of every MoE layer */
  readonly modelExpertBytes: number;
  /** bytes the slots hold: slotsPerLayer * moeLayers * expertBytes */
  readonly cacheBytes: number;
}

/**
 * Slots per MoE layer for a budget (the paper's form, slots, passes straight through): the budget is
 * spread evenly over the MoE layers, rounded down to whole experts, capped at the layer's experts. A
 * budget below one expert per layer is refused: the cache needs a slot per layer to run at all.
 */
export function sizeCache(budget: CacheBudget | { readonly slots: number }, moeLayers: number, experts: number, expertBytes: number): CacheSizing {
  const modelExpertBytes = moeLayers * experts * expertBytes;
  let slots: number;
  if ('slots' in budget) {
    slots = budget.slots;
  } else {
    const bytes = 'bytes' in budget ? budget.bytes : budget.share * modelExpertBytes;
    slots = Math.floor(bytes / (moeLayers * expertBytes));
    if (slots < 1) {
      fail('E_BAD_OPTION', `--expert-cache ${fmtBytes(bytes)} is less than one expert per MoE layer (${moeLayers} layers x ${fmtBytes(expertBytes)} = ${fmtBytes(moeLayers * expertBytes)})`);
    }
  }
  if (!Number.isInteger(slots) || slots < 1) fail('E_BAD_OPTION', `--expert-cache-slots must be a positive integer, got ${slots}`);
  slots = Math.min(slots, experts);
  return { slotsPerLayer: slots, moeLayers, expertBytes, modelExpertBytes, cacheBytes: slots * moeLayers * expertBytes };
}

export function fmtBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}
