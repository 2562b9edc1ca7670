/**
 * Seeded pseudo-random numbers, shared by the run time (sampling, derived router spaces, benchmark
 * prompts) and the generators (synthetic checkpoints and traces), so neither depends on the other.
 * For synthetic checkpoints every tensor draws from its own stream,
 * keyed by (seed, stream name), so a tensor's values do not depend on which other tensors exist or
 * in which order they are written: sharding, dtype and skew never shift the values of unrelated
 * tensors, and tests can compare tensors across outputs one by one.
 *
 * The generator is xoshiro128** (32-bit integer arithmetic only, so it is fast in V8 and identical on
 * every machine); normals come from the Marsaglia polar method (Math.log and Math.sqrt only).
 */
export class Xoshiro128 {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** xoshiro128** (Blackman & Vigna, 2018) from four 32-bit state words; all zero is replaced by a 1. */
  constructor(s0: number, s1: number, s2: number, s3: number) {
    this.s0 = s0 | 0;
    this.s1 = s1 | 0;
    this.s2 = s2 | 0;
    this.s3 = s3 | 0;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the all-zero state is a fixed point
  }

  /** Next 32-bit unsigned integer. */
  nextU32(): number {
    const r = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9);
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return r >>> 0;
  }
}

export class Rng extends Xoshiro128 {
  private spare = 0;
  private hasSpare = false;

  constructor(seed: number, stream: string) {
    const key = `${seed}\u0000${stream}`;
    // four differently-based FNV-1a hashes of the key, each scrambled by splitmix32, fill the state
    const s = [0, 0, 0, 0].map((_, k) => splitmix32(fnv1a(key, (0x811c9dc5 ^ Math.imul(k + 1, 0x9e3779b9)) >>> 0)));
    super(s[0]!, s[1]!, s[2]!, s[3]!);
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal sample. */
  normal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    let u: number;
    let v: number;
    let s: number;
    do {
      u = this.nextU32() / 2147483648 - 1;
      v = this.nextU32() / 2147483648 - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const m = Math.sqrt((-2 * Math.log(s)) / s);
    this.spare = v * m;
    this.hasSpare = true;
    return u * m;
  }

  /** dst[i] = mean + std * N(0, 1), in order. */
  fillNormal(dst: Float32Array | Float64Array, std: number, mean = 0): void {
    for (let i = 0; i < dst.length; i++) dst[i] = mean + std * this.normal();
  }

  /** A uniformly random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [p[i], p[j]] = [p[j]!, p[i]!];
    }
    return p;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function fnv1a(text: string, basis: number): number {
  let h = basis;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function splitmix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}
