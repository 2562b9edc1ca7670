// Quantizers writing ggml's block layouts: the native twin of src/tensor/quant/quantize.ts (same
// algorithms, ggml's reference scale searches, in f32 as ggml computes them), for exports and
// `--quantize` at load, where the TypeScript version would take minutes per billion weights. Rows are
// independent, so they are split over the kernels' thread pool.
#include "quant-quantize.h"

#include <math.h>
#include <string.h>

#include <algorithm>

#include "dispatch.h"
#include "dtype.h"
#include "pool.h"
#include "quant.h"

namespace moesaic {
namespace {

// ggml's nearest_int: round half to even through the f32 mantissa.
inline int nearestInt(float f) {
  float v = f + 12582912.0f;
  int32_t i;
  memcpy(&i, &v, 4);
  return (i & 0x007fffff) - 0x00400000;
}

// f32 -> f16 bits, round to nearest even (as f32ToF16 in src/tensor/dtype.ts).
uint16_t toHalf(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  const uint32_t sign = (u >> 16) & 0x8000, exp = (u >> 23) & 0xff;
  uint32_t mant = u & 0x7fffff;
  if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
  const int e = (int)exp - 127 + 15;
  if (e >= 31) return (uint16_t)(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return (uint16_t)sign;
    mant |= 0x800000;
    const int shift = 14 - e;
    uint32_t half = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) half++;
    return (uint16_t)(sign | half);
  }
  uint32_t half = ((uint32_t)e << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
  return (uint16_t)(sign | half);
}

float fromHalf(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  float f;
  if (exp == 0) {
    f = (float)mant * (1.0f / 16777216.0f);
    return sign ? -f : f;
  }
  uint32_t bits = exp == 31 ? (sign | 0x7f800000u | (mant << 13)) : (sign | ((exp + 112) << 23) | (mant << 13));
  memcpy(&f, &bits, 4);
  return f;
}

inline void putHalf(uint8_t* o, float v) {
  const uint16_t h = toHalf(v);
  o[0] = (uint8_t)(h & 0xff);
  o[1] = (uint8_t)(h >> 8);
}

inline float viaHalf(float v) { return fromHalf(toHalf(v)); }

// Symmetric codes L in [0, 2·nmax) and the scale with the least x²-weighted error over iscales
// -(nmax + 0.1·is) / max, is = -9..9 (ggml's make_qx_quants, rmse_type 1).
float symmetricScale(const float* x, int n, int nmax, uint8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; i++) {
    const float ax = fabsf(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < 1e-15f) {
    memset(L, 0, n);
    return 0;
  }
  auto fit = [&](float iscale, bool store, float* sumlx, float* suml2) {
    float a = 0, b = 0;
    for (int i = 0; i < n; i++) {
      const int l = std::max(-nmax, std::min(nmax - 1, nearestInt(iscale * x[i])));
      if (store) L[i] = (uint8_t)(l + nmax);
      const float w = x[i] * x[i];
      a += w * x[i] * l;
      b += w * l * l;
    }
    *sumlx = a;
    *suml2 = b;
  };
  float sumlx, suml2;
  fit(-nmax / max, true, &sumlx, &suml2);
  float scale = suml2 ? sumlx / suml2 : 0;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; is++) {
    if (is == 0) continue;
    const float iscale = -(nmax + 0.1f * is) / max;
    fit(iscale, false, &sumlx, &suml2);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      fit(iscale, true, &sumlx, &suml2);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Asymmetric codes L in [0, nmax] and (scale, min) with x ≈ scale·L - min: a weighted least-squares
// fit per trial iscale (rmin + rdelta·is + nmax) / (max - min), weights rms + |x| (ggml's
// make_qkx2_quants as its Q4_K / Q5_K reference quantizers call it).
void asymmetricScale(const float* x, int n, int nmax, uint8_t* L, float rmin, float rdelta, int nstep, float* scaleOut,
                     float* minOut) {
  float sumX2 = 0;
  for (int i = 0; i < n; i++) sumX2 += x[i] * x[i];
  const float av = sqrtf(sumX2 / n);
  float w[32];
  float min = x[0], max = x[0], sumW = 0, sumX = 0;
  for (int i = 0; i < n; i++) {
    min = std::min(min, x[i]);
    max = std::max(max, x[i]);
    w[i] = av + fabsf(x[i]);
    sumW += w[i];
    sumX += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    memset(L, 0, n);
    *scaleOut = 0;
    *minOut = -min;
    return;
  }
  float iscale = nmax / (max - min), scale = 1 / iscale, bestError = 0;
  for (int i = 0; i < n; i++) {
    L[i] = (uint8_t)std::max(0, std::min(nmax, nearestInt(iscale * (x[i] - min))));
    const float diff = scale * L[i] + min - x[i];
    bestError += w[i] * diff * diff;
  }
  uint8_t aux[32];
  for (int is = 0; is <= nstep; is++) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sumL = 0, sumL2 = 0, sumXL = 0;
    for (int i = 0; i < n; i++) {
      const int l = std::max(0, std::min(nmax, nearestInt(iscale * (x[i] - min))));
      aux[i] = (uint8_t)l;
      sumL += w[i] * l;
      sumL2 += w[i] * l * l;
      sumXL += w[i] * l * x[i];
    }
    const float D = sumW * sumL2 - sumL * sumL;
    if (D <= 0) continue;
    float thisScale = (sumW * sumXL - sumX * sumL) / D, thisMin = (sumL2 * sumX - sumL * sumXL) / D;
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = sumXL / sumL2;
    }
    float err = 0;
    for (int i = 0; i < n; i++) {
      const float diff = thisScale * aux[i] + thisMin - x[i];
      err += w[i] * diff * diff;
    }
    if (err < bestError) {
      memcpy(L, aux, n);
      bestError = err;
      scale = thisScale;
      min = thisMin;
    }
  }
  *scaleOut = scale;
  *minOut = -min;
}

void k4ScaleMin(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

void q8_0Block(const float* x, uint8_t* o) {
  float amax = 0;
  for (int i = 0; i < 32; i++) amax = std::max(amax, fabsf(x[i]));
  const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
  putHalf(o, d);
  for (int i = 0; i < 32; i++) o[2 + i] = (uint8_t)(int8_t)roundf(x[i] * id);  // half away from zero, as ggml
}

void q4_0Block(const float* x, uint8_t* o) {
  uint8_t L[32];
  putHalf(o, symmetricScale(x, 32, 8, L));
  for (int j = 0; j < 16; j++) o[2 + j] = (uint8_t)(L[j] | (L[j + 16] << 4));
}

void kBlock(bool five, const float* x, uint8_t* o) {
  const int nmax = five ? 31 : 15;
  uint8_t L[256];
  float scales[8], mins[8], maxScale = 0, maxMin = 0;
  for (int j = 0; j < 8; j++) {
    if (five)
      asymmetricScale(x + 32 * j, 32, nmax, L + 32 * j, -0.5f, 0.1f, 15, &scales[j], &mins[j]);
    else
      asymmetricScale(x + 32 * j, 32, nmax, L + 32 * j, -1.0f, 0.1f, 20, &scales[j], &mins[j]);
    maxScale = std::max(maxScale, scales[j]);
    maxMin = std::max(maxMin, mins[j]);
  }
  const float invScale = maxScale > 0 ? 63.0f / maxScale : 0, invMin = maxMin > 0 ? 63.0f / maxMin : 0;
  uint8_t* sc = o + 4;
  memset(sc, 0, 12);
  for (int j = 0; j < 8; j++) {
    const int ls = std::min(63, nearestInt(invScale * scales[j])), lm = std::min(63, nearestInt(invMin * mins[j]));
    if (j < 4) {
      sc[j] = (uint8_t)ls;
      sc[j + 4] = (uint8_t)lm;
    } else {
      sc[j + 4] = (uint8_t)((ls & 0xf) | ((lm & 0xf) << 4));
      sc[j - 4] |= (uint8_t)((ls >> 4) << 6);
      sc[j] |= (uint8_t)((lm >> 4) << 6);
    }
  }
  putHalf(o, maxScale / 63.0f);
  putHalf(o + 2, maxMin / 63.0f);
  const float d = viaHalf(maxScale / 63.0f), dmin = viaHalf(maxMin / 63.0f);
  for (int j = 0; j < 8; j++) {
    int s, m;
    k4ScaleMin(sc, j, &s, &m);
    const float dj = d * s;
    if (!dj) continue;
    const float mj = dmin * m;
    for (int i = 0; i < 32; i++) L[32 * j + i] = (uint8_t)std::max(0, std::min(nmax, nearestInt((x[32 * j + i] + mj) / dj)));
  }
  uint8_t* qh = o + 16;
  uint8_t* qs = o + 16 + (five ? 32 : 0);
  if (five) memset(qh, 0, 32);
  for (int c = 0; c < 4; c++) {
    for (int l = 0; l < 32; l++) {
      int lo = L[64 * c + l], hi = L[64 * c + l + 32];
      if (five) {
        if (lo > 15) {
          lo -= 16;
          qh[l] |= (uint8_t)(1 << (2 * c));
        }
        if (hi > 15) {
          hi -= 16;
          qh[l] |= (uint8_t)(2 << (2 * c));
        }
      }
      qs[32 * c + l] = (uint8_t)(lo | (hi << 4));
    }
  }
}

void q6kBlock(const float* x, uint8_t* o) {
  uint8_t L[256];
  float scales[16], maxScale = 0, maxAbs = 0;
  for (int ib = 0; ib < 16; ib++) {
    scales[ib] = symmetricScale(x + 16 * ib, 16, 32, L + 16 * ib);
    if (fabsf(scales[ib]) > maxAbs) {
      maxAbs = fabsf(scales[ib]);
      maxScale = scales[ib];
    }
  }
  memset(o, 0, 210);
  if (maxAbs < 1e-15f) return;
  const float iscale = -128.0f / maxScale;
  putHalf(o + 208, 1 / iscale);
  const float d = viaHalf(1 / iscale);
  for (int ib = 0; ib < 16; ib++) {
    const int s = std::min(127, nearestInt(iscale * scales[ib]));
    o[192 + ib] = (uint8_t)(int8_t)s;
    const float dj = d * s;
    if (!dj) continue;
    for (int i = 0; i < 16; i++) L[16 * ib + i] = (uint8_t)(std::max(-32, std::min(31, nearestInt(x[16 * ib + i] / dj))) + 32);
  }
  for (int n = 0; n < 2; n++) {
    for (int l = 0; l < 32; l++) {
      const uint8_t* q = L + 128 * n + l;
      o[64 * n + l] = (uint8_t)((q[0] & 0xf) | ((q[64] & 0xf) << 4));
      o[64 * n + l + 32] = (uint8_t)((q[32] & 0xf) | ((q[96] & 0xf) << 4));
      o[128 + 32 * n + l] = (uint8_t)((q[0] >> 4) | ((q[32] >> 4) << 2) | ((q[64] >> 4) << 4) | ((q[96] >> 4) << 6));
    }
  }
}

void quantizeRow(int dtype, const float* x, size_t k, uint8_t* o) {
  const size_t block = quantBlock(dtype), bytes = quantBlockBytes(dtype);
  for (size_t b = 0; b < k / block; b++, x += block, o += bytes) {
    switch (dtype) {
      case kQ8_0: q8_0Block(x, o); break;
      case kQ4_0: q4_0Block(x, o); break;
      case kQ4_K: kBlock(false, x, o); break;
      case kQ5_K: kBlock(true, x, o); break;
      case kQ6_K: q6kBlock(x, o); break;
      default: break;
    }
  }
}

struct Job {
  int dtype;
  const float* x;
  uint8_t* out;
  size_t rows, k, rowBytes, chunk;
};

}  // namespace

void quantizeRows(int dtype, const float* x, size_t rows, size_t k, uint8_t* out) {
  Job job{dtype, x, out, rows, k, k / quantBlock(dtype) * quantBlockBytes(dtype), 0};
  const size_t chunks = std::min(rows, static_cast<size_t>(threadCount()) * 8);
  if (chunks == 0) return;
  job.chunk = (rows + chunks - 1) / chunks;
  sharedPool().run((rows + job.chunk - 1) / job.chunk, [](void* ctx, size_t c, float*) {
    const Job& j = *static_cast<const Job*>(ctx);
    const size_t r0 = c * j.chunk, r1 = std::min(j.rows, r0 + j.chunk);
    for (size_t r = r0; r < r1; r++) quantizeRow(j.dtype, j.x + r * j.k, j.k, j.out + r * j.rowBytes);
  }, &job);
}

}  // namespace moesaic
