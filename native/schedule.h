#pragma once

#include <stddef.h>

namespace moesaic {

// Guided self-scheduling (Polychronopoulos & Kuck, 1987): a job's indivisible units are cut into
// chunks that each take a fixed share of the units still left, so the first chunks are long (few
// hand-offs through the pool's counter) and the last ones short, and the threads finish within a
// short chunk of each other. Equal chunks left a thread waiting for the other's last long chunk at
// every barrier of a decode step: about a tenth of a token at 2 threads. Threads still take chunks
// dynamically, so one whose core is busy with another process takes fewer of them. Which chunk a
// unit falls in never changes its values.
struct GuidedChunks {
  static constexpr size_t kMax = 256;
  size_t count = 0;
  size_t bounds[kMax + 1];  // chunk c is units [bounds[c], bounds[c + 1])

  // units in all, for `parts` threads, no chunk under minUnits (but the last, when fewer are left)
  void plan(size_t units, size_t parts, size_t minUnits) {
    if (minUnits == 0) minUnits = 1;
    const size_t share = 2 * (parts == 0 ? 1 : parts);
    count = 0;
    bounds[0] = 0;
    for (size_t b = 0; b < units;) {
      const size_t left = units - b;
      size_t take = (left + share - 1) / share;
      if (take < minUnits) take = minUnits;
      if (take > left || count + 1 == kMax) take = left;
      b += take;
      bounds[++count] = b;
    }
  }
};

}  // namespace moesaic
