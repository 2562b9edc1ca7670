/**
 * The scale searches of ggml's reference quantizers (ggml-quants.c: make_qx_quants, make_qkx2_quants),
 * re-derived: instead of the naive scale max|x| / qmax (or (max - min) / qmax), try a small grid of
 * scales around it and keep the one whose least-squares refit gives the smallest weighted error of the
 * block. This is what makes llama.cpp's K-quants accurate at 4-6 bits.
 */

/** ggml's nearest_int: f32 round-half-to-even. */
export function nearestInt(x: number): number {
  return Math.fround(Math.fround(x) + 12582912) - 12582912;
}

/**
 * Symmetric codes L[i] in [0, 2·nmax) (value l - nmax) and the scale s minimising Σ w(x - s·(L - nmax))²
 * with w = x² (rmse_type 1), over iscales -(nmax + 0.1·is)/max for is = -9..9. Returns s (0 for a zero
 * block).
 */
export function symmetricScale(x: Float32Array, at: number, n: number, nmax: number, L: Uint8Array): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[at + i]!);
    if (ax > amax) {
      amax = ax;
      max = x[at + i]!;
    }
  }
  if (amax < 1e-15) {
    L.fill(0, 0, n);
    return 0;
  }
  let iscale = -nmax / max;
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[at + i]!;
    const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * v)));
    L[i] = l + nmax;
    sumlx += v * v * v * l;
    suml2 += v * v * l * l;
  }
  let scale = suml2 ? sumlx / suml2 : 0;
  let best = scale * sumlx;
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = -(nmax + 0.1 * is) / max;
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[at + i]!;
      const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * v)));
      sumlx += v * v * v * l;
      suml2 += v * v * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (let i = 0; i < n; i++) L[i] = Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * x[at + i]!))) + nmax;
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

/** Trial codes of asymmetricScale (rewritten on every call; holds nothing between calls). */
const AUX = new Uint8Array(32);

/**
 * Asymmetric codes L[i] in [0, nmax] and (scale, min) with x ≈ scale·L - min, minimising Σ w(x - ...)²
 * for w[i] = av + |x[i]|: a weighted least-squares fit of scale and min for each trial iscale
 * (rmin + rdelta·is + nmax) / (max - min), is = 0..nstep. Returns [scale, min] (min >= 0).
 */
export function asymmetricScale(
  x: Float32Array,
  at: number,
  n: number,
  nmax: number,
  L: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
): [number, number] {
  let sumX2 = 0;
  for (let i = 0; i < n; i++) sumX2 += x[at + i]! ** 2;
  const av = Math.sqrt(sumX2 / n);
  let min = x[at]!;
  let max = x[at]!;
  let sumW = 0;
  let sumX = 0;
  for (let i = 0; i < n; i++) {
    const v = x[at + i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    const w = av + Math.abs(v);
    sumW += w;
    sumX += w * v;
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, 0, n);
    return [0, -min];
  }
  let iscale = nmax / (max - min);
  let scale = 1 / iscale;
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const v = x[at + i]!;
    L[i] = Math.max(0, Math.min(nmax, nearestInt(iscale * (v - min))));
    bestError += (av + Math.abs(v)) * (scale * L[i]! + min - v) ** 2;
  }
  const aux = AUX.length >= n ? AUX : new Uint8Array(n);
  for (let is = 0; is <= nstep; is++) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const v = x[at + i]!;
      const l = Math.max(0, Math.min(nmax, nearestInt(iscale * (v - min))));
      aux[i] = l;
      const w = av + Math.abs(v);
      sumL += w * l;
      sumL2 += w * l * l;
      sumXL += w * l * v;
    }
    const D = sumW * sumL2 - sumL * sumL;
    if (D <= 0) continue;
    let thisScale = (sumW * sumXL - sumX * sumL) / D;
    let thisMin = (sumL2 * sumX - sumL * sumXL) / D;
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = sumXL / sumL2;
    }
    let err = 0;
    for (let i = 0; i < n; i++) {
      const v = x[at + i]!;
      err += (av + Math.abs(v)) * (thisScale * aux[i]! + thisMin - v) ** 2;
    }
    if (err < bestError) {
      L.set(aux.subarray(0, n));
      bestError = err;
      scale = thisScale;
      min = thisMin;
    }
  }
  return [scale, -min];
}
