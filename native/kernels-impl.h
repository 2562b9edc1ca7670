// The kernels, written once over the vector abstraction in simd.h and compiled three times
// (kernels-portable.cc, kernels-avx2.cc, kernels-avx512.cc), each defining MOESAIC_ISA_NS,
// MOESAIC_ISA_NAME and MOESAIC_KERNELS (the exported table's name) before including this file.
//
// Numerics: activations and accumulators are f32; weights are widened to f32 lane by lane. Each
// output element of matmul is computed by the same sequence of operations whatever block, thread or
// range it falls in (one vector accumulator over the W-wide body of K, a tree reduction, a scalar tail,
// then the bias), so results do not depend on the thread count.

#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "dtype.h"
#include "kernels.h"

namespace moesaic {
namespace MOESAIC_ISA_NS {
namespace {

#include "simd.h"

// ---------------------------------------------------------------------------------------------
// matmul: y[rows, n] = x[rows, k] · Wᵀ (+ bias)
//
// Decode is a memory-bound GEMV (rows = 1): weights are streamed once, in blocks of CB1 weight rows,
// with W-wide loads widened in registers and the next block prefetched into L2. For rows > 1 a
// register block of RB rows × CB columns reuses every loaded weight vector RB times (the classic
// GEMM micro-kernel idea, Goto & van de Geijn 2008), and columns are visited in tiles of ~kTileBytes
// of weights so a tile stays in L2 while all row blocks pass over it.
// ---------------------------------------------------------------------------------------------

constexpr size_t RB = 4;
#if MOESAIC_W == 16
constexpr size_t CB = 4;  // 16 accumulators + 4 weight vectors of the 32 zmm registers
#else
constexpr size_t CB = 2;  // 8 accumulators + 2 weight vectors of the 16 ymm/xmm registers
#endif
// Decode (rows == 1) uses blocks of 4 columns too: 4 independent accumulator chains, with the next
// block prefetched (below), streamed 21 GB/s on one Zen 4 core where one row at a time with no
// prefetch reached 18-19 and with a prefetch 2 KB ahead in the same row 14.5.
constexpr size_t CB1 = 4;
constexpr size_t kTileBytes = 256 * 1024;

/** R rows × C columns of outputs starting at (r, j), each a full dot product over k. */
template <class WT, size_t R, size_t C>
static inline void microKernel(const MatmulArgs& a, size_t r, size_t j) {
  typedef typename WT::T T;
  const size_t K = a.k;
  const float* x = a.x + r * K;
  const T* w = (const T*)a.w + j * K;
  vf acc[R][C];
#pragma GCC unroll 16
  for (size_t i = 0; i < R; i++)
#pragma GCC unroll 16
    for (size_t c = 0; c < C; c++) acc[i][c] = splat(0.0f);
  size_t kk = 0;
  // One accumulator per output, two vectors per step, whatever R and C: every output element is
  // summed in the same order wherever it falls, so a row computed alone (decode) and the same row in a
  // batched step give the same bits, and batching never changes a sequence's result. (Four partial
  // sums for rows = 1 measured 1.3x on an in-cache GEMV at 1 thread, but decode streams from memory,
  // where one chain already keeps up, and it made a row's bits depend on the batch.)
  // Two vectors per step (a full cache line of bf16 with AVX-512) into the same accumulator, so the
  // summation order is the plain one.
  //
  // The C weight rows of a block are one contiguous C·K region read as C interleaved streams, which
  // the hardware prefetcher follows poorly; so each step prefetches the same offsets of the *next*
  // block's rows into L2 (prefetcht1), which the next call reads. Measured on a quiet Zen 4 core,
  // 64 MB of bf16 weights: 4 rows × 4 columns went from 5.6 to 16.9 GB/s, and 1 row × 4 columns
  // reached 21 GB/s. Prefetching into L1 (prefetcht0) gained far less (9 GB/s), and prefetching
  // ahead within a row fetches lines a sibling stream of the same block is about to load anyway.
  for (; kk + 2 * W <= K; kk += 2 * W) {
    vf wa[C], wb[C];
#pragma GCC unroll 16
    for (size_t c = 0; c < C; c++) {
      __builtin_prefetch(w + (C + c) * K + kk, 0, 2);
      wa[c] = WT::load(w + c * K + kk);
      wb[c] = WT::load(w + c * K + kk + W);
    }
#pragma GCC unroll 16
    for (size_t i = 0; i < R; i++) {
      vf xa = loadF(x + i * K + kk), xb = loadF(x + i * K + kk + W);
#pragma GCC unroll 16
      for (size_t c = 0; c < C; c++) {
        acc[i][c] += xa * wa[c];
        acc[i][c] += xb * wb[c];
      }
    }
  }
  if (kk + W <= K) {
    vf wv[C];
#pragma GCC unroll 16
    for (size_t c = 0; c < C; c++) wv[c] = WT::load(w + c * K + kk);
#pragma GCC unroll 16
    for (size_t i = 0; i < R; i++) {
      vf xv = loadF(x + i * K + kk);
#pragma GCC unroll 16
      for (size_t c = 0; c < C; c++) acc[i][c] += xv * wv[c];
    }
    kk += W;
  }
  // Four columns' sums through one shuffle tree (reduceAdd4 adds the same pairs as reduceAdd).
  float sums[R][C];
#pragma GCC unroll 16
  for (size_t i = 0; i < R; i++) {
    if (C % 4 == 0) {
#pragma GCC unroll 16
      for (size_t c = 0; c < C; c += 4) reduceAdd4(acc[i][c], acc[i][c + 1 < C ? c + 1 : c], acc[i][c + 2 < C ? c + 2 : c], acc[i][c + 3 < C ? c + 3 : c], &sums[i][c]);
    } else {
#pragma GCC unroll 16
      for (size_t c = 0; c < C; c++) sums[i][c] = reduceAdd(acc[i][c]);
    }
  }
#pragma GCC unroll 16
  for (size_t i = 0; i < R; i++) {
#pragma GCC unroll 16
    for (size_t c = 0; c < C; c++) {
      float s = sums[i][c];
      for (size_t t = kk; t < K; t++) s += x[i * K + t] * WT::at(w + c * K, t);
      if (a.bias) s += weightAt(a.bias, a.biasDtype, j + c);
      a.y[(r + i) * a.n + j + c] = s;
    }
  }
}

/** Prefetches the lines of [p, p + bytes): into L1 (level 0) or L2 (level 1). */
static inline void prefetchLines(const void* p, size_t bytes, int level) {
  for (size_t o = 0; o < bytes; o += 64) {
    if (level == 0) __builtin_prefetch((const char*)p + o, 0, 3);
    else __builtin_prefetch((const char*)p + o, 0, 2);
  }
}

template <class WT, size_t R, size_t C>
static void rowBlock(const MatmulArgs& a, size_t r, size_t n0, size_t n1) {
  // The micro-kernel prefetches the block after its own; the first block of a range is prefetched
  // here, so a range (a thread's chunk of a matmul) does not start with demand misses on C streams.
  typedef typename WT::T T;
  prefetchLines((const T*)a.w + n0 * a.k, (n1 - n0 < C ? n1 - n0 : C) * a.k * sizeof(T), 1);
  size_t j = n0;
  for (; j + C <= n1; j += C) microKernel<WT, R, C>(a, r, j);
  for (; j < n1; j++) microKernel<WT, R, 1>(a, r, j);
}

template <class WT>
static void matmulT(const MatmulArgs& a, size_t r0, size_t r1, size_t n0, size_t n1) {
  if (r1 - r0 == 1) {
    rowBlock<WT, 1, CB1>(a, r0, n0, n1);
    return;
  }
  size_t rowBytes = a.k * sizeof(typename WT::T);
  size_t tile = rowBytes ? kTileBytes / rowBytes : n1 - n0;
  tile = tile < CB ? CB : tile - tile % CB;
  for (size_t t0 = n0; t0 < n1; t0 += tile) {
    size_t t1 = t0 + tile < n1 ? t0 + tile : n1;
    size_t r = r0;
    for (; r + RB <= r1; r += RB) rowBlock<WT, RB, CB>(a, r, t0, t1);
    switch (r1 - r) {
      case 3: rowBlock<WT, 3, CB>(a, r, t0, t1); break;
      case 2: rowBlock<WT, 2, CB>(a, r, t0, t1); break;
      case 1: rowBlock<WT, 1, CB>(a, r, t0, t1); break;
      default: break;
    }
  }
}

static void matmul(const MatmulArgs& a, size_t r0, size_t r1, size_t n0, size_t n1) {
  if (r0 >= r1 || n0 >= n1) return;
  switch (a.wDtype) {
    case kBF16: matmulT<Bf16W>(a, r0, r1, n0, n1); break;
    case kF16: matmulT<F16W>(a, r0, r1, n0, n1); break;
    default: matmulT<F32W>(a, r0, r1, n0, n1); break;
  }
}

// ---------------------------------------------------------------------------------------------
// rmsNorm (Zhang & Sennrich 2019): y = x / sqrt(mean(x²) + eps) * g
// ---------------------------------------------------------------------------------------------

template <class WT>
static void rmsNormT(const RmsNormArgs& a, size_t r0, size_t r1) {
  const typename WT::T* g = (const typename WT::T*)a.g;
  const size_t dim = a.dim;
  for (size_t r = r0; r < r1; r++) {
    const float* x = a.x + r * dim;
    float* y = a.y + r * dim;
    vf acc0 = splat(0.0f), acc1 = splat(0.0f);
    size_t i = 0;
    for (; i + 2 * W <= dim; i += 2 * W) {
      vf v0 = loadF(x + i), v1 = loadF(x + i + W);
      acc0 += v0 * v0;
      acc1 += v1 * v1;
    }
    for (; i + W <= dim; i += W) {
      vf v = loadF(x + i);
      acc0 += v * v;
    }
    float ss = reduceAdd(acc0 + acc1);
    for (; i < dim; i++) ss += x[i] * x[i];
    const float inv = (float)(1.0 / sqrt((double)ss / (double)dim + (double)a.eps));
    const vf vinv = splat(inv);
    i = 0;
    for (; i + W <= dim; i += W) storeF(y + i, loadF(x + i) * vinv * WT::load(g + i));
    for (; i < dim; i++) y[i] = x[i] * inv * WT::at(g, i);
  }
}

static void rmsNorm(const RmsNormArgs& a, size_t r0, size_t r1) {
  switch (a.gDtype) {
    case kBF16: rmsNormT<Bf16W>(a, r0, r1); break;
    case kF16: rmsNormT<F16W>(a, r0, r1); break;
    default: rmsNormT<F32W>(a, r0, r1); break;
  }
}

// ---------------------------------------------------------------------------------------------
// RoPE (Su et al. 2021, RoFormer), rotate-half layout as Hugging Face's `rotate_half`. Angles are
// computed in double (positions reach 1e5+, where f32 angles lose whole radians' worth of bits);
// the rotation itself is f32 and vectorised over the half-dimension.
// ---------------------------------------------------------------------------------------------

static void rope(const RopeArgs& a, size_t t0, size_t t1, float* scratch) {
  const size_t hd = a.headDim, half = hd / 2;
  float* __restrict cs = scratch;         // [half] cos
  float* __restrict sn = scratch + half;  // [half] sin
  // [half] inverse frequencies, once per range rather than per token (the same doubles: pow was most
  // of a prefill's RoPE time). The scratch holds 2·headDim floats, so these start 8-byte aligned.
  double* __restrict inv = reinterpret_cast<double*>(scratch + hd);
  for (size_t i = 0; i < half; i++) inv[i] = pow(a.theta, (-2.0 * (double)i) / (double)hd);
  for (size_t t = t0; t < t1; t++) {
    const double pos = a.pos0 + (double)t;
    for (size_t i = 0; i < half; i++) {
      double angle = pos * inv[i];
      cs[i] = (float)cos(angle);
      sn[i] = (float)sin(angle);
    }
    for (size_t h = 0; h < a.heads; h++) {
      float* __restrict lo = a.x + (t * a.heads + h) * hd;
      float* __restrict hi = lo + half;
      for (size_t i = 0; i < half; i++) {
        float x0 = lo[i], x1 = hi[i];
        lo[i] = x0 * cs[i] - x1 * sn[i];
        hi[i] = x1 * cs[i] + x0 * sn[i];
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Attention: causal, grouped-query (Ainslie et al. 2023), optional sliding window (Mistral,
// Jiang et al. 2023). One work item is one (token, kv head): the query heads of its group go together;
// scores for their visible positions go to the worker's scratch rows, then a max-subtracted softmax
// and a weighted sum of value rows.
// ---------------------------------------------------------------------------------------------

static inline float dot(const float* a, const float* b, size_t n) {
  vf acc = splat(0.0f);
  size_t i = 0;
  for (; i + W <= n; i += W) acc += loadF(a + i) * loadF(b + i);
  float s = reduceAdd(acc);
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

// Query heads that share a kv head (grouped-query attention) are attended together: each key and value
// row is loaded once for all of them, where one head at a time loaded it once per head. Every score and
// output element is summed in the same order as for a head alone (one accumulator chain per element,
// the same shuffle trees), so the bits do not depend on the grouping. Up to kGroupHeads heads per pass,
// what the vector registers hold (accumulators for 4 positions or 4 vectors of the head per query head).
constexpr size_t kGroupHeads = MOESAIC_W == 16 ? 4 : 2;
constexpr size_t kAttnAhead = 16;  // positions ahead that keys are prefetched (16 KiB at 4 kv heads of 64)

/** NH query heads (q, out: NH rows of hd, one after another) over positions [0, count) of k0/v0. */
template <size_t NH>
static void attendHeads(const float* q, float* out, const float* k0, const float* v0, size_t count, size_t kvStride, size_t hd, float* scores) {
  const size_t body = hd - hd % W;  // the vector part of a head; the rest is a scalar tail
  const float scale = (float)(1.0 / sqrt((double)hd));
  float mx[NH];
#pragma GCC unroll 4
  for (size_t h = 0; h < NH; h++) mx[h] = -__builtin_inff();

  // Scores four positions at a time: four independent accumulators per head and one shuffle tree for
  // their sums (reduceAdd4), each score bit for bit what dot() gives.
  size_t p = 0;
  for (; p + 4 <= count; p += 4) {
    const float* k = k0 + p * kvStride;
    // Rows are kvStride apart, a head's part of each a few lines: too short a stream for the hardware
    // prefetcher. Keys are fetched kAttnAhead positions ahead, and values (read after the softmax) of
    // these positions now, so a cold cache (decode, after a layer's weights went through) is read with
    // many misses in flight.
    for (size_t j = 0; j < 4; j++) {
      prefetchLines(k + (kAttnAhead + j) * kvStride, hd * sizeof(float), 0);
      prefetchLines(v0 + (p + j) * kvStride, hd * sizeof(float), 1);
    }
    vf c[NH][4];
#pragma GCC unroll 4
    for (size_t h = 0; h < NH; h++) c[h][0] = c[h][1] = c[h][2] = c[h][3] = splat(0.0f);
    for (size_t i = 0; i < body; i += W) {
      const vf k0v = loadF(k + i), k1v = loadF(k + kvStride + i), k2v = loadF(k + 2 * kvStride + i), k3v = loadF(k + 3 * kvStride + i);
#pragma GCC unroll 4
      for (size_t h = 0; h < NH; h++) {
        const vf qv = loadF(q + h * hd + i);
        c[h][0] += qv * k0v;
        c[h][1] += qv * k1v;
        c[h][2] += qv * k2v;
        c[h][3] += qv * k3v;
      }
    }
#pragma GCC unroll 4
    for (size_t h = 0; h < NH; h++) {
      float s4[4];
      reduceAdd4(c[h][0], c[h][1], c[h][2], c[h][3], s4);
      for (size_t j = 0; j < 4; j++) {
        float s = s4[j];
        for (size_t i = body; i < hd; i++) s += q[h * hd + i] * k[j * kvStride + i];
        s *= scale;
        scores[h * count + p + j] = s;
        mx[h] = s > mx[h] ? s : mx[h];
      }
    }
  }
  for (; p < count; p++) {
#pragma GCC unroll 4
    for (size_t h = 0; h < NH; h++) {
      float s = dot(q + h * hd, k0 + p * kvStride, hd) * scale;
      scores[h * count + p] = s;
      mx[h] = s > mx[h] ? s : mx[h];
    }
  }
  float sum[NH];
#pragma GCC unroll 4
  for (size_t h = 0; h < NH; h++) {
    float* sc = scores + h * count;
    const vf vmx = splat(mx[h]);
    vf vsum = splat(0.0f);
    p = 0;
    for (; p + W <= count; p += W) {
      vf e = vexp(loadF(sc + p) - vmx);
      storeF(sc + p, e);
      vsum += e;
    }
    sum[h] = reduceAdd(vsum);
    for (; p < count; p++) {
      float e = expf(sc[p] - mx[h]);
      sc[p] = e;
      sum[h] += e;
    }
  }

  // Σ_p e_p · v_p, positions in order, accumulated in registers four vectors of the head at a time.
  size_t d = 0;
  for (; d + 4 * W <= body; d += 4 * W) {
    vf o[NH][4];
#pragma GCC unroll 4
    for (size_t h = 0; h < NH; h++) o[h][0] = o[h][1] = o[h][2] = o[h][3] = splat(0.0f);
    for (p = 0; p < count; p++) {
      const float* v = v0 + p * kvStride + d;
      const vf v0v = loadF(v), v1v = loadF(v + W), v2v = loadF(v + 2 * W), v3v = loadF(v + 3 * W);
#pragma GCC unroll 4
      for (size_t h = 0; h < NH; h++) {
        const vf wp = splat(scores[h * count + p]);
        o[h][0] = o[h][0] + wp * v0v;
        o[h][1] = o[h][1] + wp * v1v;
        o[h][2] = o[h][2] + wp * v2v;
        o[h][3] = o[h][3] + wp * v3v;
      }
    }
#pragma GCC unroll 4
    for (size_t h = 0; h < NH; h++) {
      storeF(out + h * hd + d, o[h][0]);
      storeF(out + h * hd + d + W, o[h][1]);
      storeF(out + h * hd + d + 2 * W, o[h][2]);
      storeF(out + h * hd + d + 3 * W, o[h][3]);
    }
  }
  for (; d + W <= body; d += W) {
    vf o[NH];
#pragma GCC unroll 4
    for (size_t h = 0; h < NH; h++) o[h] = splat(0.0f);
    for (p = 0; p < count; p++) {
      const vf vv = loadF(v0 + p * kvStride + d);
#pragma GCC unroll 4
      for (size_t h = 0; h < NH; h++) o[h] = o[h] + splat(scores[h * count + p]) * vv;
    }
#pragma GCC unroll 4
    for (size_t h = 0; h < NH; h++) storeF(out + h * hd + d, o[h]);
  }
  for (; d < hd; d++) {
#pragma GCC unroll 4
    for (size_t h = 0; h < NH; h++) {
      float o = 0.0f;
      for (p = 0; p < count; p++) o += scores[h * count + p] * v0[p * kvStride + d];
      out[h * hd + d] = o;
    }
  }
#pragma GCC unroll 4
  for (size_t h = 0; h < NH; h++) {
    const float inv = 1.0f / sum[h];
    for (d = 0; d < hd; d++) out[h * hd + d] *= inv;
  }
}

/** Items [i0, i1) of (token, kv head): every query head of the kv head's group, for that token. */
static void attention(const AttentionArgs& a, size_t i0, size_t i1, float* scores) {
  const size_t hd = a.headDim;
  const size_t group = a.heads / a.kvHeads;
  const size_t kvStride = a.kvHeads * hd;
  for (size_t item = i0; item < i1; item++) {
    const size_t t = item / a.kvHeads, g = item % a.kvHeads;
    const size_t pos = a.pos0 + t;
    const size_t first = a.window > 0 && pos + 1 > a.window ? pos + 1 - a.window : 0;
    const size_t count = pos + 1 - first;
    const float* k0 = a.k + first * kvStride + g * hd;
    const float* v0 = a.v + first * kvStride + g * hd;
    for (size_t h = g * group; h < (g + 1) * group;) {
      const float* q = a.q + (t * a.heads + h) * hd;
      float* out = a.out + (t * a.heads + h) * hd;
      const size_t n = (g + 1) * group - h < kGroupHeads ? (g + 1) * group - h : kGroupHeads;
      switch (n) {
        case 4: attendHeads<4>(q, out, k0, v0, count, kvStride, hd, scores); break;
        case 3: attendHeads<3>(q, out, k0, v0, count, kvStride, hd, scores); break;
        case 2: attendHeads<2>(q, out, k0, v0, count, kvStride, hd, scores); break;
        default: attendHeads<1>(q, out, k0, v0, count, kvStride, hd, scores); break;
      }
      h += n;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// SwiGLU activation (Shazeer 2020): out = silu(gate) * up, silu(g) = g / (1 + e^-g).
// ---------------------------------------------------------------------------------------------

static void siluMul(const SiluMulArgs& a, size_t i0, size_t i1) {
  const vf one = splat(1.0f);
  size_t i = i0;
  for (; i + W <= i1; i += W) {
    vf g = loadF(a.gate + i), u = loadF(a.up + i);
    storeF(a.out + i, g / (one + vexp(-g)) * u);
  }
  for (; i < i1; i++) {
    float g = a.gate[i];
    a.out[i] = g / (1.0f + expf(-g)) * a.up[i];
  }
}

// Four independent accumulators of full-width loads: as close to a pure read stream as C gets, so the
// measured rate is the memory system's, not the adder's.
static float streamSum(const float* x, size_t n) {
  vf a0 = splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    a0 += loadF(x + i);
    a1 += loadF(x + i + W);
    a2 += loadF(x + i + 2 * W);
    a3 += loadF(x + i + 3 * W);
  }
  vf t = (a0 + a1) + (a2 + a3);
  float s = 0;
  for (size_t l = 0; l < W; l++) s += t[l];
  for (; i < n; i++) s += x[i];
  return s;
}

}  // namespace
}  // namespace MOESAIC_ISA_NS

extern const Kernels MOESAIC_KERNELS;
const Kernels MOESAIC_KERNELS = {
    MOESAIC_ISA_NAME,
    MOESAIC_ISA_NS::CB1 > MOESAIC_ISA_NS::CB ? MOESAIC_ISA_NS::CB1 : MOESAIC_ISA_NS::CB,
    MOESAIC_ISA_NS::matmul,
    MOESAIC_ISA_NS::rmsNorm,
    MOESAIC_ISA_NS::rope,
    MOESAIC_ISA_NS::attention,
    MOESAIC_ISA_NS::siluMul,
    MOESAIC_ISA_NS::streamSum,
};

}  // namespace moesaic
