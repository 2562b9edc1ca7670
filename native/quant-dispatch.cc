// Runs quantized products (quant.h) on the kernels' thread pool with the table matching the active
// instruction set: AVX-512 with VNNI -> vpdpbusd, AVX-512 without VNNI or AVX2 -> vpmaddubsw, else C.
#include "quant-dispatch.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "dispatch.h"
#include "dtype.h"
#include "pool.h"

namespace moesaic {

bool isQuantDtype(int dtype) { return dtype >= kQ4_0 && dtype <= kQ6_K; }

size_t quantBlock(int dtype) { return dtype == kQ4_0 || dtype == kQ8_0 ? 32 : 256; }

size_t quantBlockBytes(int dtype) {
  switch (dtype) {
    case kQ4_0: return 18;
    case kQ8_0: return 34;
    case kQ4_K: return 144;
    case kQ5_K: return 176;
    case kQ6_K: return 210;
    default: return 0;
  }
}

namespace {

bool cpuHasVnni() {
#if defined(MOESAIC_X86)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

const QuantKernels* table() {
#if defined(MOESAIC_X86)
  const char* isa = currentIsa();
  static const bool vnni = cpuHasVnni();
  if (strcmp(isa, "avx512") == 0) return vnni ? &kQuantAvx512Vnni : &kQuantAvx2;
  if (strcmp(isa, "avx2") == 0) return &kQuantAvx2;
#endif
  return &kQuantPortable;
}

struct Job {
  const QuantKernels* t;
  const QuantMatmulArgs* a;
  QuantActs x;
  size_t chunk;
};

void chunk(void* ctx, size_t c, float* scratch) {
  const Job& j = *static_cast<const Job*>(ctx);
  const size_t n0 = std::min(j.a->n, c * j.chunk), n1 = std::min(j.a->n, n0 + j.chunk);
  if (n0 < n1) j.t->matmul(*j.a, j.x, n0, n1, scratch);
}

// Activation codes of the current call, grown only (one call at a time: the pool serialises jobs).
struct ActBuffers {
  std::vector<int8_t> q;
  std::vector<float> dx, qs16, xs32;
};

}  // namespace

const char* quantIsa() { return table()->name; }

void runQuantMatmul(const QuantMatmulArgs& a, const float* x) {
  if (a.rows == 0 || a.n == 0) return;
  const QuantKernels* t = table();
  thread_local ActBuffers buf;
  const size_t elems = a.rows * a.k;
  if (buf.q.size() < elems) {
    buf.q.resize(elems);
    buf.dx.resize(elems / 32);
    buf.xs32.resize(elems / 32);
    buf.qs16.resize(elems / 16);
  }
  t->quantizeActs(x, a.rows, a.k, buf.q.data(), buf.dx.data(), buf.qs16.data(), buf.xs32.data());
  Job job{t, &a, {buf.q.data(), buf.dx.data(), buf.qs16.data(), buf.xs32.data()}, 0};
  // A part is worth a thread from 2^16 multiply-adds on (as the float kernels); chunks are handed out
  // four per thread through the pool's counter.
  const size_t work = a.rows * a.n * a.k * (a.up ? 2 : 1);
  const size_t threads = static_cast<size_t>(threadCount());
  const size_t parts = std::max<size_t>(1, std::min({threads, work >> 16, a.n}));
  const size_t chunks = parts == 1 ? 1 : std::min(a.n, parts * 4);
  job.chunk = (a.n + chunks - 1) / chunks;
  sharedPool().run((a.n + job.chunk - 1) / job.chunk, chunk, &job, quantScratchFloats(a.k));
}

}  // namespace moesaic
