// Quantized matrix products (see quant.h), written once and compiled per instruction set by
// quant-portable.cc, quant-avx2.cc and quant-avx512.cc, each defining MOESAIC_QUANT_NS,
// MOESAIC_QUANT_NAME and MOESAIC_QUANT_TABLE before including this file.
//
// Each output element is computed by the same operations whatever column range or thread it falls in
// (one row's codes against one activation row, lanes in order), so results do not depend on the
// thread count.

#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "dtype.h"
#include "quant.h"

namespace moesaic {
namespace MOESAIC_QUANT_NS {
namespace {

#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define MOESAIC_Q_VNNI 1
#elif defined(__AVX2__)
#define MOESAIC_Q_AVX2 1
#endif

inline float halfToFloat(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    float f = (float)mant * (1.0f / 16777216.0f);  // subnormal: mant · 2^-24
    memcpy(&bits, &f, 4);
    bits |= sign;
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

inline float f16At(const uint8_t* p) { return halfToFloat((uint16_t)(p[0] | (p[1] << 8))); }

// Fill the lane scales (one per 4 codes) and the offset of one 16-code group.
inline void group(float* lane, float* off, size_t g, float scale, float offset) {
  lane[4 * g] = lane[4 * g + 1] = lane[4 * g + 2] = lane[4 * g + 3] = scale;
  off[g] = offset;
}

inline void k4ScaleMin(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Whether this ISA's dot takes Q8_0's codes signed (AVX2: |w| · sign(x, w) keeps vpmaddubsw from
// saturating) or shifted to unsigned u = w + 128 with an offset of 128·d (VNNI's vpdpbusd and plain C).
#if defined(MOESAIC_Q_AVX2)
constexpr bool kSignedQ8 = true;
#else
constexpr bool kSignedQ8 = false;
#endif

// Unpack one weight row of k weights into codes u[k], lane scales lane[k/4] and group offsets off[k/16].
// Returns whether the codes are signed (Q8_0 on AVX2), else unsigned.
bool unpackRow(int dtype, const uint8_t* src, size_t k, uint8_t* u, float* lane, float* off) {
  switch (dtype) {
    case kQ8_0:
      for (size_t b = 0; b < k / 32; b++, src += 34, u += 32) {
        const float d = f16At(src);
        if (kSignedQ8) {
          memcpy(u, src + 2, 32);
        } else {
          for (int i = 0; i < 32; i++) u[i] = (uint8_t)(src[2 + i] ^ 0x80);
        }
        group(lane, off, 2 * b, d, kSignedQ8 ? 0.0f : 128.0f * d);
        group(lane, off, 2 * b + 1, d, kSignedQ8 ? 0.0f : 128.0f * d);
      }
      return kSignedQ8;
    case kQ4_0:
      for (size_t b = 0; b < k / 32; b++, src += 18, u += 32) {
        const float d = f16At(src);
        for (int i = 0; i < 16; i++) {
          u[i] = src[2 + i] & 0xf;
          u[i + 16] = src[2 + i] >> 4;
        }
        group(lane, off, 2 * b, d, 8.0f * d);
        group(lane, off, 2 * b + 1, d, 8.0f * d);
      }
      return false;
    case kQ4_K:
    case kQ5_K: {
      const bool five = dtype == kQ5_K;
      const size_t bytes = five ? 176 : 144;
      for (size_t b = 0; b < k / 256; b++, src += bytes, u += 256) {
        const float d = f16At(src), dmin = f16At(src + 2);
        const uint8_t* qh = src + 16;
        const uint8_t* qs = src + (five ? 48 : 16);
        for (int c = 0; c < 4; c++) {
          for (int half = 0; half < 2; half++) {
            int sc, m;
            k4ScaleMin(src + 4, 2 * c + half, &sc, &m);
            uint8_t* o = u + 64 * c + 32 * half;
            const int shift = 4 * half;
            for (int l = 0; l < 32; l++) o[l] = (qs[32 * c + l] >> shift) & 0xf;
            if (five) {
              const int bit = 2 * c + half;
              for (int l = 0; l < 32; l++) o[l] |= ((qh[l] >> bit) & 1) << 4;
            }
            const size_t g = 16 * b + 4 * c + 2 * half;
            group(lane, off, g, d * sc, dmin * m);
            group(lane, off, g + 1, d * sc, dmin * m);
          }
        }
      }
      return false;
    }
    case kQ6_K:
      for (size_t b = 0; b < k / 256; b++, src += 210, u += 256) {
        const uint8_t* ql = src;
        const uint8_t* qh = src + 128;
        const int8_t* sc = (const int8_t*)(src + 192);
        const float d = f16At(src + 208);
        for (int n = 0; n < 2; n++) {
          uint8_t* o = u + 128 * n;
          for (int l = 0; l < 32; l++) {
            const uint8_t lo0 = ql[64 * n + l], lo1 = ql[64 * n + l + 32], h = qh[32 * n + l];
            o[l] = (lo0 & 0xf) | ((h & 3) << 4);
            o[l + 32] = (lo1 & 0xf) | (((h >> 2) & 3) << 4);
            o[l + 64] = (lo0 >> 4) | (((h >> 4) & 3) << 4);
            o[l + 96] = (lo1 >> 4) | (((h >> 6) & 3) << 4);
          }
        }
        // group g of 16 codes has scale sc[g] (the layout's scale index equals the group index)
        for (int g = 0; g < 16; g++) group(lane, off, 16 * b + g, d * sc[g], 32.0f * d * sc[g]);
      }
      return false;
    default:
      return false;
  }
}

// Σ_g off[g] · sum[g] over k/16 groups.
inline float offsetDot(const float* off, const float* sum, size_t groups) {
  float s = 0;
  for (size_t g = 0; g < groups; g++) s += off[g] * sum[g];
  return s;
}

// One weight row (unpacked) against one activation row.
float dotRow(const uint8_t* u, const float* wl, const float* off, bool isSigned, const int8_t* q,
             const float* xl, const float* xs, size_t k) {
  size_t i = 0;
  float total = 0;
#if defined(MOESAIC_Q_VNNI)
  (void)isSigned;
  __m512 acc = _mm512_setzero_ps();
  for (; i + 64 <= k; i += 64) {
    __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(u + i), _mm512_loadu_si512(q + i));
    __m512 s = _mm512_mul_ps(_mm512_loadu_ps(wl + i / 4), _mm512_loadu_ps(xl + i / 4));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), s, acc);
  }
  if (i + 32 <= k) {
    __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_loadu_si256((const __m256i*)(u + i)),
                                    _mm256_loadu_si256((const __m256i*)(q + i)));
    __m256 s = _mm256_mul_ps(_mm256_loadu_ps(wl + i / 4), _mm256_loadu_ps(xl + i / 4));
    __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(p), s);
    acc = _mm512_add_ps(acc, _mm512_insertf32x8(_mm512_setzero_ps(), t, 0));
    i += 32;
  }
  total = _mm512_reduce_add_ps(acc);
#elif defined(MOESAIC_Q_AVX2)
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc = _mm256_setzero_ps();
  for (; i + 32 <= k; i += 32) {
    __m256i w = _mm256_loadu_si256((const __m256i*)(u + i));
    __m256i x = _mm256_loadu_si256((const __m256i*)(q + i));
    if (isSigned) {
      x = _mm256_sign_epi8(x, w);
      w = _mm256_sign_epi8(w, w);
    }
    __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), ones);
    __m256 s = _mm256_mul_ps(_mm256_loadu_ps(wl + i / 4), _mm256_loadu_ps(xl + i / 4));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc);
  }
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  total = _mm_cvtss_f32(h);
#endif
  for (; i < k; i += 4) {
    int32_t s = 0;
    for (int t = 0; t < 4; t++) s += (isSigned ? (int32_t)(int8_t)u[i + t] : (int32_t)u[i + t]) * q[i + t];
    total += (float)s * (wl[i / 4] * xl[i / 4]);
  }
  return total - offsetDot(off, xs, k / 16);
}

void quantizeActs(const float* x, size_t rows, size_t k, int8_t* q, float* lane, float* sum) {
  for (size_t b = 0; b < rows * k / 32; b++) {
    const float* xb = x + 32 * b;
    float amax = 0;
    for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(xb[i]));
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    int8_t* qb = q + 32 * b;
    int s0 = 0, s1 = 0;
    for (int i = 0; i < 32; i++) qb[i] = (int8_t)nearbyintf(xb[i] * id);
    for (int i = 0; i < 16; i++) s0 += qb[i];
    for (int i = 16; i < 32; i++) s1 += qb[i];
    for (int l = 0; l < 8; l++) lane[8 * b + l] = d;
    sum[2 * b] = d * (float)s0;
    sum[2 * b + 1] = d * (float)s1;
  }
}

// Rows of activations handled per pass over a column range: their codes and lane scales (2.25 bytes
// per element) stay in L2 while each unpacked weight row is reused for all of them.
size_t rowTile(size_t k) {
  const size_t t = (256 * 1024) / (k * 9 / 4 + 1);
  return t < 1 ? 1 : t;
}

void matmul(const QuantMatmulArgs& a, const QuantActs& x, size_t n0, size_t n1, float* scratch) {
  const size_t k = a.k;
  uint8_t* u = (uint8_t*)scratch;
  float* wl = scratch + k / 4;
  float* off = wl + k / 4;
  float* g = off + k / 16;
  const size_t tile = rowTile(k);
  for (size_t r0 = 0; r0 < a.rows; r0 += tile) {
    const size_t r1 = r0 + tile < a.rows ? r0 + tile : a.rows;
    for (size_t j = n0; j < n1; j++) {
      const uint8_t* row = a.w + j * a.rowBytes;
      if (j + 1 < n1) __builtin_prefetch(row + a.rowBytes, 0, 3);
      bool sg = unpackRow(a.wDtype, row, k, u, wl, off);
      for (size_t r = r0; r < r1; r++) {
        float v = dotRow(u, wl, off, sg, x.q + r * k, x.lane + r * (k / 4), x.sum + r * (k / 16), k);
        if (a.up)
          g[r - r0] = v;
        else
          a.y[r * a.n + j] = v;
      }
      if (!a.up) continue;
      sg = unpackRow(a.wDtype, a.up + j * a.rowBytes, k, u, wl, off);
      for (size_t r = r0; r < r1; r++) {
        const float gv = g[r - r0];
        const float uv = dotRow(u, wl, off, sg, x.q + r * k, x.lane + r * (k / 4), x.sum + r * (k / 16), k);
        a.y[r * a.n + j] = gv / (1.0f + expf(-gv)) * uv;
      }
    }
  }
}

}  // namespace
}  // namespace MOESAIC_QUANT_NS

extern const QuantKernels MOESAIC_QUANT_TABLE;
const QuantKernels MOESAIC_QUANT_TABLE = {
    MOESAIC_QUANT_NAME,
    MOESAIC_QUANT_NS::quantizeActs,
    MOESAIC_QUANT_NS::matmul,
};

}  // namespace moesaic
