// A tiny vector abstraction over GCC/Clang vector extensions, so one kernel source (kernels-impl.h)
// compiles to SSE2 (portable), AVX2+FMA+F16C or AVX-512 depending on the translation unit's -m flags.
// Width W is 4, 8 or 16 floats. Everything here is `static inline` inside the per-ISA namespace the
// including file opens, so no symbol compiled with wide instructions can leak into another ISA's code
// through the linker's merging of inline functions (which would crash CPUs without that ISA).
//
// Included only from kernels-impl.h, inside namespace moesaic::MOESAIC_ISA_NS.

#if defined(__AVX512F__)
#define MOESAIC_W 16
#elif defined(__AVX2__)
#define MOESAIC_W 8
#else
#define MOESAIC_W 4
#endif

constexpr size_t W = MOESAIC_W;

typedef float vf __attribute__((vector_size(MOESAIC_W * 4)));
typedef int32_t vi __attribute__((vector_size(MOESAIC_W * 4)));
typedef uint32_t vu __attribute__((vector_size(MOESAIC_W * 4)));
typedef uint16_t vh __attribute__((vector_size(MOESAIC_W * 2)));

static inline vf splat(float s) { return vf{} + s; }

static inline vf loadF(const float* p) {
  vf v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline void storeF(float* p, vf v) { memcpy(p, &v, sizeof v); }

/** bf16 is the top half of an f32: widen by shifting the 16 bits into the high half of each lane. */
static inline vf loadBf16(const uint16_t* p) {
#if defined(__AVX512F__)
  return (vf)((vu)_mm512_maskz_cvtepu16_epi32((__mmask16)0xffff, _mm256_loadu_si256((const __m256i*)p)) << 16);
#elif defined(__AVX2__)
  return (vf)_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16);
#endif
  vh h;
  memcpy(&h, p, sizeof h);
  return (vf)(__builtin_convertvector(h, vu) << 16);
}

static inline float bf16Scalar(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/**
 * IEEE half -> f32 without F16C: move exponent and mantissa into f32 position, rebias the exponent,
 * fix Inf/NaN (exponent 31) and renormalise subnormals with one float subtraction.
 */
static inline vf f16Bits(vu h) {
  const vu magic = (vu){} + (113u << 23);  // 2^-14 as f32 bits
  vu o = (h & 0x7fffu) << 13;
  vu exp = o & (0x7c00u << 13);
  o += (127u - 15u) << 23;
  vu isInf = (vu)(exp == (0x7c00u << 13));
  o += isInf & ((128u - 16u) << 23);
  vu isSub = (vu)(exp == 0u);
  vf sub = (vf)(o + (1u << 23)) - (vf)magic;
  o = (isSub & (vu)sub) | (~isSub & o);
  return (vf)(o | ((h & 0x8000u) << 16));
}

static inline vf loadF16(const uint16_t* p) {
#if defined(__AVX512F__)
  // The masked form with an explicit zero source sidesteps a false -Wmaybe-uninitialized in GCC 12's
  // headers (GCC bug 105593); with an all-ones mask it is the same single vcvtph2ps.
  return (vf)_mm512_mask_cvtph_ps(_mm512_setzero_ps(), (__mmask16)0xffff, _mm256_loadu_si256((const __m256i*)p));
#elif defined(__F16C__)
  return (vf)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p));
#else
  vh h;
  memcpy(&h, p, sizeof h);
  return f16Bits(__builtin_convertvector(h, vu));
#endif
}

static inline float f16Scalar(uint16_t h) {
  uint32_t o = (uint32_t)(h & 0x7fffu) << 13;
  uint32_t exp = o & (0x7c00u << 13);
  o += (127u - 15u) << 23;
  if (exp == (0x7c00u << 13)) {
    o += (128u - 16u) << 23;
  } else if (exp == 0) {
    o += 1u << 23;
    float f, magic;
    uint32_t m = 113u << 23;
    memcpy(&f, &o, 4);
    memcpy(&magic, &m, 4);
    f -= magic;
    memcpy(&o, &f, 4);
  }
  o |= (uint32_t)(h & 0x8000u) << 16;
  float f;
  memcpy(&f, &o, 4);
  return f;
}

typedef float vf8 __attribute__((vector_size(32)));
typedef float vf4 __attribute__((vector_size(16)));

/** Horizontal sum as a balanced tree of half-width adds (fewer dependent adds than a lane loop). */
static inline float reduceAdd(vf v) {
#if MOESAIC_W == 16
  vf8 v8 = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
           __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
#elif MOESAIC_W == 8
  vf8 v8 = v;
#endif
#if MOESAIC_W >= 8
  vf4 v4 = __builtin_shufflevector(v8, v8, 0, 1, 2, 3) + __builtin_shufflevector(v8, v8, 4, 5, 6, 7);
#else
  vf4 v4 = v;
#endif
  return (v4[0] + v4[2]) + (v4[1] + v4[3]);
}

/**
 * reduceAdd of four vectors at once, bit for bit: the same pairs are added in the same tree
 * (lanes i and i+8, then i and i+4, then (0+2) + (1+3)), four vectors per shuffle instead of one.
 */
static inline void reduceAdd4(vf a, vf b, vf c, vf d, float* out) {
#if MOESAIC_W == 16
  vf ab = __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
          __builtin_shufflevector(a, b, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  vf cd = __builtin_shufflevector(c, d, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
          __builtin_shufflevector(c, d, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  // ab = [a8 | b8], cd = [c8 | d8]; now lanes i and i+4 of each 8
  vf q = __builtin_shufflevector(ab, cd, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +
         __builtin_shufflevector(ab, cd, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
  // q = [a4 | b4 | c4 | d4]; then (0 + 2) and (1 + 3) of each 4, then their sum
  vf8 h = __builtin_shufflevector(q, q, 0, 1, 4, 5, 8, 9, 12, 13) + __builtin_shufflevector(q, q, 2, 3, 6, 7, 10, 11, 14, 15);
  vf4 r = __builtin_shufflevector(h, h, 0, 2, 4, 6) + __builtin_shufflevector(h, h, 1, 3, 5, 7);
  memcpy(out, &r, sizeof r);
#else
  out[0] = reduceAdd(a);
  out[1] = reduceAdd(b);
  out[2] = reduceAdd(c);
  out[3] = reduceAdd(d);
#endif
}

static inline float reduceMax(vf v) {
  float m = v[0];
  for (size_t i = 1; i < W; i++) m = v[i] > m ? v[i] : m;
  return m;
}

/**
 * e^x for a whole vector: round n = x·log2(e) to nearest, reduce r = x − n·ln2 (Cody–Waite split of
 * ln2), e^r by its degree-6 Taylor polynomial (|r| <= ln2/2, error < 2^-23), then scale by 2^n through
 * the exponent bits. Overflow gives +Inf, underflow 0, NaN stays NaN, as libm's expf.
 */
static inline vf vexp(vf x) {
  const vf shifter = splat(12582912.0f);  // 1.5·2^23: adding it rounds to an integer in the low bits
  vf t = x * splat(1.44269504088896341f) + shifter;
  vf n = t - shifter;
  vf r = x - n * splat(0.693359375f);
  r = r - n * splat(-2.12194440e-4f);
  vf p = splat(1.0f / 720);
  p = p * r + splat(1.0f / 120);
  p = p * r + splat(1.0f / 24);
  p = p * r + splat(1.0f / 6);
  p = p * r + splat(0.5f);
  p = p * r + splat(1.0f);
  p = p * r + splat(1.0f);
  // 2^n applied as two factors 2^(n/2)·2^(n-n/2), each a normal float, so results near the
  // overflow bound and in the subnormal range come out right.
  vi ni = __builtin_convertvector(n, vi);
  vi n1 = ni / 2;
  vi n2 = ni - n1;
  vf y = p * (vf)((n1 + 127) << 23) * (vf)((n2 + 127) << 23);
  y = x > splat(88.7228394f) ? splat(__builtin_inff()) : y;
  y = x < splat(-103.972084f) ? splat(0.0f) : y;
  return y;
}

// Element-type policies for weights: vector load widened to f32, and scalar element at i.
struct F32W {
  typedef float T;
  static inline vf load(const T* p) { return loadF(p); }
  static inline float at(const T* p, size_t i) { return p[i]; }
};
struct Bf16W {
  typedef uint16_t T;
  static inline vf load(const T* p) { return loadBf16(p); }
  static inline float at(const T* p, size_t i) { return bf16Scalar(p[i]); }
};
struct F16W {
  typedef uint16_t T;
  static inline vf load(const T* p) { return loadF16(p); }
  static inline float at(const T* p, size_t i) { return f16Scalar(p[i]); }
};

static inline float weightAt(const void* p, int dtype, size_t i) {
  switch (dtype) {
    case kBF16: return Bf16W::at((const uint16_t*)p, i);
    case kF16: return F16W::at((const uint16_t*)p, i);
    default: return F32W::at((const float*)p, i);
  }
}
