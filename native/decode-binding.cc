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

#include <cmath>
#include <memory>
#include <initializer_list>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "decode-layer.h"
#include "dtype.h"
#include "kernels.h"

namespace moesaic {
namespace {

struct PlanBox {
  DecodePlan plan;
  // every distinct ArrayBuffer under the weights, with its data pointer and length at creation
  std::vector<Napi::Reference<Napi::ArrayBuffer>> buffers;
  std::vector<std::pair<const void*, size_t>> shapes;
};

[[noreturn]] void rangeError(Napi::Env env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }

size_t count(Napi::Env env, double d, const char* what) {
  if (!(d >= 0) || d != std::floor(d) || d > 1e12) rangeError(env, std::string("createDecodePlan: ") + what + " must be a non-negative integer");
  return static_cast<size_t>(d);
}

Napi::TypedArray typed(Napi::Env env, Napi::Value v, const std::string& what) {
  if (!v.IsTypedArray()) throw Napi::TypeError::New(env, what + " must be a TypedArray");
  return v.As<Napi::TypedArray>();
}

// A weight of `elements` elements in `dtype` (f32: Float32Array; bf16/f16: Uint16Array of raw bits).
DecodeWeight weightAt(Napi::Env env, PlanBox& box, Napi::Array ws, const int32_t* dtypes, uint32_t i, size_t elements, const std::string& what) {
  Napi::TypedArray a = typed(env, ws.Get(i), "createDecodePlan: " + what);
  const int dtype = dtypes[i];
  const bool ok = dtype == kF32 ? a.TypedArrayType() == napi_float32_array
                                : (dtype == kBF16 || dtype == kF16) && a.TypedArrayType() == napi_uint16_array;
  if (!ok) throw Napi::TypeError::New(env, "createDecodePlan: " + what + " has the wrong array type for dtype code " + std::to_string(dtype));
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

Napi::Value CreateDecodePlanChecked(const Napi::CallbackInfo& info);

// Allocation failure (a plan's scratch) becomes a JavaScript error rather than an abort.
Napi::Value CreateDecodePlan(const Napi::CallbackInfo& info) {
  try {
    return CreateDecodePlanChecked(info);
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(info.Env(), "createDecodePlan: out of memory for the plan's scratch");
  }
}

Napi::Value CreateDecodePlanChecked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[1].IsArray()) throw Napi::TypeError::New(env, "createDecodePlan(sizes, weights, dtypes)");
  Napi::TypedArray sizesArr = typed(env, info[0], "createDecodePlan: sizes");
  Napi::TypedArray dtypesArr = typed(env, info[2], "createDecodePlan: dtypes");
  if (sizesArr.TypedArrayType() != napi_float64_array || sizesArr.ElementLength() < 13) rangeError(env, "createDecodePlan: sizes must be a Float64Array of 13");
  if (dtypesArr.TypedArrayType() != napi_int32_array) throw Napi::TypeError::New(env, "createDecodePlan: dtypes must be an Int32Array");
  const double* s = reinterpret_cast<const double*>(static_cast<const char*>(sizesArr.ArrayBuffer().Data()) + sizesArr.ByteOffset());
  const int32_t* dtypes = reinterpret_cast<const int32_t*>(static_cast<const char*>(dtypesArr.ArrayBuffer().Data()) + dtypesArr.ByteOffset());
  auto box = std::make_unique<PlanBox>();
  DecodePlan& p = box->plan;
  p.hidden = count(env, s[0], "hidden");
  p.heads = count(env, s[1], "heads");
  p.kvHeads = count(env, s[2], "kvHeads");
  p.headDim = count(env, s[3], "headDim");
  p.ffn = count(env, s[4], "ffn");
  p.experts = count(env, s[5], "experts");
  p.layers = count(env, s[6], "layers");
  p.window = count(env, s[7], "window");
  p.ropeTheta = s[8];
  p.eps = static_cast<float>(s[9]);
  p.expertDtype = static_cast<int>(s[10]);
  p.precision = static_cast<int>(s[11]);
  p.maxChosen = count(env, s[12], "k");
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
  if (ws.Length() != p.layers * perLayer || dtypesArr.ElementLength() != ws.Length())
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

PlanBox& planArg(const Napi::CallbackInfo& info, const char* op) {
  if (info.Length() < 1 || !info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), std::string(op) + ": the first argument must be a decode plan");
  PlanBox* b = info[0].As<Napi::External<PlanBox>>().Data();
  if (!b || b->plan.magic != DecodePlan::kMagic) throw Napi::TypeError::New(info.Env(), std::string(op) + ": the first argument is not a decode plan");
  return *b;
}

template <class T>
T* arrayOf(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type type, size_t need, const char* op, const char* name) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != type)
    throw Napi::TypeError::New(info.Env(), std::string(op) + ": " + name + " has the wrong type");
  Napi::TypedArray a = info[i].As<Napi::TypedArray>();
  if (a.ElementLength() < need)
    rangeError(info.Env(), std::string(op) + ": " + name + " has " + std::to_string(a.ElementLength()) + " elements, needs " + std::to_string(need));
  return reinterpret_cast<T*>(static_cast<char*>(a.ArrayBuffer().Data()) + a.ByteOffset());
}

size_t indexArg(const Napi::CallbackInfo& info, size_t i, size_t limit, const char* op, const char* name) {
  const double d = info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0) || d != std::floor(d) || d >= static_cast<double>(limit))
    rangeError(info.Env(), std::string(op) + ": " + name + " must be an integer in [0, " + std::to_string(limit) + ")");
  return static_cast<size_t>(d);
}

Napi::Value DecodeAttention(const Napi::CallbackInfo& info) {
  const char* op = "decodeAttention";
  PlanBox& box = planArg(info, op);
  DecodePlan& p = box.plan;
  const size_t l = indexArg(info, 1, p.layers, op, "layer");
  const DecodeLayerWeights& w = p.layer[l];
  checkBuffers(info.Env(), box, {w.inputNorm.buffer, w.qkv.buffer, w.o.buffer, w.postNorm.buffer, w.router.buffer}, op);
  const size_t kvDim = p.kvHeads * p.headDim;
  float* x = arrayOf<float>(info, 2, napi_float32_array, p.hidden, op, "x");
  // positions up to pos are read and pos is written: the caches must hold pos + 1 rows
  const size_t pos = indexArg(info, 5, size_t(1) << 40, op, "pos");
  float* k = arrayOf<float>(info, 3, napi_float32_array, (pos + 1) * kvDim, op, "kCache");
  float* v = arrayOf<float>(info, 4, napi_float32_array, (pos + 1) * kvDim, op, "vCache");
  float* logits = arrayOf<float>(info, 6, napi_float32_array, p.experts, op, "routerLogits");
  decodeAttention(p, l, x, k, v, pos, logits);
  return info.Env().Undefined();
}

Napi::Value DecodeExperts(const Napi::CallbackInfo& info) {
  const char* op = "decodeExperts";
  PlanBox& box = planArg(info, op);
  DecodePlan& p = box.plan;
  const size_t l = indexArg(info, 1, p.layers, op, "layer");
  if (p.pending != static_cast<long>(l)) rangeError(info.Env(), std::string(op) + ": layer " + std::to_string(l) + "'s attention half has not just run");
  float* x = arrayOf<float>(info, 2, napi_float32_array, p.hidden, op, "x");
  if (!info[3].IsTypedArray()) throw Napi::TypeError::New(info.Env(), std::string(op) + ": chosen must be an Int32Array");
  const size_t k = info[3].As<Napi::TypedArray>().ElementLength();
  if (k == 0 || k > p.maxChosen) rangeError(info.Env(), std::string(op) + ": between 1 and " + std::to_string(p.maxChosen) + " experts (the plan's k)");
  const int32_t* chosen = arrayOf<int32_t>(info, 3, napi_int32_array, k, op, "chosen");
  const float* weights = arrayOf<float>(info, 4, napi_float32_array, k, op, "weights");
  for (size_t j = 0; j < k; j++) {
    if (chosen[j] < 0 || static_cast<size_t>(chosen[j]) >= p.experts) rangeError(info.Env(), std::string(op) + ": expert " + std::to_string(chosen[j]) + " is out of range");
    for (size_t i = 0; i < j; i++)
      if (chosen[i] == chosen[j]) rangeError(info.Env(), std::string(op) + ": expert " + std::to_string(chosen[j]) + " chosen twice");
  }
  const DecodeLayerWeights& w = p.layer[l];
  for (size_t j = 0; j < k; j++) {
    const size_t e = static_cast<size_t>(chosen[j]);
    checkBuffers(info.Env(), box, {w.gate[e].buffer, w.up[e].buffer, w.down[e].buffer}, op);
  }
  decodeExperts(p, l, x, chosen, weights, k);
  return info.Env().Undefined();
}

}  // namespace

void InitDecode(Napi::Env env, Napi::Object exports) {
  exports.Set("createDecodePlan", Napi::Function::New(env, CreateDecodePlan, "createDecodePlan"));
  exports.Set("decodeAttention", Napi::Function::New(env, DecodeAttention, "decodeAttention"));
  exports.Set("decodeExperts", Napi::Function::New(env, DecodeExperts, "decodeExperts"));
}

}  // namespace moesaic
