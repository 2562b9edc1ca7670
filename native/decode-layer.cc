#include "decode-layer.h"

#include <algorithm>
#include <cstring>

#include "dispatch.h"
#include "experts.h"

namespace moesaic {

void decodeAttention(DecodePlan& p, size_t l, float* x, float* kCache, float* vCache, size_t pos, float* routerLogits) {
  const DecodeLayerWeights& w = p.layer[l];
  const size_t H = p.hidden, D = p.headDim, qDim = p.heads * D, kvDim = p.kvHeads * D, W = qDim + 2 * kvDim;
  float* h = p.h.data();
  float* qkv = p.qkv.data();
  runRmsNorm(RmsNormArgs{h, x, w.inputNorm.data, w.inputNorm.dtype, 1, H, p.eps});
  MatmulArgs m{};
  m.precision = p.precision;
  m.y = qkv;
  m.x = h;
  m.w = w.qkv.data;
  m.wDtype = w.qkv.dtype;
  m.rows = 1;
  m.n = W;
  m.k = H;
  runMatmul(m);
  // q and k lie one after another: one rotation call for both, as the per-op path makes
  RopeArgs r{qkv, 1, p.heads + p.kvHeads, D, static_cast<double>(pos), p.ropeTheta};
  runRope(&r, 1);
  std::memcpy(kCache + pos * kvDim, qkv + qDim, kvDim * sizeof(float));
  std::memcpy(vCache + pos * kvDim, qkv + qDim + kvDim, kvDim * sizeof(float));
  AttentionArgs a{p.ctx.data(), qkv, kCache, vCache, 1, pos, p.heads, p.kvHeads, D, p.window};
  runAttention(&a, 1);
  float* y = p.y.data();
  m.y = y;
  m.x = p.ctx.data();
  m.w = w.o.data;
  m.wDtype = w.o.dtype;
  m.n = H;
  m.k = qDim;
  runMatmul(m);
  for (size_t i = 0; i < H; i++) x[i] += y[i];
  runRmsNorm(RmsNormArgs{h, x, w.postNorm.data, w.postNorm.dtype, 1, H, p.eps});
  m.y = routerLogits;
  m.x = h;
  m.w = w.router.data;
  m.wDtype = w.router.dtype;
  m.n = p.experts;
  m.k = H;
  runMatmul(m);
  p.pending = static_cast<long>(l);
}

void decodeExperts(DecodePlan& p, size_t l, float* x, const int* chosen, const float* weights, size_t k) {
  const DecodeLayerWeights& w = p.layer[l];
  const size_t H = p.hidden;
  p.pending = -1;
  // Groups in ascending expert order, one row each (the dynamic plan's slot order); slot[j] is the
  // row of the j-th choice.
  size_t order[kMaxChosen], slot[kMaxChosen];
  for (size_t j = 0; j < k; j++) order[j] = j;
  std::sort(order, order + k, [&](size_t a, size_t b) { return chosen[a] < chosen[b]; });
  ExpertGroup groups[kMaxChosen];
  for (size_t s = 0; s < k; s++) {
    const size_t e = static_cast<size_t>(chosen[order[s]]);
    groups[s] = ExpertGroup{w.gate[e].data, w.up[e].data, w.down[e].data, s, 1};
    slot[order[s]] = s;
    std::memcpy(p.xs.data() + s * H, p.h.data(), H * sizeof(float));
  }
  ExpertsArgs a{p.ys.data(), p.xs.data(), p.act.data(), groups, k, p.expertDtype, H, p.ffn, p.precision};
  runExpertsSwiGlu(a);
  // The combine of the per-op path, addition by addition: from zero, the choices in routing order,
  // two at a time through one f32 rounding each (src/moe/combine.ts), each product and sum in double
  // as JavaScript computes them; then the residual add.
  float* y = p.y.data();
  std::fill(y, y + H, 0.0f);
  long held = -1;
  double heldWeight = 0;
  for (size_t j = 0; j < k; j++) {
    if (held < 0) {
      held = static_cast<long>(slot[j]);
      heldWeight = weights[j];
      continue;
    }
    const float* y0 = p.ys.data() + static_cast<size_t>(held) * H;
    const float* y1 = p.ys.data() + slot[j] * H;
    const double w1 = weights[j];
    for (size_t i = 0; i < H; i++) {
      const float t = static_cast<float>(static_cast<double>(y[i]) + heldWeight * static_cast<double>(y0[i]));
      y[i] = static_cast<float>(static_cast<double>(t) + w1 * static_cast<double>(y1[i]));
    }
    held = -1;
  }
  if (held >= 0) {
    const float* y0 = p.ys.data() + static_cast<size_t>(held) * H;
    for (size_t i = 0; i < H; i++) y[i] = static_cast<float>(static_cast<double>(y[i]) + heldWeight * static_cast<double>(y0[i]));
  }
  for (size_t i = 0; i < H; i++) x[i] += y[i];
}

}  // namespace moesaic
