// The bf16 precision mode of matmul for bf16 weights (docs/kernels.md): activations are rounded to bf16
// (round to nearest even, vcvtne2ps2bf16, as llama.cpp rounds activations for bf16 weights) and each
// pair of bf16 products is accumulated into an f32 lane by vdpbf16ps (AVX-512 BF16), twice the
// multiply-adds per instruction of widening the weights and using f32 FMAs.
//
// Compiled on its own with -mavx512bf16 (a static library in binding.gyp) and called only after
// dispatch.cc has checked the CPU reports avx512bf16; everything but the entry point is static in an
// anonymous namespace, so no function built with these instructions can be merged into another path.
//
// Numerics: every output element is computed by the same sequence of operations wherever it falls
// (one 16-lane accumulator over K in steps of 32, the last step masked with zeros, a fixed reduction,
// then the bias), so a row alone and the same row in a batch give the same bits, whatever the thread
// count or the column split.

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "dtype.h"
#include "kernels-bf16dot.h"

namespace moesaic {
namespace bf16dot {
namespace {

// Activations per vdpbf16ps: 16 f32 lanes, each summing one pair of bf16 products.
constexpr size_t kStep = 32;
// A register block of RB rows x CB columns: 16 accumulators, 4 weight vectors and one activation
// vector of the 32 zmm registers; every loaded weight vector serves RB rows (Goto & van de Geijn 2008).
constexpr size_t RB = 4;
constexpr size_t CB = 4;
// Decode (one row): 4 columns at a time, 4 independent accumulator chains.
constexpr size_t CB1 = 4;
// Columns are visited in tiles of about this many weight bytes, so a tile stays in L2 while all the
// row blocks pass over it.
constexpr size_t kTileBytes = 256 * 1024;

static inline float scalarAt(const void* p, int dtype, size_t i) {
  if (dtype == kBF16 || dtype == kF16) {
    uint16_t h;
    memcpy(&h, static_cast<const uint16_t*>(p) + i, 2);
    if (dtype == kF16) return _cvtsh_ss(h);
    uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
  }
  return static_cast<const float*>(p)[i];
}

// 32 activations x[0, 32) as bf16, lanes in memory order (the first 16 in the low half).
static inline __m512bh loadX(const float* x) {
  return _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + 16), _mm512_loadu_ps(x));
}

// The last `rem` (< 32) activations, zero beyond them (zero pairs add nothing to an accumulator).
static inline __m512bh loadXTail(const float* x, size_t rem) {
  const __mmask16 lo = rem >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << rem) - 1);
  const __mmask16 hi = rem > 16 ? static_cast<__mmask16>((1u << (rem - 16)) - 1) : static_cast<__mmask16>(0);
  return _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, x + 16), _mm512_maskz_loadu_ps(lo, x));
}

// Sum of the 16 lanes in a fixed tree (halves, then halves again). The masked extract with an explicit
// zero source sidesteps a false -Wuninitialized in GCC 12's headers (GCC bug 105593).
static inline float reduceAdd(__m512 v) {
  const __m512d d = _mm512_castps_pd(v);
  const __m256 lo = _mm256_castpd_ps(_mm512_mask_extractf64x4_pd(_mm256_setzero_pd(), 0xff, d, 0));
  const __m256 hi = _mm256_castpd_ps(_mm512_mask_extractf64x4_pd(_mm256_setzero_pd(), 0xff, d, 1));
  const __m256 s8 = _mm256_add_ps(lo, hi);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

static inline __m512bh loadW(const uint16_t* w) { return (__m512bh)_mm512_loadu_si512(w); }

static inline __m512bh loadWTail(const uint16_t* w, size_t rem) {
  return (__m512bh)_mm512_maskz_loadu_epi16(static_cast<__mmask32>((1u << rem) - 1), w);
}

// Where a micro-kernel reads its activations: the f32 rows, converted on the fly (one vcvtne2ps2bf16
// per 32 activations per row and column block), or rows already converted to bf16 once per row block
// and tile (packX), zero-padded to a multiple of 32. Both give the same bf16 values, so the same bits.
struct F32Rows {
  const float* x;
  size_t stride;
  __m512bh at(size_t i, size_t kk) const { return loadX(x + i * stride + kk); }
  __m512bh tail(size_t i, size_t kk, size_t rem) const { return loadXTail(x + i * stride + kk, rem); }
};

struct PackedRows {
  const uint16_t* x;
  size_t stride;
  __m512bh at(size_t i, size_t kk) const { return (__m512bh)_mm512_loadu_si512(x + i * stride + kk); }
  __m512bh tail(size_t i, size_t kk, size_t) const { return at(i, kk); }
};

/** R rows x C columns of outputs starting at (r, j), each a full dot product over k; xs holds rows r... */
template <size_t R, size_t C, class XS>
static inline void microKernel(const MatmulArgs& a, const XS& xs, size_t r, size_t j) {
  const size_t K = a.k;
  const uint16_t* w = static_cast<const uint16_t*>(a.w) + j * K;
  __m512 acc[R][C];
#pragma GCC unroll 16
  for (size_t i = 0; i < R; i++)
#pragma GCC unroll 16
    for (size_t c = 0; c < C; c++) acc[i][c] = _mm512_setzero_ps();
  size_t kk = 0;
  // The C weight rows of a block are read as C interleaved streams; each step prefetches the same
  // offsets of the next block's rows into L2, as the f32 path does (see kernels-impl.h).
  for (; kk + kStep <= K; kk += kStep) {
    __m512bh wv[C];
#pragma GCC unroll 16
    for (size_t c = 0; c < C; c++) {
      __builtin_prefetch(w + (C + c) * K + kk, 0, 2);
      wv[c] = loadW(w + c * K + kk);
    }
#pragma GCC unroll 16
    for (size_t i = 0; i < R; i++) {
      const __m512bh xv = xs.at(i, kk);
#pragma GCC unroll 16
      for (size_t c = 0; c < C; c++) acc[i][c] = _mm512_dpbf16_ps(acc[i][c], xv, wv[c]);
    }
  }
  if (kk < K) {
    const size_t rem = K - kk;
    __m512bh wv[C];
#pragma GCC unroll 16
    for (size_t c = 0; c < C; c++) wv[c] = loadWTail(w + c * K + kk, rem);
#pragma GCC unroll 16
    for (size_t i = 0; i < R; i++) {
      const __m512bh xv = xs.tail(i, kk, rem);
#pragma GCC unroll 16
      for (size_t c = 0; c < C; c++) acc[i][c] = _mm512_dpbf16_ps(acc[i][c], xv, wv[c]);
    }
  }
#pragma GCC unroll 16
  for (size_t i = 0; i < R; i++) {
#pragma GCC unroll 16
    for (size_t c = 0; c < C; c++) {
      float s = reduceAdd(acc[i][c]);
      if (a.bias) s += scalarAt(a.bias, a.biasDtype, j + c);
      a.y[(r + i) * a.n + j + c] = s;
    }
  }
}

template <size_t R, size_t C, class XS>
static void rowBlock(const MatmulArgs& a, const XS& xs, size_t r, size_t n0, size_t n1) {
  size_t j = n0;
  for (; j + C <= n1; j += C) microKernel<R, C>(a, xs, r, j);
  for (; j < n1; j++) microKernel<R, 1>(a, xs, r, j);
}

// Rows [r, r + R) of x as bf16 into out (row stride `stride`, a multiple of 32), zeros past k.
static void packX(const MatmulArgs& a, size_t r, size_t R, uint16_t* out, size_t stride) {
  for (size_t i = 0; i < R; i++) {
    const float* x = a.x + (r + i) * a.k;
    size_t kk = 0;
    for (; kk + kStep <= a.k; kk += kStep) _mm512_storeu_si512(out + i * stride + kk, (__m512i)loadX(x + kk));
    if (kk < stride) _mm512_storeu_si512(out + i * stride + kk, (__m512i)loadXTail(x + kk, a.k - kk));
  }
}

// Rows [r, r + R) (R <= RB) over the columns [t0, t1) of one tile.
template <class XS>
static void rowsOverTile(const MatmulArgs& a, const XS& xs, size_t r, size_t R, size_t t0, size_t t1) {
  switch (R) {
    case 4: rowBlock<4, CB>(a, xs, r, t0, t1); break;
    case 3: rowBlock<3, CB>(a, xs, r, t0, t1); break;
    case 2: rowBlock<2, CB>(a, xs, r, t0, t1); break;
    case 1: rowBlock<1, CB>(a, xs, r, t0, t1); break;
    default: break;
  }
}

// Activation rows up to this long are converted to bf16 once per row block and tile into a stack buffer
// of RB rows (64 KiB); longer rows are converted on the fly.
constexpr size_t kPackMaxK = 8192;

static void matmul(const MatmulArgs& a, size_t r0, size_t r1, size_t n0, size_t n1) {
  if (r0 >= r1 || n0 >= n1) return;
  if (r1 - r0 == 1) {
    rowBlock<1, CB1>(a, F32Rows{a.x + r0 * a.k, a.k}, r0, n0, n1);
    return;
  }
  const size_t rowBytes = a.k * 2;
  size_t tile = rowBytes ? kTileBytes / rowBytes : n1 - n0;
  tile = tile < CB ? CB : tile - tile % CB;
  const size_t stride = (a.k + kStep - 1) / kStep * kStep;
  alignas(64) uint16_t packed[RB * kPackMaxK];
  for (size_t t0 = n0; t0 < n1; t0 += tile) {
    const size_t t1 = t0 + tile < n1 ? t0 + tile : n1;
    for (size_t r = r0; r < r1; r += RB) {
      const size_t R = r1 - r < RB ? r1 - r : RB;
      if (a.k <= kPackMaxK) {
        packX(a, r, R, packed, stride);
        rowsOverTile(a, PackedRows{packed, stride}, r, R, t0, t1);
      } else {
        rowsOverTile(a, F32Rows{a.x + r * a.k, a.k}, r, R, t0, t1);
      }
    }
  }
}

}  // namespace
}  // namespace bf16dot

void matmulBf16Dot(const MatmulArgs& a, size_t r0, size_t r1, size_t n0, size_t n1) {
  bf16dot::matmul(a, r0, r1, n0, n1);
}

}  // namespace moesaic
