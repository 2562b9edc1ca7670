// A small persistent thread pool for the kernels. The calling (JavaScript) thread works too; the other
// participants are parked worker threads.
//
// A job is a number of chunks, claimed one at a time through an atomic counter by whichever
// participants are present, so a thread whose core is busy with another process simply takes fewer
// chunks. The caller never waits for a worker that has not started: when the chunks run out it closes
// the job and waits only for workers still inside it (a Dekker-style handshake on `active_` and
// `closed_`, both sequentially consistent).
//
// Decode calls a matmul with one row hundreds of times per token, so waking must be cheap: a job is
// published by bumping an atomic generation counter that idle workers spin on (with the CPU's pause
// hint) for kSpinMicros after their last job before they fall back to sleeping on a condition
// variable. Running a job allocates nothing (scratch buffers only grow).
#pragma once

#include <stddef.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace moesaic {

// What the pool spent on coordination rather than work, counted only while profiling is on (a clock
// read per job and per worker pickup; off, a job pays one relaxed load).
struct PoolStats {
  unsigned long long jobs = 0;          // jobs that used the workers (single-chunk jobs run inline)
  unsigned long long inlineJobs = 0;    // jobs run on the calling thread alone
  unsigned long long callerWaitNs = 0;  // caller idle after its own chunks, until the last worker left
  unsigned long long pickups = 0;       // workers that joined a job
  unsigned long long wakeNs = 0;        // sum over pickups of (join time - publish time)
  unsigned long long sleepWakes = 0;    // jobs that had to wake a sleeping worker (condition variable)
};

class ThreadPool {
 public:
  typedef void (*Task)(void* ctx, size_t chunk, float* scratch);

  // How long an idle worker spins before sleeping: long enough to bridge the JavaScript between two
  // kernel calls of one decode step, short enough not to hold a shared core for long. (1 ms, which
  // also bridges the gap between two tokens, made decode 16% slower on a machine where another
  // process wanted the cores: the spinning worker held one the JavaScript thread needed.)
  static constexpr int kSpinMicros = 200;

  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Participants, the calling thread included.
  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Stops the workers and starts threads - 1 new ones.
  void resize(int threads);

  // Runs task(ctx, c, scratch) for every chunk c in [0, chunks) and returns when all are done. Each
  // participant passes its own scratch buffer of at least scratchFloats floats. Calls from several
  // threads are serialised.
  void run(size_t chunks, Task task, void* ctx, size_t scratchFloats = 0);

  // Turns the coordination counters on (reset to zero) or off (kept for stats() to read).
  void setProfiling(bool on);
  PoolStats stats() const;

 private:
  struct Worker {
    std::thread thread;
    std::vector<float> scratch;
  };

  void start(int threads);
  void stop();
  void workerLoop(int index, unsigned long long seen);
  void reserveScratch(size_t floats);

  std::vector<Worker*> workers_;
  std::vector<float> callerScratch_;
  std::mutex submit_;  // one job at a time

  // The published job: written before `closed_` is cleared, read by a worker only after it has
  // registered in `active_` and seen `closed_` false.
  Task task_ = nullptr;
  void* ctx_ = nullptr;
  size_t chunks_ = 0;
  alignas(64) std::atomic<size_t> next_{0};
  alignas(64) std::atomic<int> active_{0};
  std::atomic<bool> closed_{true};
  alignas(64) std::atomic<unsigned long long> generation_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stopping_{false};
  // profiling (see PoolStats): off unless asked for
  std::atomic<bool> profiling_{false};
  std::atomic<long long> publishNs_{0};
  std::atomic<unsigned long long> jobs_{0}, inlineJobs_{0}, callerWaitNs_{0}, pickups_{0}, wakeNs_{0}, sleepWakes_{0};
  std::mutex sleepMutex_;
  std::condition_variable wake_;
};

}  // namespace moesaic
