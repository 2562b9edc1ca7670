// mmap a whole file as an external ArrayBuffer (zero-copy weight loading).
#pragma once

#include <napi.h>

namespace moesaic {

// mapFile(path: string): ArrayBuffer. MAP_PRIVATE with PROT_READ|PROT_WRITE: pages are shared with
// the page cache until written, and a stray write is copy-on-write, never reaching the file. The
// buffer's finalizer unmaps. Throws an Error with code 'E_IO' naming the path when open/mmap fails.
Napi::Value MapFile(const Napi::CallbackInfo& info);

}  // namespace moesaic
