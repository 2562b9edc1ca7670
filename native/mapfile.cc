#include "mapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdint.h>

#include <string>

namespace moesaic {
namespace {

Napi::Error ioError(Napi::Env env, const std::string& what, const std::string& path, int err) {
  Napi::Error e = Napi::Error::New(env, what + " " + path + ": " + strerror(err));
  e.Set("code", Napi::String::New(env, "E_IO"));
  return e;
}

}  // namespace

Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "mapFile: path must be a string");
  const std::string path = info[0].As<Napi::String>().Utf8Value();

  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ioError(env, "cannot open", path, errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    throw ioError(env, "cannot stat", path, err);
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    throw ioError(env, "cannot map", path, EISDIR);
  }
  const size_t length = static_cast<size_t>(st.st_size);
  if (length == 0) {
    // mmap rejects a zero length; an empty file is simply an empty buffer.
    close(fd);
    return Napi::ArrayBuffer::New(env, 0);
  }
  void* data = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int err = errno;
  close(fd);  // the mapping keeps the file referenced
  if (data == MAP_FAILED) throw ioError(env, "cannot mmap", path, err);
  return Napi::ArrayBuffer::New(env, data, length, [length](Napi::Env, void* p) { munmap(p, length); });
}

Napi::Value AllocHugePages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "allocHugePages: bytes must be a number");
  const double d = info[0].As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 9.0e15 || d != static_cast<double>(static_cast<size_t>(d)))
    throw Napi::RangeError::New(env, "allocHugePages: bytes must be a non-negative integer");
  const size_t length = static_cast<size_t>(d);
  if (length == 0) return Napi::ArrayBuffer::New(env, 0);
  // Over-allocate by one huge page and start at the first 2 MiB boundary, so every 2 MiB of the buffer
  // can be one huge page.
  constexpr size_t kHuge = size_t(2) << 20;
  const size_t mapped = length + kHuge;
  void* raw = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) {
    Napi::Error e = Napi::Error::New(env, std::string("allocHugePages: cannot map ") + std::to_string(length) + " bytes: " + strerror(errno));
    e.Set("code", Napi::String::New(env, "E_IO"));
    throw e;
  }
  char* start = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(raw) + kHuge - 1) & ~(kHuge - 1));
#if defined(MADV_HUGEPAGE)
  madvise(start, length, MADV_HUGEPAGE);  // advice only: without transparent huge pages this is plain memory
#endif
  return Napi::ArrayBuffer::New(env, start, length, [raw, mapped](Napi::Env, void*) { munmap(raw, mapped); });
}

Napi::Value ReleasePages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(env, "releasePages: expected a TypedArray");
  Napi::TypedArray a = info[0].As<Napi::TypedArray>();
  const uintptr_t begin = reinterpret_cast<uintptr_t>(static_cast<char*>(a.ArrayBuffer().Data()) + a.ByteOffset());
  const uintptr_t end = begin + a.ByteLength();
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t first = (begin + page - 1) & ~(page - 1), last = end & ~(page - 1);
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
  return env.Undefined();
}

}  // namespace moesaic

