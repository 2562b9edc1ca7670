import { fail, showValue } from '../errors.js';

/**
 * Typed, validated reads of config.json fields. A field may have several names (transformers'
 * `attribute_map` aliases, e.g. `num_experts` / `num_local_experts`): the first present one is read,
 * and two present names that disagree are an error. Absent or null fields take the given default,
 * which callers take from the family's transformers config class (ArchSpec.defaults).
 */
export class ConfigFields {
  constructor(
    readonly raw: Readonly<Record<string, unknown>>,
    /** where the config came from, for error messages */
    readonly source: string,
  ) {}

  /** The value under the first present name (undefined when none is present or all are null). */
  get(names: string | readonly string[]): unknown {
    const list = typeof names === 'string' ? [names] : names;
    let found: string | undefined;
    for (const name of list) {
      const v = this.raw[name];
      if (v === undefined || v === null) continue;
      if (found === undefined) found = name;
      else if (JSON.stringify(v) !== JSON.stringify(this.raw[found])) {
        fail('E_BAD_CONFIG', `${this.source}: '${found}' (${JSON.stringify(this.raw[found])}) and its alias '${name}' (${JSON.stringify(v)}) disagree`);
      }
    }
    return found === undefined ? undefined : this.raw[found];
  }

  int(names: string | readonly string[], fallback?: number, min = 1): number {
    const v = this.get(names) ?? fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      fail('E_BAD_CONFIG', `${this.source}: field '${first(names)}' must be an integer >= ${min}, got ${show(v)}`);
    }
    return v;
  }

  /** A finite number > 0. */
  positive(names: string | readonly string[], fallback: number): number {
    const v = this.get(names) ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      fail('E_BAD_CONFIG', `${this.source}: field '${first(names)}' must be a positive number, got ${show(v)}`);
    }
    return v;
  }

  bool(names: string | readonly string[], fallback: boolean): boolean {
    const v = this.get(names) ?? fallback;
    if (typeof v !== 'boolean') fail('E_BAD_CONFIG', `${this.source}: field '${first(names)}' must be true or false, got ${show(v)}`);
    return v;
  }

  /** A JSON object (or undefined when absent / null). */
  object(name: string): Record<string, unknown> | undefined {
    const v = this.get(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) fail('E_BAD_CONFIG', `${this.source}: field '${name}' must be an object, got ${show(v)}`);
    return v as Record<string, unknown>;
  }
}

function first(names: string | readonly string[]): string {
  return typeof names === 'string' ? names : names[0]!;
}

/** JSON.stringify, except that it says undefined for an absent field instead of printing nothing. */
function show(v: unknown): string {
  return v === undefined ? 'nothing (field absent)' : showValue(v);
}
