// The expert store's native half: one preallocated, page-aligned arena of expert slots, filled by
// pread on I/O threads of its own (never the kernel thread pool, never the event loop). See
// docs/memory.md and src/memory/expert-store.ts, which plans what each slot reads.
#pragma once

#include <napi.h>

namespace moesaic {

// class ExpertArena(slotBytes: number, slots: number, ioThreads: number)
//   .buffer: ArrayBuffer           the arena (slots * slotBytes bytes, 4096-aligned base)
//   .open(path): { fd, direct }    O_DIRECT when the file system accepts it, else buffered reads
//                                  followed by posix_fadvise(DONTNEED)
//   .load(slot, ranges: Float64Array [file, fileOffset, readBytes, slotOffset, needBytes]*, background?)
//                                  queues the reads of one slot; status(slot) turns 1 (loading);
//                                  background reads (prefetches) wait until no demand read is queued
//   .promote(slot): a queued background read of the slot becomes a demand read
//   .status(slot): 0 idle, 1 loading, 2 ready, 3 failed (error(slot) says why)
//   .wait(slot): blocks until the slot is not loading; returns its status
//   .waitAny(slots: Int32Array): blocks until one of them is not loading; returns its index in slots
//   .stats(): [bytesRead, readSeconds] since creation
//   .close(): joins the I/O threads, closes the files
// dropPageCache(path): posix_fadvise(DONTNEED) over a whole file (benchmarks' cold starts)
void InitExpertArena(Napi::Env env, Napi::Object exports);

}  // namespace moesaic
