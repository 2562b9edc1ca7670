#include "pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cpuRelax() { _mm_pause(); }
#else
static inline void cpuRelax() { std::this_thread::yield(); }
#endif

namespace moesaic {

static long long nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void ThreadPool::setProfiling(bool on) {
  std::lock_guard<std::mutex> lock(submit_);
  if (on)
    for (auto* c : {&jobs_, &inlineJobs_, &callerWaitNs_, &pickups_, &wakeNs_, &sleepWakes_}) c->store(0);
  profiling_.store(on);
}

PoolStats ThreadPool::stats() const {
  PoolStats s;
  s.jobs = jobs_.load();
  s.inlineJobs = inlineJobs_.load();
  s.callerWaitNs = callerWaitNs_.load();
  s.pickups = pickups_.load();
  s.wakeNs = wakeNs_.load();
  s.sleepWakes = sleepWakes_.load();
  return s;
}

ThreadPool::ThreadPool(int threads) { start(threads); }

ThreadPool::~ThreadPool() { stop(); }

void ThreadPool::resize(int threads) {
  std::lock_guard<std::mutex> lock(submit_);
  if (threads == size()) return;
  stop();
  start(threads);
}

void ThreadPool::start(int threads) {
  stopping_.store(false);
  for (int i = 1; i < threads; i++) workers_.push_back(new Worker());
  // Threads start after the vector is complete, so none reads it while it grows. Each starts from the
  // generation read here, not from whatever it sees when it first runs, so a stop published before a
  // new thread got scheduled is still seen by it.
  const unsigned long long gen = generation_.load();
  for (int i = 1; i < threads; i++) workers_[i - 1]->thread = std::thread(&ThreadPool::workerLoop, this, i, gen);
}

void ThreadPool::stop() {
  {
    std::lock_guard<std::mutex> lock(sleepMutex_);
    stopping_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (Worker* w : workers_) {
    w->thread.join();
    delete w;
  }
  workers_.clear();
}

// Called with submit_ held and the job closed: a worker touches its scratch only inside an open job.
void ThreadPool::reserveScratch(size_t floats) {
  if (callerScratch_.size() < floats) callerScratch_.resize(floats);
  for (Worker* w : workers_)
    if (w->scratch.size() < floats) w->scratch.resize(floats);
}

void ThreadPool::run(size_t chunks, Task task, void* ctx, size_t scratchFloats) {
  std::lock_guard<std::mutex> lock(submit_);
  if (scratchFloats > 0) reserveScratch(scratchFloats);
  float* mine = callerScratch_.data();
  const bool profiling = profiling_.load(std::memory_order_relaxed);
  if (workers_.empty() || chunks <= 1) {
    if (profiling) inlineJobs_.fetch_add(1, std::memory_order_relaxed);
    for (size_t c = 0; c < chunks; c++) task(ctx, c, mine);
    return;
  }
  if (profiling) {
    jobs_.fetch_add(1, std::memory_order_relaxed);
    publishNs_.store(nowNs(), std::memory_order_relaxed);
  }
  task_ = task;
  ctx_ = ctx;
  chunks_ = chunks;
  next_.store(0, std::memory_order_relaxed);
  closed_.store(false);      // publishes the fields above to workers that then see it open
  generation_.fetch_add(1);  // seq_cst: ordered against the sleepers_ read below (no lost wake-up)
  if (sleepers_.load() > 0) {
    if (profiling) sleepWakes_.fetch_add(1, std::memory_order_relaxed);
    // Taking the mutex orders this notify after any worker that counted itself a sleeper is waiting.
    { std::lock_guard<std::mutex> l(sleepMutex_); }
    wake_.notify_all();
  }
  for (size_t c; (c = next_.fetch_add(1, std::memory_order_relaxed)) < chunks;) task(ctx, c, mine);
  closed_.store(true);
  const long long waitFrom = profiling ? nowNs() : 0;
  // Wait for workers still inside the job. If one is slow (an oversubscribed machine may have
  // descheduled it mid-chunk), yield the core rather than burn the time slice it needs.
  for (int i = 1; active_.load() > 0; i++) {
    if (i < 4096)
      cpuRelax();
    else
      std::this_thread::yield();
  }
  if (profiling) callerWaitNs_.fetch_add(static_cast<unsigned long long>(nowNs() - waitFrom), std::memory_order_relaxed);
}

void ThreadPool::workerLoop(int index, unsigned long long seen) {
  Worker* self = workers_[index - 1];
  for (;;) {
    unsigned long long g = generation_.load(std::memory_order_acquire);
    if (g == seen) {
      // Spin for a while, checking the clock only every 256 pauses.
      auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
      for (int i = 1; (g = generation_.load(std::memory_order_acquire)) == seen; i++) {
        cpuRelax();
        if ((i & 255) == 0 && std::chrono::steady_clock::now() > deadline) break;
      }
      if (g == seen) {
        std::unique_lock<std::mutex> lock(sleepMutex_);
        sleepers_.fetch_add(1);
        wake_.wait(lock, [&] { return generation_.load() != seen; });
        sleepers_.fetch_sub(1);
        g = generation_.load(std::memory_order_acquire);
      }
    }
    seen = g;
    if (stopping_.load()) return;
    // Register first, then check the job is still open: either the caller sees us in active_ and
    // waits, or we see it closed and touch nothing.
    active_.fetch_add(1);
    if (!closed_.load()) {
      if (profiling_.load(std::memory_order_relaxed)) {
        pickups_.fetch_add(1, std::memory_order_relaxed);
        wakeNs_.fetch_add(static_cast<unsigned long long>(std::max(0LL, nowNs() - publishNs_.load(std::memory_order_relaxed))), std::memory_order_relaxed);
      }
      Task task = task_;
      void* ctx = ctx_;
      const size_t chunks = chunks_;
      for (size_t c; (c = next_.fetch_add(1, std::memory_order_relaxed)) < chunks;) task(ctx, c, self->scratch.data());
    }
    active_.fetch_sub(1);
  }
}

}  // namespace moesaic
