// Chooses the kernel table for this CPU and splits each op across the thread pool.
#pragma once

#include <string>
#include <vector>

#include "kernels.h"
#include "pool.h"

namespace moesaic {

// Names of the instruction sets this CPU can run, best last ("portable" always first).
std::vector<std::string> supportedIsas();
// How many threads an op of `work` multiply-adds is worth splitting over (at most maxUseful parts).
int partsFor(size_t work, size_t maxUseful);
// The active kernel table's name.
const char* currentIsa();
// Selects a table by name; returns false when unknown or unsupported here (nothing changes).
bool selectIsa(const std::string& name);

int threadCount();
// The kernels' thread pool (the quantized products run on it too).
ThreadPool& sharedPool();
// The kernel pool's coordination counters (pool.h): profiling on resets them.
void setPoolProfiling(bool on);
PoolStats poolStats();
void setThreadCount(int n);

// How many threads an op of `work` multiply-adds is worth splitting over (at most maxUseful parts).
int partsFor(size_t work, size_t maxUseful);
// The active kernel table (the instruction set chosen at load or by selectIsa).
const Kernels* activeKernels();
// Output rows [r0, r1) x columns [n0, n1) of a matmul on the calling thread: every split of every
// matmul-based op (matmul, swiGlu, the grouped experts) computes its ranges through this one function.
void matmulRange(const Kernels* k, const MatmulArgs& a, size_t r0, size_t r1, size_t n0, size_t n1);

// Whether the bf16 matmul precision runs the vdpbf16ps kernel now (built, the CPU has AVX-512 BF16 and
// the AVX-512 table is active) rather than the exact kernels on rounded activations.
bool bf16DotActive();

void runMatmul(const MatmulArgs& a);
void runRmsNorm(const RmsNormArgs& a);
// Several sequences in one pool job (a batched step): each RopeArgs / AttentionArgs is one sequence's
// rows, with its own positions and KV cache.
void runRope(const RopeArgs* seqs, size_t n);
void runAttention(const AttentionArgs* seqs, size_t n);
void runSiluMul(const SiluMulArgs& a);
void runSwiGlu(const SwiGluArgs& a);

// Read bandwidth of this machine in GB/s (1e9 bytes/s): the best of `reps` passes of all pool threads
// streaming through a buffer of `bytes` (much larger than the caches). The yardstick decode's
// achieved bandwidth is compared against.
double measureReadBandwidth(size_t bytes, int reps);

}  // namespace moesaic
