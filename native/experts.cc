// The grouped experts op (experts.h). Decode runs two products per expert, each a pool job a few tens
// of microseconds long, so per-job costs (publishing, waking, the caller waiting for the last chunk)
// add up, and with one job per expert the chunks of a job cannot balance across experts. Here every
// group's tiles are chunks of one job: phase 1 computes gate and up of a tile of rows × ffn columns
// into the participant's scratch and writes silu(gate)·up (as runSwiGlu does), phase 2 the down
// projection of a tile of rows × hidden columns. Tiles follow the same alignment as runSwiGlu (ffn
// columns at multiples of 64), and every matmul element is computed by matmulRange, so the results are
// those of the per-expert ops, bit for bit, whatever the thread count.
#include "experts.h"

#include <algorithm>
#include <vector>

#include "dispatch.h"
#include "dtype.h"
#include "pool.h"
#include "schedule.h"

namespace moesaic {
namespace {

constexpr size_t kMaxTileCols = 512;   // ffn columns per phase-1 chunk (scratch: 2 · rows · cols floats)
constexpr size_t kTileAlign = 64;      // as runSwiGlu: where SiLU's vector body ends depends only on ffn
constexpr size_t kMaxChunkRows = 64;   // rows per chunk: a weight tile is reused over up to 64 rows
constexpr size_t kUnitsPerThread = 32;  // fine units, handed out in guided chunks (schedule.h)

size_t ceilDiv(size_t a, size_t b) { return (a + b - 1) / b; }

// The units of one phase: group g's rows in blocks of `rowBlock`, its columns in tiles of `tile`.
// first[g] = index of g's first unit; a unit index maps back by a search over first. The pool hands
// out guided chunks of consecutive units (schedule.h): a group's tiles one after another in memory.
struct Phase {
  const ExpertsArgs* a;
  const Kernels* k;
  size_t tile, cols, rowBlock;
  const size_t* first;  // [count + 1]
  size_t elem;
  GuidedChunks chunks;
};

void locate(const Phase& p, size_t c, size_t& g, size_t& r0, size_t& r1, size_t& n0, size_t& n1) {
  g = static_cast<size_t>(std::upper_bound(p.first, p.first + p.a->count + 1, c) - p.first) - 1;
  const size_t local = c - p.first[g], tiles = ceilDiv(p.cols, p.tile);
  const ExpertGroup& e = p.a->groups[g];
  r0 = (local / tiles) * p.rowBlock;
  r1 = std::min(e.rows, r0 + p.rowBlock);
  n0 = (local % tiles) * p.tile;
  n1 = std::min(p.cols, n0 + p.tile);
}

void prefetchRows(const void* p, size_t bytes) {
  for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(static_cast<const char*>(p) + o, 0, 2);
}

void gateUpUnit(const Phase& p, size_t c, float* scratch) {
  const ExpertsArgs& a = *p.a;
  size_t g, r0, r1, n0, n1;
  locate(p, c, g, r0, r1, n0, n1);
  const ExpertGroup& e = a.groups[g];
  const size_t R = r1 - r0, w = n1 - n0, H = a.hidden, F = a.ffn;
  const float* x = a.x + (e.row0 + r0) * H;
  float* gt = scratch;
  float* up = scratch + R * w;
  MatmulArgs mg{};
  mg.y = gt;
  mg.x = x;
  mg.w = static_cast<const char*>(e.wg) + n0 * H * p.elem;
  mg.wDtype = a.wDtype;
  mg.rows = R;
  mg.n = w;
  mg.k = H;
  mg.precision = a.precision;
  MatmulArgs mu = mg;
  mu.y = up;
  mu.w = static_cast<const char*>(e.wu) + n0 * H * p.elem;
  // The up tile is a whole matrix away from the gate tile: its first rows are fetched while the gate tile is
  // computed, so it does not start on a demand miss (the gate tile's own stream runs on into the next
  // unit's gate tile, which its last block prefetches).
  prefetchRows(mu.w, std::min<size_t>(w, 4) * H * p.elem);
  matmulRange(p.k, mg, 0, R, 0, w);
  matmulRange(p.k, mu, 0, R, 0, w);
  for (size_t i = 0; i < R; i++) {
    SiluMulArgs s{a.act + (e.row0 + r0 + i) * F + n0, gt + i * w, up + i * w, w};
    p.k->siluMul(s, 0, w);
  }
}

void downUnit(const Phase& p, size_t c) {
  const ExpertsArgs& a = *p.a;
  size_t g, r0, r1, n0, n1;
  locate(p, c, g, r0, r1, n0, n1);
  const ExpertGroup& e = a.groups[g];
  MatmulArgs m{};
  m.y = a.out + e.row0 * a.hidden;
  m.x = a.act + e.row0 * a.ffn;
  m.w = e.wd;
  m.wDtype = a.wDtype;
  m.rows = e.rows;
  m.n = a.hidden;
  m.k = a.ffn;
  m.precision = a.precision;
  matmulRange(p.k, m, r0, r1, n0, n1);
}

void gateUpChunk(void* ctx, size_t c, float* scratch) {
  const Phase& p = *static_cast<const Phase*>(ctx);
  for (size_t u = p.chunks.bounds[c]; u < p.chunks.bounds[c + 1]; u++) gateUpUnit(p, u, scratch);
}

void downChunk(void* ctx, size_t c, float*) {
  const Phase& p = *static_cast<const Phase*>(ctx);
  for (size_t u = p.chunks.bounds[c]; u < p.chunks.bounds[c + 1]; u++) downUnit(p, u);
}

// Fills first[0..count] for tiles of `tile` columns out of `cols`, rows in blocks of `rowBlock`;
// returns the number of units.
size_t layout(const ExpertsArgs& a, size_t cols, size_t tile, size_t rowBlock, size_t* first) {
  const size_t tiles = ceilDiv(cols, tile);
  first[0] = 0;
  for (size_t g = 0; g < a.count; g++) first[g + 1] = first[g] + ceilDiv(a.groups[g].rows, rowBlock) * tiles;
  return first[a.count];
}

// Runs a phase's units in guided chunks across the pool when the work is worth sharing, else all on
// the caller.
void runPhase(size_t units, size_t parts, ThreadPool::Task task, Phase& p, size_t scratch) {
  p.chunks.plan(units, parts, 1);
  const size_t chunks = p.chunks.count;
  if (parts > 1) return sharedPool().run(chunks, task, &p, scratch);
  struct All {
    ThreadPool::Task task;
    const Phase* p;
    size_t chunks;
  } all{task, &p, chunks};
  sharedPool().run(1, [](void* ctx, size_t, float* s) {
    const All& a = *static_cast<const All*>(ctx);
    for (size_t c = 0; c < a.chunks; c++) a.task(const_cast<Phase*>(a.p), c, s);
  }, &all, scratch);
}

}  // namespace

void runExpertsSwiGlu(const ExpertsArgs& a) {
  size_t rows = 0;
  for (size_t g = 0; g < a.count; g++) rows += a.groups[g].rows;
  if (rows == 0 || a.hidden == 0 || a.ffn == 0) return;
  const Kernels* k = activeKernels();
  const size_t parts = static_cast<size_t>(partsFor(3 * rows * a.hidden * a.ffn, rows * a.ffn));
  const size_t want = parts * kUnitsPerThread;
  const size_t elem = a.wDtype == kF32 ? 4 : 2;
  // The index of each group's first chunk: grow-only per calling thread, so a call allocates nothing
  // once the layer with the most groups has been seen.
  thread_local std::vector<size_t> first;
  if (first.size() < a.count + 1) first.resize(a.count + 1);

  // Phase 1: gate, up and SiLU over ffn columns; tiles shrink (in aligned steps) until there are
  // enough chunks to share.
  const size_t rowBlock = kMaxChunkRows;
  size_t tile = std::min(kMaxTileCols, ceilDiv(a.ffn, kTileAlign) * kTileAlign);
  while (tile > kTileAlign && layout(a, a.ffn, tile, rowBlock, first.data()) < want) tile -= kTileAlign;
  Phase p{&a, k, tile, a.ffn, rowBlock, first.data(), elem, {}};
  runPhase(layout(a, a.ffn, tile, rowBlock, first.data()), parts, gateUpChunk, p, 2 * std::min(rowBlock, rows) * tile);

  // Phase 2: down over hidden columns, in tiles aligned to the matmul's column block.
  const size_t cb = k->matmulColBlock;
  size_t tile2 = ceilDiv(a.hidden, cb) * cb;
  while (tile2 > cb && layout(a, a.hidden, tile2, rowBlock, first.data()) < want) tile2 = std::max(cb, ceilDiv(tile2 / 2, cb) * cb);
  Phase q{&a, k, tile2, a.hidden, rowBlock, first.data(), elem, {}};
  runPhase(layout(a, a.hidden, tile2, rowBlock, first.data()), parts, downChunk, q, 0);
}

}  // namespace moesaic
