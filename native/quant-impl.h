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

inline float f16At(const uint8_t* p) {
#if defined(__F16C__)
  uint16_t h;
  memcpy(&h, p, 2);
  return _cvtsh_ss(h);
#else
  return halfToFloat((uint16_t)(p[0] | (p[1] << 8)));
#endif
}

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

#if !defined(MOESAIC_Q_VNNI) && !defined(MOESAIC_Q_AVX2)
// Q8_0's codes are shifted to unsigned u = w + 128 with an offset of 128·d.
constexpr bool kSignedQ8 = false;

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

// ---------------------------------------------------------------------------------------------
// The generic path (plain C): unpack a weight row (above), then one dot product per activation row.
// ---------------------------------------------------------------------------------------------

// One weight row (unpacked) against one activation row: Σ over 4-code lanes of the integer sum times
// the lane's weight scale and the activations' block scale, minus Σ_g offset_g · dx · Σ q.
float dotUnpacked(const uint8_t* u, const float* wl, const float* off, bool isSigned, const int8_t* q,
                  const float* dx, const float* qs16, size_t k) {
  float total = 0;
  for (size_t i = 0; i < k; i += 4) {
    int32_t s = 0;
    for (int t = 0; t < 4; t++) s += (isSigned ? (int32_t)(int8_t)u[i + t] : (int32_t)u[i + t]) * q[i + t];
    total += (float)s * (wl[i / 4] * dx[i / 32]);
  }
  float offset = 0;
  for (size_t g = 0; g < k / 16; g++) offset += off[g] * dx[g / 2] * qs16[g];
  return total - offset;
}
#endif

void quantizeActs(const float* x, size_t rows, size_t k, int8_t* q, float* dx, float* qs16, float* xs32) {
  for (size_t b = 0; b < rows * k / 32; b++) {
    const float* xb = x + 32 * b;
    float amax = 0;
    for (int i = 0; i < 32; i++) {
      const float a = fabsf(xb[i]);
      amax = a > amax ? a : amax;  // not fmaxf: it is a libm call per element where it does not inline
    }
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    int8_t* qb = q + 32 * b;
    int s0 = 0, s1 = 0;
    for (int i = 0; i < 32; i++) qb[i] = (int8_t)nearbyintf(xb[i] * id);
    for (int i = 0; i < 16; i++) s0 += qb[i];
    for (int i = 16; i < 32; i++) s1 += qb[i];
    dx[b] = d;
    qs16[2 * b] = (float)s0;
    qs16[2 * b + 1] = (float)s1;
    xs32[b] = d * (float)(s0 + s1);
  }
}


#if defined(MOESAIC_Q_VNNI) || defined(MOESAIC_Q_AVX2)
// ---------------------------------------------------------------------------------------------
// The x86 path: no unpacked copy. Each 32 weights are decoded in registers into unsigned codes (the
// 32 that meet one 32-activation block), multiplied as integers with up to 4 activation rows, and
// scaled once per 32 (per 16 for Q6_K) with scale · dx; the offsets are subtracted per sub-block with
// the activations' integer sums.
// ---------------------------------------------------------------------------------------------

// 8 lanes of Σ_4 u·x (u unsigned codes, x signed int8).
inline __m256i idot(__m256i u, __m256i x) {
#if defined(MOESAIC_Q_VNNI)
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, x);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1));
#endif
}

inline float hsum(__m256 v) {
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

inline __m256i loadx(const int8_t* p) { return _mm256_loadu_si256((const __m256i*)p); }

// Weight rows are one sequential stream per thread; a software prefetch 2 KB ahead of the block being
// decoded (the distance the bf16 GEMV uses, docs/kernels.md) keeps DRAM reads in flight, every cache
// line of the block once.
constexpr size_t kPrefetchAhead = 2048;
inline void prefetchBlock(const uint8_t* w, size_t bytes) {
  for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(w + kPrefetchAhead + o, 0, 3);
}

// Activation row r of the call.
struct RowPtr {
  const int8_t* q;
  const float* dx;
  const float* qs16;
  const float* xs32;
};

// Lane j of v in every lane.
inline __m256 lane(__m256 v, int j) { return _mm256_permutevar8x32_ps(v, _mm256_set1_epi32(j)); }

// The eight 6-bit scales (sc) and mins (m) of a Q4_K / Q5_K super-block as floats: bytes 0-3 and 4-7
// carry sc0-3 and m0-3 in their low 6 bits and the top bits of sc4-7 and m4-7 in their top 2; bytes
// 8-11 the low nibbles of sc4-7 (low) and m4-7 (high). Done on 32-bit words, four scales at a time.
inline void k4Scales(const uint8_t* s, __m256* sc, __m256* m) {
  uint32_t u0, u1, u2;
  memcpy(&u0, s, 4);
  memcpy(&u1, s + 4, 4);
  memcpy(&u2, s + 8, 4);
  const uint32_t lo6 = 0x3f3f3f3f, lo4 = 0x0f0f0f0f, lo2 = 0x03030303;
  const uint64_t scs = (uint64_t)(u0 & lo6) | ((uint64_t)((u2 & lo4) | (((u0 >> 6) & lo2) << 4)) << 32);
  const uint64_t ms = (uint64_t)(u1 & lo6) | ((uint64_t)(((u2 >> 4) & lo4) | (((u1 >> 6) & lo2) << 4)) << 32);
  *sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)scs)));
  *m = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)ms)));
}

// Per activation row: two float accumulators (alternating, to halve the FMA dependency chain) and a
// vector of offsets to subtract.
template <int R>
struct Acc {
  __m256 v[R][2];
  __m256 off[R];
#if defined(MOESAIC_Q_VNNI)
  __m512 z[R];
#endif
  Acc() {
    for (int r = 0; r < R; r++) {
      v[r][0] = v[r][1] = off[r] = _mm256_setzero_ps();
#if defined(MOESAIC_Q_VNNI)
      z[r] = _mm512_setzero_ps();
#endif
    }
  }
  inline void fma(int r, int which, __m256i p, __m256 s) { v[r][which] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, v[r][which]); }
#if defined(MOESAIC_Q_VNNI)
  // 64 codes (lo then hi: 64 consecutive weights) against the row's 64 activations at x, lane scales
  // picked from the 8 scales in s by idx
  inline void fma64(int r, __m256i lo, __m256i hi, const int8_t* x, __m512 s, __m512i idx) {
    const __m512i u = _mm512_inserti64x4(_mm512_zextsi256_si512(lo), hi, 1);
    const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, _mm512_loadu_si512(x));
    z[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_permutexvar_ps(idx, s), z[r]);
  }
#endif
  inline void finish(float* out) {
    for (int r = 0; r < R; r++) {
      __m256 t = _mm256_sub_ps(_mm256_add_ps(v[r][0], v[r][1]), off[r]);
#if defined(MOESAIC_Q_VNNI)
      t = _mm256_add_ps(t, _mm256_add_ps(_mm512_castps512_ps256(z[r]), _mm512_extractf32x8_ps(z[r], 1)));
#endif
      out[r] = hsum(t);
    }
  }
};

template <int R>
void dotQ4K(const uint8_t* w, size_t nb, bool five, const RowPtr* a, float* out) {
  Acc<R> acc;
  const __m256i m4 = _mm256_set1_epi8(0x0f), m10 = _mm256_set1_epi8(0x10);
  const size_t bytes = five ? 176 : 144;
  for (size_t b = 0; b < nb; b++, w += bytes) {
    prefetchBlock(w, bytes);
    const __m256 d = _mm256_set1_ps(f16At(w)), dmin = _mm256_set1_ps(f16At(w + 2));
    __m256 sc, m;
    k4Scales(w + 4, &sc, &m);
    sc = _mm256_mul_ps(sc, d);
    m = _mm256_mul_ps(m, dmin);
    __m256 s[R];
    for (int r = 0; r < R; r++) {
      s[r] = _mm256_mul_ps(sc, _mm256_loadu_ps(a[r].dx + 8 * b));  // d·sc_j·dx_j
      acc.off[r] = _mm256_fmadd_ps(m, _mm256_loadu_ps(a[r].xs32 + 8 * b), acc.off[r]);  // dmin·m_j·dx_j·Σq_j
    }
    const uint8_t* qs = w + (five ? 48 : 16);
    __m256i hb = five ? _mm256_loadu_si256((const __m256i*)(w + 16)) : _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
      const __m256i q = _mm256_loadu_si256((const __m256i*)(qs + 32 * c));
      __m256i lo = _mm256_and_si256(q, m4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      if (five) {
        lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(hb, 4), m10));
        hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(hb, 3), m10));
        hb = _mm256_srli_epi16(hb, 2);
      }
      const size_t e = 256 * b + 64 * c;
#if defined(MOESAIC_Q_VNNI)
      // lanes 0-7 take sub-block 2c's scale, lanes 8-15 sub-block 2c+1's
      const __m512i idx = _mm512_inserti64x4(_mm512_set1_epi32(2 * c), _mm256_set1_epi32(2 * c + 1), 1);
      for (int r = 0; r < R; r++) acc.fma64(r, lo, hi, a[r].q + e, _mm512_zextps256_ps512(s[r]), idx);
#else
      for (int r = 0; r < R; r++) {
        acc.fma(r, 0, idot(lo, loadx(a[r].q + e)), lane(s[r], 2 * c));
        acc.fma(r, 1, idot(hi, loadx(a[r].q + e + 32)), lane(s[r], 2 * c + 1));
      }
#endif
    }
  }
  acc.finish(out);
}

template <int R>
void dotQ6K(const uint8_t* w, size_t nb, const RowPtr* a, float* out) {
  Acc<R> acc;
  const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
  // lanes 0-3 take group 2p's scale, lanes 4-7 group 2p+1's
  const __m256i pick[4] = {_mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1), _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3),
                           _mm256_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5), _mm256_setr_epi32(6, 6, 6, 6, 7, 7, 7, 7)};
  const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
  for (size_t b = 0; b < nb; b++, w += 210) {
    prefetchBlock(w, 210);
    const __m256 d = _mm256_set1_ps(f16At(w + 208));
    for (int n = 0; n < 2; n++) {
      // the 8 group scales of this half, times d, times each group's dx (two groups per activation block)
      const __m256 scn = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(w + 192 + 8 * n)))));
      __m256 s[R];
      for (int r = 0; r < R; r++) {
        const __m256 dx = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(a[r].dx + 8 * b + 4 * n)), dup);
        s[r] = _mm256_mul_ps(scn, dx);
        acc.off[r] = _mm256_fmadd_ps(_mm256_mul_ps(s[r], _mm256_set1_ps(32.0f)), _mm256_loadu_ps(a[r].qs16 + 16 * b + 8 * n), acc.off[r]);
      }
      const __m256i qa = _mm256_loadu_si256((const __m256i*)(w + 64 * n));
      const __m256i qb = _mm256_loadu_si256((const __m256i*)(w + 64 * n + 32));
      const __m256i h = _mm256_loadu_si256((const __m256i*)(w + 128 + 32 * n));
      const __m256i u[4] = {
          _mm256_or_si256(_mm256_and_si256(qa, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m30)),
          _mm256_or_si256(_mm256_and_si256(qb, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m30)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qa, 4), m4), _mm256_and_si256(h, m30)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qb, 4), m4), _mm256_and_si256(_mm256_srli_epi16(h, 2), m30)),
      };
#if defined(MOESAIC_Q_VNNI)
      // 64 weights = 4 groups of 16: lanes 4g..4g+3 take group g's scale
      const __m512i idx0 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
      const __m512i idx1 = _mm512_add_epi32(idx0, _mm512_set1_epi32(4));
      for (int r = 0; r < R; r++) {
        const size_t e = 256 * b + 128 * n;
        acc.fma64(r, u[0], u[1], a[r].q + e, _mm512_zextps256_ps512(s[r]), idx0);
        acc.fma64(r, u[2], u[3], a[r].q + e + 64, _mm512_zextps256_ps512(s[r]), idx1);
      }
      (void)pick;
#else
      for (int p = 0; p < 4; p++) {
        const size_t e = 256 * b + 128 * n + 32 * p;
        for (int r = 0; r < R; r++) acc.fma(r, p & 1, idot(u[p], loadx(a[r].q + e)), _mm256_permutevar8x32_ps(s[r], pick[p]));
      }
#endif
    }
  }
  acc.finish(out);
}

template <int R>
void dotQ8_0(const uint8_t* w, size_t nb, const RowPtr* a, float* out) {
  Acc<R> acc;
  float off[R] = {};
  for (size_t b = 0; b < nb; b++, w += 34) {
    prefetchBlock(w, 34);
    const float d = f16At(w);
    const __m256i q = _mm256_loadu_si256((const __m256i*)(w + 2));
#if defined(MOESAIC_Q_VNNI)
    // codes w + 128 (unsigned), and an offset of 128·d·dx·Σq per block
    const __m256i u = _mm256_xor_si256(q, _mm256_set1_epi8((char)0x80));
    for (int r = 0; r < R; r++) {
      acc.fma(r, b & 1, idot(u, loadx(a[r].q + 32 * b)), _mm256_set1_ps(d * a[r].dx[b]));
      off[r] += 128.0f * d * a[r].xs32[b];
    }
#else
    // |w| · sign(x, w): vpmaddubsw's pair sums stay below 2 · 128 · 127, no saturation
    const __m256i au = _mm256_sign_epi8(q, q);
    for (int r = 0; r < R; r++) acc.fma(r, b & 1, idot(au, _mm256_sign_epi8(loadx(a[r].q + 32 * b), q)), _mm256_set1_ps(d * a[r].dx[b]));
#endif
  }
  acc.finish(out);
  for (int r = 0; r < R; r++) out[r] -= off[r];
}

template <int R>
void dotQ4_0(const uint8_t* w, size_t nb, const RowPtr* a, float* out) {
  Acc<R> acc;
  float off[R] = {};
  const __m128i m4 = _mm_set1_epi8(0x0f);
  for (size_t b = 0; b < nb; b++, w += 18) {
    prefetchBlock(w, 18);
    const float d = f16At(w);
    const __m128i q = _mm_loadu_si128((const __m128i*)(w + 2));
    const __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
    for (int r = 0; r < R; r++) {
      acc.fma(r, b & 1, idot(u, loadx(a[r].q + 32 * b)), _mm256_set1_ps(d * a[r].dx[b]));
      off[r] += 8.0f * d * a[r].xs32[b];
    }
  }
  acc.finish(out);
  for (int r = 0; r < R; r++) out[r] -= off[r];
}

template <int R>
void dotRows(int dtype, const uint8_t* w, size_t k, const RowPtr* a, float* out) {
  switch (dtype) {
    case kQ4_K: return dotQ4K<R>(w, k / 256, false, a, out);
    case kQ5_K: return dotQ4K<R>(w, k / 256, true, a, out);
    case kQ6_K: return dotQ6K<R>(w, k / 256, a, out);
    case kQ8_0: return dotQ8_0<R>(w, k / 32, a, out);
    case kQ4_0: return dotQ4_0<R>(w, k / 32, a, out);
    default: return;
  }
}

// out[i] for rows r0 .. r0 + count - 1 (count <= 4) of one weight row.
void dotRowGroup(int dtype, const uint8_t* w, size_t k, const QuantActs& x, size_t r0, size_t count, float* out) {
  RowPtr a[4];
  for (size_t i = 0; i < count; i++)
    a[i] = {x.q + (r0 + i) * k, x.dx + (r0 + i) * (k / 32), x.qs16 + (r0 + i) * (k / 16), x.xs32 + (r0 + i) * (k / 32)};
  switch (count) {
    case 1: return dotRows<1>(dtype, w, k, a, out);
    case 2: return dotRows<2>(dtype, w, k, a, out);
    case 3: return dotRows<3>(dtype, w, k, a, out);
    default: return dotRows<4>(dtype, w, k, a, out);
  }
}
#endif

// Products of one weight row (j, in `w`) with activation rows [r0, r1) into res[0, r1 - r0).
void rowProducts(const QuantMatmulArgs& a, const QuantActs& x, const uint8_t* w, size_t r0, size_t r1, float* res,
                 float* scratch) {
  const size_t k = a.k;
#if defined(MOESAIC_Q_VNNI) || defined(MOESAIC_Q_AVX2)
  (void)scratch;
  for (size_t r = r0; r < r1; r += 4) dotRowGroup(a.wDtype, w, k, x, r, r1 - r < 4 ? r1 - r : 4, res + (r - r0));
#else
  uint8_t* u = (uint8_t*)scratch;
  float* wl = scratch + k / 4;
  float* off = wl + k / 4;
  const bool sg = unpackRow(a.wDtype, w, k, u, wl, off);
  for (size_t r = r0; r < r1; r++) res[r - r0] = dotUnpacked(u, wl, off, sg, x.q + r * k, x.dx + r * (k / 32), x.qs16 + r * (k / 16), k);
#endif
}

void matmul(const QuantMatmulArgs& a, const QuantActs& x, size_t n0, size_t n1, float* scratch) {
  const size_t k = a.k;
  const size_t tile = quantRowTile(k);
  float* g = scratch + k / 4 + k / 4 + k / 16;  // [tile] gate results (the unpacked row before them)
  float* u = g + tile;                           // [tile] up results / plain results
  for (size_t r0 = 0; r0 < a.rows; r0 += tile) {
    const size_t r1 = r0 + tile < a.rows ? r0 + tile : a.rows;
    for (size_t j = n0; j < n1; j++) {
      rowProducts(a, x, a.w + j * a.rowBytes, r0, r1, a.up ? g : u, scratch);
      if (!a.up) {
        for (size_t r = r0; r < r1; r++) a.y[r * a.n + j] = u[r - r0];
        continue;
      }
      rowProducts(a, x, a.up + j * a.rowBytes, r0, r1, u, scratch);
      for (size_t r = r0; r < r1; r++) {
        const float gv = g[r - r0];
        a.y[r * a.n + j] = gv / (1.0f + expf(-gv)) * u[r - r0];
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
