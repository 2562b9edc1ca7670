// mmap a whole file as an external ArrayBuffer (zero-copy weight loading).
#pragma once

#include <napi.h>

namespace moesaic {

// mapFile(path: string): ArrayBuffer. MAP_PRIVATE with PROT_READ|PROT_WRITE: pages are shared with
// the page cache until written, and a stray write is copy-on-write, never reaching the file. The
// buffer's finalizer unmaps. Throws an Error with code 'E_IO' naming the path when open/mmap fails.
Napi::Value MapFile(const Napi::CallbackInfo& info);

// allocHugePages(bytes: number): ArrayBuffer of zeroed anonymous memory starting at a 2 MiB boundary
// and advised MADV_HUGEPAGE, so the kernel backs it with transparent huge pages where it can: decode
// streams the weights, and with 4 KiB pages every 4 KiB is a TLB miss and a stop for the hardware
// prefetchers. The finalizer unmaps. E_IO when the memory cannot be mapped.
Napi::Value AllocHugePages(const Napi::CallbackInfo& info);

// releasePages(view): drops the whole pages inside a view of a mapFile buffer from this process
// (MADV_DONTNEED). For a private file mapping never written, a later read faults the page back in
// from the file, so nothing is lost; the loader calls it on each weight it has copied, so a load with
// --hugepages does not hold the model twice. Never call it on anonymous memory: that zeroes it.
Napi::Value ReleasePages(const Napi::CallbackInfo& info);

}  // namespace moesaic
