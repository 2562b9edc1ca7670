// The N-API surface of the fused decode step (decode-layer.h):
//   createDecodePlan(sizes: Float64Array [hidden, heads, kvHeads, headDim, ffn, experts, layers, window,
//                    ropeTheta, eps, expertDtype, precision, k], weights: TypedArray[] (per layer: input
//                    norm, q/k/v, o, post-attention norm, router, every expert's gate, then up, then
//                    down), dtypes: Int32Array (one per weight)) -> plan
//   decodeAttention(plan, layer, x, kCache, vCache, pos, routerLogits)
//   decodeExperts(plan, layer, x, chosen: Int32Array, weights: Float32Array)
// Every weight's size and array type is checked at plan creation, and the plan holds a reference to
// every ArrayBuffer under them, so they live as long as it does; each call checks that the buffers of
// the weights it reads are still attached and of their size (a buffer can be transferred or resized
// after the plan was made) and checks its own arrays, so a wrong call throws instead of touching memory
// out of bounds.
#include "decode-binding.h"

#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "decode-layer.h"
#include "dtype.h"
#include "kernels.h"
#include "napi-args.h"

namespace moesaic {
namespace {

struct PlanBox {
  DecodePlan plan;
  // every distinct ArrayBuffer under the weights, with its data pointer and length at creation
  std::vector<Napi::Reference<Napi::ArrayBuffer>> buffers;
  std::vector<std::pair<const void*, size_t>> shapes;
};

[[noreturn]] void rangeError(Napi::Env env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }

// A weight of at least `elements` elements in dtypes[i] (arrayHoldsDtype), from the weights array.
DecodeWeight weightAt(Napi::Env env, PlanBox& box, Napi::Array ws, const int32_t* dtypes, uint32_t i, size_t elements, const std::string& what) {
  Napi::Value v = ws.Get(i);
  if (!v.IsTypedArray()) throw Napi::TypeError::New(env, "createDecodePlan: " + what + " must be a TypedArray");
  Napi::TypedArray a = v.As<Napi::TypedArray>();
  const int dtype = dtypes[i];
  if (!arrayHoldsDtype(a.TypedArrayType(), dtype))
    throw Napi::TypeError::New(env, "createDecodePlan: " + what + " has the wrong array type for dtype code " + std::to_string(dtype));
  if (a.ElementLength() < elements)
    rangeError(env, "createDecodePlan: " + what + " has " + std::to_string(a.ElementLength()) + " elements, needs " + std::to_string(elements));
  Napi::ArrayBuffer ab = a.ArrayBuffer();
  size_t buffer = 0;
  while (buffer < box.shapes.size() && box.shapes[buffer].first != ab.Data()) buffer++;
  if (buffer == box.shapes.size()) {
    box.buffers.push_back(Napi::Persistent(ab));
    box.shapes.emplace_back(ab.Data(), ab.ByteLength());
  }
  return DecodeWeight{static_cast<const char*>(ab.Data()) + a.ByteOffset(), dtype, buffer};
}

// Throws unless the weights' buffers are still attached, where they were and as long.
void checkBuffers(Napi::Env env, const PlanBox& box, std::initializer_list<size_t> which, const char* op) {
  for (size_t i : which) {
    Napi::ArrayBuffer ab = box.buffers[i].Value();
    if (ab.IsEmpty() || ab.IsDetached() || ab.Data() != box.shapes[i].first || ab.ByteLength() != box.shapes[i].second)
      throw Napi::Error::New(env, std::string(op) + ": a weight's buffer was detached or resized after the decode plan was made");
  }
}

Napi::Value CreateDecodePlanChecked(const Args& info) {
  const char* op = "createDecodePlan";
  Napi::Env env = info.Env();
  need(info, 3, op);
  if (!info[1].IsArray()) throw Napi::TypeError::New(env, "createDecodePlan: weights must be an Array");
  ArrayView sizes = arrayArg(info, 0, op, "sizes");
  if (sizes.type != napi_float64_array || sizes.length < 13) rangeError(env, "createDecodePlan: sizes must be a Float64Array of 13");
  ArrayView dtypesArr = arrayArg(info, 2, op, "dtypes");
  if (dtypesArr.type != napi_int32_array) throw Napi::TypeError::New(env, "createDecodePlan: dtypes must be an Int32Array");
  const double* s = static_cast<const double*>(sizes.data);
  const int32_t* dtypes = static_cast<const int32_t*>(dtypesArr.data);
  auto count = [&](size_t i, const char* what) {
    const double d = s[i];
    if (!(d >= 0) || d != static_cast<double>(static_cast<size_t>(d)) || d > 1e12) rangeError(env, std::string("createDecodePlan: ") + what + " must be a non-negative integer");
    return static_cast<size_t>(d);
  };
  auto box = std::make_unique<PlanBox>();
  DecodePlan& p = box->plan;
  p.hidden = count(0, "hidden");
  p.heads = count(1, "heads");
  p.kvHeads = count(2, "kvHeads");
  p.headDim = count(3, "headDim");
  p.ffn = count(4, "ffn");
  p.experts = count(5, "experts");
  p.layers = count(6, "layers");
  p.window = count(7, "window");
  p.ropeTheta = s[8];
  p.eps = static_cast<float>(s[9]);
  p.expertDtype = static_cast<int>(s[10]);
  p.precision = static_cast<int>(s[11]);
  p.maxChosen = count(12, "k");
  // Bounded so that no product of sizes below can overflow (each under 2^20, the q/k/v rows under 2^22).
  if (!p.hidden || !p.heads || !p.kvHeads || !p.headDim || !p.ffn || !p.experts || !p.layers || p.heads % p.kvHeads || p.headDim % 2 ||
      p.experts > kMaxDecodeExperts || p.hidden > kMaxDecodeSize || p.ffn > kMaxDecodeSize || p.heads > kMaxDecodeSize ||
      p.headDim > kMaxDecodeSize || p.heads * p.headDim > kMaxDecodeSize ||
      p.layers > kMaxDecodeSize || !p.maxChosen || p.maxChosen > kMaxChosen || p.maxChosen > p.experts)
    rangeError(env, "createDecodePlan: inconsistent sizes");
  if (p.precision != kPrecisionExact && p.precision != kPrecisionBf16) rangeError(env, "createDecodePlan: precision must be 0 or 1");
  const size_t H = p.hidden, D = p.headDim, F = p.ffn, E = p.experts, qDim = p.heads * D, W = qDim + 2 * p.kvHeads * D;
  Napi::Array ws = info[1].As<Napi::Array>();
  const size_t perLayer = 5 + 3 * E;
  if (ws.Length() != p.layers * perLayer || dtypesArr.length != ws.Length())
    rangeError(env, "createDecodePlan: expected " + std::to_string(p.layers * perLayer) + " weights and as many dtypes");
  p.layer.resize(p.layers);
  for (size_t l = 0; l < p.layers; l++) {
    const uint32_t b = static_cast<uint32_t>(l * perLayer);
    const std::string at = "layer " + std::to_string(l) + " ";
    DecodeLayerWeights& w = p.layer[l];
    w.inputNorm = weightAt(env, *box, ws, dtypes, b, H, at + "input norm");
    w.qkv = weightAt(env, *box, ws, dtypes, b + 1, W * H, at + "q/k/v");
    w.o = weightAt(env, *box, ws, dtypes, b + 2, H * qDim, at + "o");
    w.postNorm = weightAt(env, *box, ws, dtypes, b + 3, H, at + "post-attention norm");
    w.router = weightAt(env, *box, ws, dtypes, b + 4, E * H, at + "router");
    for (size_t e = 0; e < E; e++) {
      w.gate.push_back(weightAt(env, *box, ws, dtypes, static_cast<uint32_t>(b + 5 + e), F * H, at + "gate"));
      w.up.push_back(weightAt(env, *box, ws, dtypes, static_cast<uint32_t>(b + 5 + E + e), F * H, at + "up"));
      w.down.push_back(weightAt(env, *box, ws, dtypes, static_cast<uint32_t>(b + 5 + 2 * E + e), H * F, at + "down"));
      for (const DecodeWeight* x : {&w.gate.back(), &w.up.back(), &w.down.back()})
        if (x->dtype != p.expertDtype) rangeError(env, "createDecodePlan: " + at + "experts must all have the dtype code " + std::to_string(p.expertDtype));
    }
  }
  p.h.resize(H);
  p.qkv.resize(W);
  p.ctx.resize(qDim);
  p.y.resize(H);
  p.xs.resize(p.maxChosen * H);
  p.ys.resize(p.maxChosen * H);
  p.act.resize(p.maxChosen * F);
  return Napi::External<PlanBox>::New(env, box.release(), [](Napi::Env, PlanBox* b) { delete b; });
}

// Allocation failure (a plan's scratch) becomes a JavaScript error rather than an abort.
Napi::Value CreateDecodePlan(const Args& info) {
  try {
    return CreateDecodePlanChecked(info);
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(info.Env(), "createDecodePlan: out of memory for the plan's scratch");
  }
}

PlanBox& planArg(const Args& info, const char* op) {
  if (!info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), std::string(op) + ": the first argument must be a decode plan");
  PlanBox* b = info[0].As<Napi::External<PlanBox>>().Data();
  if (!b || b->plan.magic != DecodePlan::kMagic) throw Napi::TypeError::New(info.Env(), std::string(op) + ": the first argument is not a decode plan");
  return *b;
}

size_t indexArg(const Args& info, size_t i, size_t limit, const char* op, const char* name) {
  const size_t v = info[i].IsNumber() ? sizeArg(info, i, op, name) : limit;
  if (v >= limit) rangeError(info.Env(), std::string(op) + ": " + name + " must be an integer in [0, " + std::to_string(limit) + ")");
  return v;
}

Napi::Value DecodeAttention(const Args& info) {
  const char* op = "decodeAttention";
  need(info, 7, op);
  PlanBox& box = planArg(info, op);
  DecodePlan& p = box.plan;
  const size_t l = indexArg(info, 1, p.layers, op, "layer");
  const DecodeLayerWeights& w = p.layer[l];
  checkBuffers(info.Env(), box, {w.inputNorm.buffer, w.qkv.buffer, w.o.buffer, w.postNorm.buffer, w.router.buffer}, op);
  const size_t kvDim = p.kvHeads * p.headDim;
  float* x = f32Arg(info, 2, op, "x", p.hidden);
  // positions up to pos are read and pos is written: the caches must hold pos + 1 rows
  const size_t pos = indexArg(info, 5, size_t(1) << 40, op, "pos");
  float* k = f32Arg(info, 3, op, "kCache", (pos + 1) * kvDim);
  float* v = f32Arg(info, 4, op, "vCache", (pos + 1) * kvDim);
  float* logits = f32Arg(info, 6, op, "routerLogits", p.experts);
  decodeAttention(p, l, x, k, v, pos, logits);
  return info.Env().Undefined();
}

Napi::Value DecodeExperts(const Args& info) {
  const char* op = "decodeExperts";
  need(info, 5, op);
  PlanBox& box = planArg(info, op);
  DecodePlan& p = box.plan;
  const size_t l = indexArg(info, 1, p.layers, op, "layer");
  if (p.pending != static_cast<long>(l)) rangeError(info.Env(), std::string(op) + ": layer " + std::to_string(l) + "'s attention half has not just run");
  float* x = f32Arg(info, 2, op, "x", p.hidden);
  ArrayView c = arrayArg(info, 3, op, "chosen");
  if (c.type != napi_int32_array) throw Napi::TypeError::New(info.Env(), std::string(op) + ": chosen must be an Int32Array");
  const size_t k = c.length;
  if (k == 0 || k > p.maxChosen) rangeError(info.Env(), std::string(op) + ": between 1 and " + std::to_string(p.maxChosen) + " experts (the plan's k)");
  const int32_t* chosen = static_cast<const int32_t*>(c.data);
  const float* weights = f32Arg(info, 4, op, "weights", k);
  const DecodeLayerWeights& w = p.layer[l];
  for (size_t j = 0; j < k; j++) {
    if (chosen[j] < 0 || static_cast<size_t>(chosen[j]) >= p.experts) rangeError(info.Env(), std::string(op) + ": expert " + std::to_string(chosen[j]) + " is out of range");
    for (size_t i = 0; i < j; i++)
      if (chosen[i] == chosen[j]) rangeError(info.Env(), std::string(op) + ": expert " + std::to_string(chosen[j]) + " chosen twice");
    const size_t e = static_cast<size_t>(chosen[j]);
    checkBuffers(info.Env(), box, {w.gate[e].buffer, w.up[e].buffer, w.down[e].buffer}, op);
  }
  decodeExperts(p, l, x, chosen, weights, k);
  return info.Env().Undefined();
}

}  // namespace

void InitDecode(Napi::Env env, Napi::Object exports) {
  exportFn<CreateDecodePlan>(env, exports, "createDecodePlan");
  exportFn<DecodeAttention>(env, exports, "decodeAttention");
  exportFn<DecodeExperts>(env, exports, "decodeExperts");
}

}  // namespace moesaic
