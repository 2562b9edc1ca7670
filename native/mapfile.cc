#include "mapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

}  // namespace moesaic
