import { fail } from '../errors.js';

/**
 * JSON as Python's `json.dumps(obj, indent=2)` writes it, which is what transformers writes and
 * reads back. JSON has one number type, but Python keeps two: transformers 5's strict config classes
 * refuse `0` where the class declares a float ("expected float, got int"). So the numbers under
 * `floatKeys` are written in Python's float form (`0.0`, `10000.0`, `1e-05`); all other numbers as
 * integers or as JavaScript writes them.
 */
export function pythonJson(value: unknown, floatKeys: ReadonlySet<string> = new Set()): string {
  return write(value, floatKeys, '', false);
}

function write(v: unknown, floats: ReadonlySet<string>, indent: string, asFloat: boolean): string {
  if (typeof v === 'number') return asFloat ? pythonFloat(v) : JSON.stringify(v);
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  const inner = `${indent}  `;
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[\n${v.map((x) => inner + write(x, floats, inner, false)).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
  if (entries.length === 0) return '{}';
  return `{\n${entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${write(x, floats, inner, floats.has(k))}`).join(',\n')}\n${indent}}`;
}

/**
 * Python's `repr(float)`: the shortest digits that read back to the same double (as JavaScript
 * chooses them), in positional form for decimal exponents -4..15 with at least one decimal
 * (`10000.0`, `0.02`), else as `d.ddde-05` / `1e+16` (two-digit exponent at least).
 */
export function pythonFloat(x: number): string {
  if (!Number.isFinite(x)) fail('E_BAD_OPTION', `cannot write ${x} as a JSON number`);
  if (Object.is(x, -0)) return '-0.0';
  const [mantissa, exp] = x.toExponential().split('e') as [string, string];
  const e = Number(exp);
  if (e >= -4 && e < 16) {
    const fixed = String(x); // JavaScript writes positional form in this range too
    return fixed.includes('.') ? fixed : `${fixed}.0`;
  }
  return `${mantissa}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
}
