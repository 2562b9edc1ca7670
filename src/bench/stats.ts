/**
 * Reducing repeated runs to one figure each: the median, since a shared 2-core machine produces
 * outliers in both directions and the median ignores a single bad repetition.
 */

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Per-key median over records that share the same numeric keys. */
export function medianRecord<K extends string>(records: readonly Readonly<Record<K, number>>[]): Record<K, number> {
  const out = {} as Record<K, number>;
  if (records.length === 0) return out;
  for (const key of Object.keys(records[0]!) as K[]) out[key] = median(records.map((r) => r[key]));
  return out;
}

/** a / b per key present in both; NaN where b is 0 or missing, so a ratio is never silently infinite. */
export function ratioRecord<K extends string>(a: Readonly<Record<K, number>>, b: Readonly<Partial<Record<K, number>>>): Partial<Record<K, number>> {
  const out: Partial<Record<K, number>> = {};
  for (const key of Object.keys(a) as K[]) {
    const d = b[key];
    if (d === undefined) continue;
    out[key] = d === 0 || !Number.isFinite(d) ? NaN : a[key] / d;
  }
  return out;
}
