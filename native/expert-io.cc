#include "expert-io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace moesaic {
namespace {

// O_DIRECT wants the file offset, the length and the buffer address aligned to the device's logical
// block size; 4096 is a multiple of every common one (512, 4096).
constexpr size_t kAlign = 4096;

enum SlotStatus : int { kIdle = 0, kLoading = 1, kReady = 2, kFailed = 3 };

struct Range {
  uint32_t file;
  uint64_t fileOffset, readBytes, slotOffset, needBytes;
};

struct File {
  int fd;
  bool direct;
  std::string path;
};

struct Job {
  uint32_t slot;
  std::vector<Range> ranges;
};

class ExpertArena : public Napi::ObjectWrap<ExpertArena> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ExpertArena",
                       {
                           InstanceMethod<&ExpertArena::Open>("open"),
                           InstanceMethod<&ExpertArena::Load>("load"),
                           InstanceMethod<&ExpertArena::Status>("status"),
                           InstanceMethod<&ExpertArena::Promote>("promote"),
                           InstanceMethod<&ExpertArena::Error>("error"),
                           InstanceMethod<&ExpertArena::Wait>("wait"),
                           InstanceMethod<&ExpertArena::WaitAny>("waitAny"),
                           InstanceMethod<&ExpertArena::Stats>("stats"),
                           InstanceMethod<&ExpertArena::Close>("close"),
                           InstanceAccessor<&ExpertArena::Buffer>("buffer"),
                       });
  }

  explicit ExpertArena(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ExpertArena>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3) throw Napi::TypeError::New(env, "ExpertArena(slotBytes, slots, ioThreads)");
    const double slotBytes = info[0].As<Napi::Number>().DoubleValue();
    const double slots = info[1].As<Napi::Number>().DoubleValue();
    const int threads = info[2].As<Napi::Number>().Int32Value();
    if (!(slotBytes >= kAlign) || static_cast<uint64_t>(slotBytes) % kAlign != 0)
      throw Napi::RangeError::New(env, "ExpertArena: slotBytes must be a positive multiple of 4096");
    if (!(slots >= 1) || slots > 1e6 || slots != static_cast<uint32_t>(slots))
      throw Napi::RangeError::New(env, "ExpertArena: slots must be an integer in 1..1000000");
    if (threads < 1 || threads > 64) throw Napi::RangeError::New(env, "ExpertArena: ioThreads must be in 1..64");
    slotBytes_ = static_cast<uint64_t>(slotBytes);
    slots_ = static_cast<uint32_t>(slots);
    uint64_t total = 0;
    if (__builtin_mul_overflow(slotBytes_, static_cast<uint64_t>(slots_), &total))
      throw Napi::RangeError::New(env, "ExpertArena: size overflow");
    void* p = nullptr;
    if (posix_memalign(&p, kAlign, total) != 0) {
      Napi::Error e = Napi::Error::New(env, "cannot allocate an expert arena of " + std::to_string(total) + " bytes");
      e.Set("code", Napi::String::New(env, "E_IO"));
      throw e;
    }
    memset(p, 0, total);  // commits the pages now: the arena's memory is resident from the start, as budgeted
    base_ = static_cast<uint8_t*>(p);
    Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, p, total, [](Napi::Env, void* data) { free(data); });
    buffer_ = Napi::Persistent(buf);
    status_.reset(new std::atomic<int>[slots_]);
    for (uint32_t i = 0; i < slots_; i++) status_[i].store(kIdle);
    errors_.resize(slots_);
    for (int i = 0; i < threads; i++) workers_.emplace_back([this] { Work(); });
  }

  ~ExpertArena() override { Shutdown(); }

 private:
  Napi::Value Buffer(const Napi::CallbackInfo&) { return buffer_.Value(); }

  Napi::Value Open(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    bool direct = fd >= 0 && ProbeDirect(fd);
    if (fd >= 0 && !direct) close(fd);
    if (!direct) fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      Napi::Error e = Napi::Error::New(env, "cannot open " + path + ": " + strerror(errno));
      e.Set("code", Napi::String::New(env, "E_IO"));
      throw e;
    }
    std::lock_guard<std::mutex> lock(mu_);
    files_.push_back(File{fd, direct, path});
    Napi::Object r = Napi::Object::New(env);
    r.Set("file", Napi::Number::New(env, static_cast<double>(files_.size() - 1)));
    r.Set("direct", Napi::Boolean::New(env, direct));
    return r;
  }

  // Some file systems (tmpfs, overlay on older kernels) accept O_DIRECT at open and refuse the reads.
  static bool ProbeDirect(int fd) {
    void* p = nullptr;
    if (posix_memalign(&p, kAlign, kAlign) != 0) return false;
    ssize_t n = pread(fd, p, kAlign, 0);
    free(p);
    return n >= 0;
  }

  Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const uint32_t slot = SlotArg(info, 0);
    Napi::Float64Array spec = info[1].As<Napi::Float64Array>();
    if (spec.ElementLength() % 5 != 0) throw Napi::RangeError::New(env, "load: ranges must be quintuples");
    Job job{slot, {}};
    std::lock_guard<std::mutex> files(mu_);
    for (size_t i = 0; i < spec.ElementLength(); i += 5) {
      Range r{static_cast<uint32_t>(spec[i]), static_cast<uint64_t>(spec[i + 1]), static_cast<uint64_t>(spec[i + 2]),
              static_cast<uint64_t>(spec[i + 3]), static_cast<uint64_t>(spec[i + 4])};
      if (r.file >= files_.size()) throw Napi::RangeError::New(env, "load: no such file");
      if (r.slotOffset + r.readBytes > slotBytes_ || r.needBytes > r.readBytes)
        throw Napi::RangeError::New(env, "load: a range does not fit the slot");
      if (files_[r.file].direct && (r.fileOffset % kAlign || r.readBytes % kAlign || r.slotOffset % kAlign))
        throw Napi::RangeError::New(env, "load: O_DIRECT ranges must be 4096-aligned");
      job.ranges.push_back(r);
    }
    if (status_[slot].load() == kLoading) throw Napi::Error::New(env, "load: slot " + std::to_string(slot) + " is still loading");
    if (stop_) throw Napi::Error::New(env, "load: the expert store is closed");
    const bool background = info.Length() > 2 && info[2].ToBoolean().Value();
    status_[slot].store(kLoading);
    errors_[slot].clear();
    (background ? background_ : queue_).push_back(std::move(job));
    work_.notify_one();
    return env.Undefined();
  }

  // A background read the layer now needs joins the demand queue (at its end).
  Napi::Value Promote(const Napi::CallbackInfo& info) {
    const uint32_t slot = SlotArg(info, 0);
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = background_.begin(); it != background_.end(); ++it) {
      if (it->slot != slot) continue;
      queue_.push_back(std::move(*it));
      background_.erase(it);
      break;
    }
    return info.Env().Undefined();
  }

  Napi::Value Status(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), status_[SlotArg(info, 0)].load());
  }

  Napi::Value Error(const Napi::CallbackInfo& info) {
    const uint32_t slot = SlotArg(info, 0);
    std::lock_guard<std::mutex> lock(mu_);
    return Napi::String::New(info.Env(), errors_[slot]);
  }

  Napi::Value Wait(const Napi::CallbackInfo& info) {
    const uint32_t slot = SlotArg(info, 0);
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [&] { return status_[slot].load() != kLoading; });
    return Napi::Number::New(info.Env(), status_[slot].load());
  }

  Napi::Value WaitAny(const Napi::CallbackInfo& info) {
    Napi::Int32Array slots = info[0].As<Napi::Int32Array>();
    const size_t n = slots.ElementLength();
    for (size_t i = 0; i < n; i++)
      if (static_cast<uint32_t>(slots[i]) >= slots_) throw Napi::RangeError::New(info.Env(), "waitAny: no such slot");
    if (n == 0) throw Napi::RangeError::New(info.Env(), "waitAny: no slots");
    std::unique_lock<std::mutex> lock(mu_);
    size_t found = n;
    done_.wait(lock, [&] {
      for (size_t i = 0; i < n; i++)
        if (status_[slots[i]].load() != kLoading) return found = i, true;
      return false;
    });
    return Napi::Number::New(info.Env(), static_cast<double>(found));
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    std::lock_guard<std::mutex> lock(mu_);
    Napi::Float64Array r = Napi::Float64Array::New(info.Env(), 2);
    r[0] = static_cast<double>(bytesRead_);
    r[1] = busySeconds_;
    return r;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  uint32_t SlotArg(const Napi::CallbackInfo& info, size_t i) {
    const double s = info[i].As<Napi::Number>().DoubleValue();
    if (!(s >= 0) || s >= slots_ || s != static_cast<uint32_t>(s))
      throw Napi::RangeError::New(info.Env(), "no such slot: " + std::to_string(s));
    return static_cast<uint32_t>(s);
  }

  void Shutdown() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      stop_ = true;
    }
    work_.notify_all();
    for (auto& t : workers_) t.join();
    for (auto& f : files_) close(f.fd);
    for (std::deque<Job>* q : {&queue_, &background_}) {
      for (const Job& j : *q) {  // never started: a later wait must not hang
        errors_[j.slot] = "the expert store was closed";
        status_[j.slot].store(kFailed);
      }
      q->clear();
    }
    done_.notify_all();
  }

  // The I/O threads: one slot's reads per job. "Busy" time is wall time with at least one read in
  // flight, so read GB/s is not inflated by counting overlapping reads twice.
  void Work() {
    for (;;) {
      Job job;
      std::vector<File> files;
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_.wait(lock, [&] { return stop_ || !queue_.empty() || !background_.empty(); });
        if (stop_) return;
        std::deque<Job>& q = queue_.empty() ? background_ : queue_;  // reads a layer waits for go first
        job = std::move(q.front());
        q.pop_front();
        files = files_;  // a copy: open() may grow files_ while this job reads
        if (inFlight_++ == 0) busySince_ = std::chrono::steady_clock::now();
      }
      std::string err;
      uint64_t bytes = 0;
      for (const Range& r : job.ranges) {
        if (!ReadRange(files[r.file], r, base_ + static_cast<uint64_t>(job.slot) * slotBytes_, &bytes, &err)) break;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        bytesRead_ += bytes;
        if (--inFlight_ == 0)
          busySeconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - busySince_).count();
        errors_[job.slot] = err;
        status_[job.slot].store(err.empty() ? kReady : kFailed);
      }
      done_.notify_all();
    }
  }

  static bool ReadRange(const File& f, const Range& r, uint8_t* slot, uint64_t* bytes, std::string* err) {
    uint8_t* dst = slot + r.slotOffset;
    uint64_t got = 0;
    while (got < r.readBytes) {
      ssize_t n = pread(f.fd, dst + got, r.readBytes - got, static_cast<off_t>(r.fileOffset + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        *err = "read of " + f.path + " at byte " + std::to_string(r.fileOffset + got) + " failed: " + strerror(errno);
        return false;
      }
      if (n == 0) break;  // end of file
      got += static_cast<uint64_t>(n);
      if (f.direct && got % kAlign != 0) break;  // a partial O_DIRECT block only happens at the end of the file
    }
    *bytes += got;
    if (!f.direct) posix_fadvise(f.fd, static_cast<off_t>(r.fileOffset), static_cast<off_t>(r.readBytes), POSIX_FADV_DONTNEED);
    if (got < r.needBytes) {
      *err = "short read of " + f.path + ": " + std::to_string(got) + " of " + std::to_string(r.needBytes) +
             " bytes at byte " + std::to_string(r.fileOffset) + " (file truncated or changed since load?)";
      return false;
    }
    return true;
  }

  uint64_t slotBytes_ = 0;
  uint32_t slots_ = 0;
  uint8_t* base_ = nullptr;
  Napi::Reference<Napi::ArrayBuffer> buffer_;
  std::unique_ptr<std::atomic<int>[]> status_;
  std::vector<std::string> errors_;  // [slots] guarded by mu_
  std::vector<File> files_;          // guarded by mu_
  std::deque<Job> queue_;            // guarded by mu_: reads a layer needs now
  std::deque<Job> background_;       // guarded by mu_: prefetches, served when queue_ is empty
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable work_, done_;
  bool stop_ = false;
  int inFlight_ = 0;
  std::chrono::steady_clock::time_point busySince_;
  uint64_t bytesRead_ = 0;
  double busySeconds_ = 0;
};

// dropPageCache(path): posix_fadvise(DONTNEED) over the whole file, so the next reader pays for the
// disk again (a benchmark's cold start; pages mapped by a live process stay).
Napi::Value DropPageCache(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    Napi::Error e = Napi::Error::New(env, "cannot open " + path + ": " + strerror(errno));
    e.Set("code", Napi::String::New(env, "E_IO"));
    throw e;
  }
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
  return env.Undefined();
}

}  // namespace

void InitExpertArena(Napi::Env env, Napi::Object exports) {
  exports.Set("ExpertArena", ExpertArena::Define(env));
  exports.Set("dropPageCache", Napi::Function::New(env, DropPageCache, "dropPageCache"));
}

}  // namespace moesaic
