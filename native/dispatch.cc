#include "dispatch.h"
#include "schedule.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>

#include <stdint.h>
#include <sys/mman.h>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

#include "dtype.h"
#if defined(MOESAIC_BF16DOT)
#include "kernels-bf16dot.h"
#endif
#include "pool.h"

namespace moesaic {
namespace {

// Below this many multiply-adds per part, waking another thread costs more than it saves.
constexpr size_t kMinWorkPerPart = 1 << 16;

bool cpuHas(const std::string& isa) {
  if (isa == "portable") return true;
#if defined(MOESAIC_X86)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  if (isa == "avx2") return avx2;
  if (isa == "avx512")
    return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#endif
  return false;
}

const Kernels* tableFor(const std::string& isa) {
  if (isa == "portable") return &kPortableKernels;
#if defined(MOESAIC_X86)
  if (isa == "avx2") return &kAvx2Kernels;
  if (isa == "avx512") return &kAvx512Kernels;
#endif
  return nullptr;
}

const Kernels* bestTable() {
  std::vector<std::string> all = supportedIsas();
  return tableFor(all.back());
}

std::atomic<const Kernels*> active{bestTable()};

// The CPUs this process may run on (respects taskset / container cpusets, unlike the count of CPUs
// online), so the default pool never oversubscribes the cores it actually has.
int defaultThreads() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, std::min(CPU_COUNT(&set), 256));
#endif
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(std::min(n, 256u));
}

// Process-wide and never destroyed: worker threads must not be joined from static destructors while
// Node tears the process down.
ThreadPool& pool() {
  static ThreadPool* p = new ThreadPool(defaultThreads());
  return *p;
}

}  // namespace

int partsFor(size_t work, size_t maxUseful) {
  size_t byWork = work / kMinWorkPerPart;
  size_t parts = std::min<size_t>({static_cast<size_t>(pool().size()), byWork, maxUseful});
  return parts < 1 ? 1 : static_cast<int>(parts);
}

namespace {

size_t ceilDiv(size_t a, size_t b) { return (a + b - 1) / b; }

// Each op is cut into kChunksPerPart chunks per thread worth using (matmul: guided chunk sizes,
// schedule.h); the pool hands chunks out through
// an atomic counter, so a thread whose core is busy with another process takes fewer of them instead
// of holding everyone up, as a static split would. Which thread computes a chunk never changes its
// values (see kernels-impl.h), so results do not depend on the thread count.
constexpr size_t kChunksPerPart = 4;

// ---- matmul: over output columns in blocks (each chunk streams its own slice of the weights), or
// over rows when there are too few columns to share; chunks of guided sizes (schedule.h).
struct MatmulJob {
  const Kernels* k;
  const MatmulArgs* a;
  size_t unit;  // columns (byCols) or rows per unit
  bool byCols;
  GuidedChunks chunks;
};

// The shortest chunk worth a hand-off: ~4 us of streaming on one core.
constexpr size_t kMinChunkBytes = 64 * 1024;

void matmulChunk(void* ctx, size_t c, float*) {
  const MatmulJob& j = *static_cast<const MatmulJob*>(ctx);
  const size_t limit = j.byCols ? j.a->n : j.a->rows;
  const size_t b = std::min(limit, j.chunks.bounds[c] * j.unit), e = std::min(limit, j.chunks.bounds[c + 1] * j.unit);
  if (b >= e) return;
  if (j.byCols)
    matmulRange(j.k, *j.a, 0, j.a->rows, b, e);
  else
    matmulRange(j.k, *j.a, b, e, 0, j.a->n);
}

// ---- attention: contiguous ranges of (token, kv head) items with equal shares of the causal cost
// (a later token sees more positions), so prefill chunks are of even size.
constexpr size_t kMaxChunks = 256 * kChunksPerPart;

// Items of several sequences are numbered one after another: sequence s owns items [first[s],
// first[s + 1]) (its tokens × heads), so one job covers a whole batched step.
struct AttentionJob {
  const Kernels* k;
  const AttentionArgs* seqs;
  const size_t* first;  // [n + 1]
  size_t n;
  size_t bounds[kMaxChunks + 1];
};

size_t visible(const AttentionArgs& a, size_t t) {
  size_t pos = a.pos0 + t;
  return a.window > 0 && pos + 1 > a.window ? a.window : pos + 1;
}

void attentionChunk(void* ctx, size_t c, float* scratch) {
  const AttentionJob& j = *static_cast<const AttentionJob*>(ctx);
  size_t b = j.bounds[c];
  const size_t e = j.bounds[c + 1];
  size_t s = static_cast<size_t>(std::upper_bound(j.first, j.first + j.n + 1, b) - j.first) - 1;
  for (; b < e && s < j.n; s++) {
    const size_t end = std::min(e, j.first[s + 1]);
    if (b < end) j.k->attention(j.seqs[s], b - j.first[s], end - j.first[s], scratch);
    b = std::max(b, end);
  }
}

// ---- rows / tokens / elements: equal contiguous ranges.
struct RangeJob {
  const Kernels* k;
  const void* args;
  size_t chunk, total;
  void (*body)(const Kernels* k, const void* args, size_t b, size_t e, float* scratch);
};

void rangeChunk(void* ctx, size_t c, float* scratch) {
  const RangeJob& j = *static_cast<const RangeJob*>(ctx);
  const size_t b = std::min(j.total, c * j.chunk), e = std::min(j.total, b + j.chunk);
  if (b < e) j.body(j.k, j.args, b, e, scratch);
}

// Runs body over [0, total) in chunks of a multiple of `align`, on `parts` threads' worth of chunks.
void runRange(const Kernels* k, const void* args, size_t total, size_t align, int parts, size_t scratch,
              void (*body)(const Kernels*, const void*, size_t, size_t, float*)) {
  const size_t chunks = parts == 1 ? 1 : std::min(total, static_cast<size_t>(parts) * kChunksPerPart);
  RangeJob job{k, args, 0, total, body};
  job.chunk = chunks ? ceilDiv(ceilDiv(total, chunks), align) * align : total;
  pool().run(job.chunk ? ceilDiv(total, job.chunk) : 1, rangeChunk, &job, scratch);
}

// ---- the bf16 precision mode (docs/kernels.md). The vdpbf16ps kernel runs where it was built, the CPU
// reports AVX-512 BF16 and the AVX-512 table is active (forcing a narrower table runs the fallback).
bool bf16DotUsable(const Kernels* k) {
#if defined(MOESAIC_BF16DOT)
  static const bool cpu = [] {
    __builtin_cpu_init();
    return cpuHas("avx512") && __builtin_cpu_supports("avx512bf16");
  }();
  return cpu && k == &kAvx512Kernels;
#else
  (void)k;
  return false;
#endif
}

// f32 -> the nearest bf16 (ties to even) as an f32, NaN kept and quietened (what llama.cpp and torch do).
inline float roundToBf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  u = (u & 0x7fffffffu) > 0x7f800000u ? (u | 0x00400000u) & 0xffff0000u : (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  memcpy(&f, &u, 4);
  return f;
}

// The fallback where vdpbf16ps cannot run: the rows of x rounded to bf16, then the exact kernels. The
// rounded rows go to a stack buffer, as many rows at a time as fit (the f32 kernels give a row the same
// bits whatever rows it is computed with); only a row longer than the buffer makes a heap copy.
constexpr size_t kRoundedFloats = 8192;

void matmulRoundedX(const Kernels* k, const MatmulArgs& a, size_t r0, size_t r1, size_t n0, size_t n1) {
  float stackRows[kRoundedFloats];
  std::unique_ptr<float[]> heapRow;
  float* buf = stackRows;
  if (a.k > kRoundedFloats) {
    heapRow.reset(new float[a.k]);
    buf = heapRow.get();
  }
  const size_t group = a.k == 0 || a.k > kRoundedFloats ? 1 : kRoundedFloats / a.k;
  for (size_t r = r0; r < r1; r += group) {
    const size_t rows = std::min(group, r1 - r);
    for (size_t i = 0; i < rows * a.k; i++) buf[i] = roundToBf16(a.x[r * a.k + i]);
    MatmulArgs b = a;
    b.x = buf;
    b.y = a.y + r * a.n;
    b.rows = rows;
    b.precision = kPrecisionExact;
    k->matmul(b, 0, rows, n0, n1);
  }
}

}  // namespace

void matmulRange(const Kernels* k, const MatmulArgs& a, size_t r0, size_t r1, size_t n0, size_t n1) {
  if (a.precision == kPrecisionBf16 && a.wDtype == kBF16) {
    if (bf16DotUsable(k)) return matmulBf16Dot(a, r0, r1, n0, n1);
    return matmulRoundedX(k, a, r0, r1, n0, n1);
  }
  k->matmul(a, r0, r1, n0, n1);
}

const Kernels* activeKernels() { return active.load(); }

bool bf16DotActive() { return bf16DotUsable(active.load()); }

std::vector<std::string> supportedIsas() {
  std::vector<std::string> out;
  for (const char* name : {"portable", "avx2", "avx512"})
    if (cpuHas(name) && tableFor(name)) out.push_back(name);
  return out;
}

const char* currentIsa() { return active.load()->name; }

bool selectIsa(const std::string& name) {
  const Kernels* t = tableFor(name);
  if (!t || !cpuHas(name)) return false;
  active.store(t);
  return true;
}

int threadCount() { return pool().size(); }

ThreadPool& sharedPool() { return pool(); }

void setPoolProfiling(bool on) { pool().setProfiling(on); }

PoolStats poolStats() { return pool().stats(); }

void setThreadCount(int n) { pool().resize(std::max(1, std::min(n, 256))); }

void runMatmul(const MatmulArgs& a) {
  const Kernels* k = active.load();
  const size_t maxParts = std::max(ceilDiv(a.n, k->matmulColBlock), a.rows);
  const int parts = partsFor(a.rows * a.n * std::max<size_t>(a.k, 1), maxParts);
  if (parts == 1) {
    matmulRange(k, a, 0, a.rows, 0, a.n);
    return;
  }
  const size_t cb = k->matmulColBlock;
  MatmulJob job{k, &a, 1, a.n >= static_cast<size_t>(parts) * kChunksPerPart * cb || a.rows < static_cast<size_t>(parts), {}};
  if (job.byCols) {
    job.unit = cb;
    const size_t unitBytes = cb * std::max<size_t>(a.k, 1) * (a.wDtype == kF32 ? 4 : 2);
    job.chunks.plan(ceilDiv(a.n, cb), static_cast<size_t>(parts), kMinChunkBytes / unitBytes);
  } else {
    job.chunks.plan(a.rows, static_cast<size_t>(parts), 1);
  }
  pool().run(job.chunks.count, matmulChunk, &job);
}

void runRmsNorm(const RmsNormArgs& a) {
  const Kernels* k = active.load();
  const int parts = partsFor(a.rows * a.dim * 2, a.rows);
  if (parts == 1) return k->rmsNorm(a, 0, a.rows);
  runRange(k, &a, a.rows, 1, parts, 0, [](const Kernels* k, const void* p, size_t b, size_t e, float*) {
    k->rmsNorm(*static_cast<const RmsNormArgs*>(p), b, e);
  });
}

// Tokens of several sequences, numbered one after another (sequence s owns [first[s], first[s+1])).
struct RopeJob {
  const Kernels* k;
  const RopeArgs* seqs;
  const size_t* first;
  size_t n, chunk, total;
};

void ropeChunk(void* ctx, size_t c, float* scratch) {
  const RopeJob& j = *static_cast<const RopeJob*>(ctx);
  size_t b = std::min(j.total, c * j.chunk);
  const size_t e = std::min(j.total, b + j.chunk);
  size_t s = static_cast<size_t>(std::upper_bound(j.first, j.first + j.n + 1, b) - j.first) - 1;
  for (; b < e && s < j.n; s++) {
    const size_t end = std::min(e, j.first[s + 1]);
    if (b < end) j.k->rope(j.seqs[s], b - j.first[s], end - j.first[s], scratch);
    b = std::max(b, end);
  }
}

void runRope(const RopeArgs* seqs, size_t n) {
  const Kernels* k = active.load();
  if (n == 0) return;
  // Grow-only per calling thread: no allocation per call once the largest batch has been seen.
  thread_local std::vector<size_t> first;
  if (first.size() < n + 1) first.resize(n + 1);
  first[0] = 0;
  for (size_t s = 0; s < n; s++) first[s + 1] = first[s] + seqs[s].tokens;
  const size_t total = first[n];
  if (total == 0) return;
  // Trigonometry costs about as much as rotating ~32 heads' worth of elements.
  const int parts = partsFor(total * (seqs[0].heads + 32) * seqs[0].headDim, total);
  const size_t chunks = parts == 1 ? 1 : std::min(total, static_cast<size_t>(parts) * kChunksPerPart);
  RopeJob job{k, seqs, first.data(), n, ceilDiv(total, chunks), total};
  pool().run(ceilDiv(total, job.chunk), ropeChunk, &job, 2 * seqs[0].headDim);
}

void runAttention(const AttentionArgs* seqs, size_t n) {
  const Kernels* k = active.load();
  if (n == 0) return;
  thread_local std::vector<size_t> items;  // grow-only, as in runRope
  if (items.size() < n + 1) items.resize(n + 1);
  items[0] = 0;
  size_t cost = 0, maxVisible = 1;
  for (size_t s = 0; s < n; s++) {
    const AttentionArgs& a = seqs[s];
    items[s + 1] = items[s] + a.tokens * a.kvHeads;
    for (size_t t = 0; t < a.tokens; t++) cost += visible(a, t) * a.heads;
    if (a.tokens) maxVisible = std::max(maxVisible, visible(a, a.tokens - 1));
  }
  const size_t total = items[n];
  if (total == 0) return;
  const int parts = partsFor(cost * seqs[0].headDim * 2, total);
  const size_t chunks = parts == 1 ? 1 : std::min({total, static_cast<size_t>(parts) * kChunksPerPart, kMaxChunks});
  AttentionJob job;
  job.k = k;
  job.seqs = seqs;
  job.first = items.data();
  job.n = n;
  job.bounds[0] = 0;
  // Equal shares of the causal cost (a later token sees more positions), so chunks are of even size.
  const size_t perChunk = ceilDiv(cost, chunks);
  size_t acc = 0, item = 0, s = 0;
  for (size_t c = 1; c < chunks; c++) {
    while (item < total && acc < perChunk * c) {
      while (item >= items[s + 1]) s++;
      acc += visible(seqs[s], (item - items[s]) / seqs[s].kvHeads) * (seqs[s].heads / seqs[s].kvHeads);
      item++;
    }
    job.bounds[c] = item;
  }
  job.bounds[chunks] = total;
  pool().run(chunks, attentionChunk, &job, maxVisible * (seqs[0].heads / seqs[0].kvHeads));
}

void runSiluMul(const SiluMulArgs& a) {
  const Kernels* k = active.load();
  const int parts = partsFor(a.n * 8, a.n);
  if (parts == 1) return k->siluMul(a, 0, a.n);
  runRange(k, &a, a.n, 16, parts, 0, [](const Kernels* k, const void* p, size_t b, size_t e, float*) {
    k->siluMul(*static_cast<const SiluMulArgs*>(p), b, e);
  });
}

// ---- SwiGLU: one pool job instead of gate matmul + up matmul + siluMul. Each chunk projects its tile
// of rows x columns through both weights into the participant's scratch (so the tile is still in L1/L2
// when SiLU·up combines it) and writes only the product. The projections are bit-identical to the
// unfused matmuls; SiLU's exp can differ in the last bits where a row segment's tail is scalar.
struct SwiGluJob {
  const Kernels* k;
  const SwiGluArgs* a;
  size_t chunkRows, chunkCols, colChunks;
};

void swiGluChunk(void* ctx, size_t c, float* scratch) {
  const SwiGluJob& j = *static_cast<const SwiGluJob*>(ctx);
  const SwiGluArgs& a = *j.a;
  const size_t r0 = (c / j.colChunks) * j.chunkRows, r1 = std::min(a.rows, r0 + j.chunkRows);
  const size_t n0 = (c % j.colChunks) * j.chunkCols, n1 = std::min(a.n, n0 + j.chunkCols);
  if (r0 >= r1 || n0 >= n1) return;
  const size_t R = r1 - r0, w = n1 - n0, elem = a.wDtype == kF32 ? 4 : 2;
  float* g = scratch;      // [R, w]
  float* u = scratch + R * w;  // [R, w]
  MatmulArgs mg{g, a.x + r0 * a.k, static_cast<const char*>(a.wg) + n0 * a.k * elem, nullptr, a.wDtype, 0, R, w, a.k, a.precision};
  MatmulArgs mu = mg;
  mu.y = u;
  mu.w = static_cast<const char*>(a.wu) + n0 * a.k * elem;
  matmulRange(j.k, mg, 0, R, 0, w);
  matmulRange(j.k, mu, 0, R, 0, w);
  for (size_t i = 0; i < R; i++) {
    SiluMulArgs s{a.out + (r0 + i) * a.n + n0, g + i * w, u + i * w, w};
    j.k->siluMul(s, 0, w);
  }
}

void runSwiGlu(const SwiGluArgs& a) {
  const Kernels* k = active.load();
  if (a.rows == 0 || a.n == 0) return;
  const size_t cb = k->matmulColBlock;
  const int parts = partsFor(2 * a.rows * a.n * std::max<size_t>(a.k, 1), std::max(ceilDiv(a.n, cb), a.rows));
  const size_t chunks = static_cast<size_t>(parts) * kChunksPerPart;
  // Split columns when there are enough to share (decode: one row), else rows; tiles of at most
  // kMaxTileCols columns keep the scratch small whatever the batch.
  // Tiles start at multiples of kTileAlign (a multiple of every vector width and column block), so
  // whether an element's SiLU is computed by the vector body or a scalar tail depends only on n, never
  // on the tiling: results are the same for any thread count.
  constexpr size_t kMaxTileCols = 512, kTileAlign = 64;
  SwiGluJob job{k, &a, a.rows, 0, 0};
  if (a.n >= chunks * cb || a.rows < static_cast<size_t>(parts)) {
    job.chunkCols = std::min(kMaxTileCols, ceilDiv(ceilDiv(a.n, chunks), kTileAlign) * kTileAlign);
  } else {
    job.chunkRows = ceilDiv(a.rows, std::min(chunks, a.rows));
    job.chunkCols = std::min(kMaxTileCols, a.n);
  }
  job.colChunks = ceilDiv(a.n, job.chunkCols);
  const size_t total = ceilDiv(a.rows, job.chunkRows) * job.colChunks;
  pool().run(total, swiGluChunk, &job, 2 * job.chunkRows * job.chunkCols);
}

double measureReadBandwidth(size_t bytes, int reps) {
  const Kernels* k = active.load();
  const size_t n = bytes / sizeof(float);
  // In huge pages where the kernel has them, as the weights are (--hugepages): the yardstick is the
  // best streaming read this machine does, not one slowed by a TLB miss every 4 KiB.
  constexpr size_t kHuge = size_t(2) << 20;
  const size_t mapped = n * sizeof(float) + kHuge;
  void* raw = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return 0.0;
  float* data = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(raw) + kHuge - 1) & ~(kHuge - 1));
#if defined(MADV_HUGEPAGE)
  madvise(data, n * sizeof(float), MADV_HUGEPAGE);
#endif
  struct Unmap {
    void* p;
    size_t len;
    ~Unmap() { munmap(p, len); }
  } unmap{raw, mapped};
  float* buf = data;
  for (size_t i = 0; i < n; i++) buf[i] = static_cast<float>(i & 1023);  // touch every page
  struct Job {
    const Kernels* k;
    const float* x;
    size_t n, chunk;
    std::atomic<float> sink;
  } job{k, buf, n, 0, {0.0f}};
  const size_t chunks = static_cast<size_t>(pool().size()) * 16;
  job.chunk = ceilDiv(n, chunks);
  double best = 1e30;
  for (int r = 0; r < std::max(1, reps); r++) {
    auto t0 = std::chrono::steady_clock::now();
    pool().run(chunks, [](void* ctx, size_t c, float*) {
      Job& j = *static_cast<Job*>(ctx);
      const size_t b = std::min(j.n, c * j.chunk), e = std::min(j.n, b + j.chunk);
      float s = j.k->streamSum(j.x + b, e - b);
      j.sink.store(s, std::memory_order_relaxed);  // keep the reads alive
    }, &job);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return static_cast<double>(n * sizeof(float)) / best / 1e9;
}

}  // namespace moesaic
