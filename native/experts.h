// A MoE layer's experts in one call: every group's gate/up projections + SwiGLU as one pool job, then
// every group's down projection as a second, instead of two jobs per expert.
#pragma once

#include <stddef.h>

namespace moesaic {

// One expert (or one rank's slice of an expert): rows [row0, row0 + rows) of x go through it.
struct ExpertGroup {
  const void* wg;  // [ffn, hidden]
  const void* wu;  // [ffn, hidden]
  const void* wd;  // [hidden, ffn]
  size_t row0, rows;
};

// out[r, hidden] = wd · (silu(wg · x[r]) * (wu · x[r])) for every row r of every group; act[r, ffn]
// receives the activations. All groups share the dtype and the shapes.
struct ExpertsArgs {
  float* out;
  const float* x;
  float* act;
  const ExpertGroup* groups;
  size_t count;
  int wDtype;
  size_t hidden, ffn;
  int precision;  // MatmulPrecision (kernels.h) of all three products; zero-initialised = exact
};

// Each element equals the per-expert ops (runSwiGlu, then runMatmul) bit for bit.
void runExpertsSwiGlu(const ExpertsArgs& a);

}  // namespace moesaic
