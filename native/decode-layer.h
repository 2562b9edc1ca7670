// One sequence's decode step as two native calls per layer (attention half, experts half), for the
// plain MoE decoder (pre-norm, fused q/k/v, softmax-top-k routing, dynamic gating, mapped experts).
// The per-op path makes ~7 calls and runs the layer's glue in JavaScript; with the weights streaming
// through the caches between them, each call and each line of glue starts on cold caches, and that
// was ~1 ms of a 10 ms token. Every element is computed by the same kernels in the same order as the
// per-op path, so the logits are bit-identical (tested).
#pragma once

#include <stddef.h>

#include <vector>

namespace moesaic {

// The most experts one token may choose, and the plan's size limits (decode-binding.cc).
constexpr size_t kMaxChosen = 64;
constexpr size_t kMaxDecodeExperts = 4096;
constexpr size_t kMaxDecodeSize = size_t(1) << 20;

struct DecodeWeight {
  const void* data;
  int dtype;
  size_t buffer;  // index of the ArrayBuffer holding it (decode-binding.cc checks it is still there)
};

struct DecodeLayerWeights {
  DecodeWeight inputNorm, qkv, o, postNorm, router;
  std::vector<DecodeWeight> gate, up, down;  // [experts]
};

struct DecodePlan {
  static constexpr unsigned kMagic = 0x6d6f6464;  // checked when JavaScript hands the plan back
  unsigned magic = kMagic;
  size_t hidden, heads, kvHeads, headDim, ffn, experts, layers, window, maxChosen;
  double ropeTheta;
  float eps;
  int expertDtype, precision;
  std::vector<DecodeLayerWeights> layer;
  // scratch, owned by the plan (one model's decode at a time): h [H], qkv, ctx [heads·D], y [H],
  // xs/ys [k, H], act [k, F]
  std::vector<float> h, qkv, ctx, y, xs, ys, act;
  // the layer whose attention half ran last and whose experts half is due (the normed row is in h)
  long pending = -1;
};

// x[H] (the residual stream) through layer l's attention block; writes the router logits [experts].
// kCache/vCache: the layer's cache, `pos` positions filled; the token's key and value go to row pos.
void decodeAttention(DecodePlan& p, size_t l, float* x, float* kCache, float* vCache, size_t pos, float* routerLogits);

// Layer l's experts half, after decodeAttention(l): the k chosen experts (distinct, in routing
// order) with their weights, combined in that order and added to x.
void decodeExperts(DecodePlan& p, size_t l, float* x, const int* chosen, const float* weights, size_t k);

}  // namespace moesaic
