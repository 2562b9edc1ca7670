// The N-API surface of the fused decode step (decode-layer.h):
//   createDecodePlan(sizes: Float64Array [hidden, heads, kvHeads, headDim, ffn, experts, layers, window,
//                    ropeTheta, eps, expertDtype, precision], weights: TypedArray[] (per layer: input
//                    norm, q/k/v, o, post-attention norm, router, every expert's gate, then up, then
//                    down), dtypes: Int32Array (one per weight)) -> plan
//   decodeAttention(plan, layer, x, kCache, vCache, pos, routerLogits)
//   decodeExperts(plan, layer, x, chosen: Int32Array, weights: Float32Array)
// Every weight's size and array type is checked once, at plan creation; every call checks its own
// arrays, so a wrong call throws instead of touching memory out of bounds. The plan holds references to
// the weights, so they live as long as it does.
#include "decode-binding.h"

#include <cmath>
#include <memory>
#include <string>

#include "decode-layer.h"
#include "dtype.h"
#include "kernels.h"

namespace moesaic {
namespace {

struct PlanBox {
  DecodePlan plan;
  Napi::Reference<Napi::Array> keep;  // the weights' arrays
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
DecodeWeight weightAt(Napi::Env env, Napi::Array ws, const int32_t* dtypes, uint32_t i, size_t elements, const std::string& what) {
  Napi::TypedArray a = typed(env, ws.Get(i), "createDecodePlan: " + what);
  const int dtype = dtypes[i];
  const bool ok = dtype == kF32 ? a.TypedArrayType() == napi_float32_array
                                : (dtype == kBF16 || dtype == kF16) && a.TypedArrayType() == napi_uint16_array;
  if (!ok) throw Napi::TypeError::New(env, "createDecodePlan: " + what + " has the wrong array type for dtype code " + std::to_string(dtype));
  if (a.ElementLength() < elements)
    rangeError(env, "createDecodePlan: " + what + " has " + std::to_string(a.ElementLength()) + " elements, needs " + std::to_string(elements));
  return DecodeWeight{static_cast<const char*>(a.ArrayBuffer().Data()) + a.ByteOffset(), dtype};
}

Napi::Value CreateDecodePlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[1].IsArray()) throw Napi::TypeError::New(env, "createDecodePlan(sizes, weights, dtypes)");
  Napi::TypedArray sizesArr = typed(env, info[0], "createDecodePlan: sizes");
  Napi::TypedArray dtypesArr = typed(env, info[2], "createDecodePlan: dtypes");
  if (sizesArr.TypedArrayType() != napi_float64_array || sizesArr.ElementLength() < 12) rangeError(env, "createDecodePlan: sizes must be a Float64Array of 12");
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
  if (!p.hidden || !p.heads || !p.kvHeads || !p.headDim || !p.ffn || !p.experts || p.heads % p.kvHeads || p.headDim % 2 || p.experts > 4096 || p.hidden > (1u << 20) || p.ffn > (1u << 22))
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
    w.inputNorm = weightAt(env, ws, dtypes, b, H, at + "input norm");
    w.qkv = weightAt(env, ws, dtypes, b + 1, W * H, at + "q/k/v");
    w.o = weightAt(env, ws, dtypes, b + 2, H * qDim, at + "o");
    w.postNorm = weightAt(env, ws, dtypes, b + 3, H, at + "post-attention norm");
    w.router = weightAt(env, ws, dtypes, b + 4, E * H, at + "router");
    for (size_t e = 0; e < E; e++) {
      w.gate.push_back(weightAt(env, ws, dtypes, static_cast<uint32_t>(b + 5 + e), F * H, at + "gate"));
      w.up.push_back(weightAt(env, ws, dtypes, static_cast<uint32_t>(b + 5 + E + e), F * H, at + "up"));
      w.down.push_back(weightAt(env, ws, dtypes, static_cast<uint32_t>(b + 5 + 2 * E + e), H * F, at + "down"));
      for (const DecodeWeight* x : {&w.gate.back(), &w.up.back(), &w.down.back()})
        if (x->dtype != p.expertDtype) rangeError(env, "createDecodePlan: " + at + "experts must all have the dtype code " + std::to_string(p.expertDtype));
    }
  }
  p.h.resize(H);
  p.qkv.resize(W);
  p.ctx.resize(qDim);
  p.y.resize(H);
  p.xs.resize(kMaxChosen * H);
  p.ys.resize(kMaxChosen * H);
  p.act.resize(kMaxChosen * F);
  box->keep = Napi::Persistent(ws);
  return Napi::External<PlanBox>::New(env, box.release(), [](Napi::Env, PlanBox* b) { delete b; });
}

DecodePlan& planArg(const Napi::CallbackInfo& info, const char* op) {
  if (info.Length() < 1 || !info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), std::string(op) + ": the first argument must be a decode plan");
  PlanBox* b = info[0].As<Napi::External<PlanBox>>().Data();
  if (!b || b->plan.magic != DecodePlan::kMagic) throw Napi::TypeError::New(info.Env(), std::string(op) + ": the first argument is not a decode plan");
  return b->plan;
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
  DecodePlan& p = planArg(info, op);
  const size_t l = indexArg(info, 1, p.layers, op, "layer");
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
  DecodePlan& p = planArg(info, op);
  const size_t l = indexArg(info, 1, p.layers, op, "layer");
  if (p.pending != static_cast<long>(l)) rangeError(info.Env(), std::string(op) + ": layer " + std::to_string(l) + "'s attention half has not just run");
  float* x = arrayOf<float>(info, 2, napi_float32_array, p.hidden, op, "x");
  if (!info[3].IsTypedArray()) throw Napi::TypeError::New(info.Env(), std::string(op) + ": chosen must be an Int32Array");
  const size_t k = info[3].As<Napi::TypedArray>().ElementLength();
  if (k == 0 || k > kMaxChosen || k > p.experts) rangeError(info.Env(), std::string(op) + ": between 1 and " + std::to_string(kMaxChosen) + " experts, at most the layer's");
  const int32_t* chosen = arrayOf<int32_t>(info, 3, napi_int32_array, k, op, "chosen");
  const float* weights = arrayOf<float>(info, 4, napi_float32_array, k, op, "weights");
  for (size_t j = 0; j < k; j++) {
    if (chosen[j] < 0 || static_cast<size_t>(chosen[j]) >= p.experts) rangeError(info.Env(), std::string(op) + ": expert " + std::to_string(chosen[j]) + " is out of range");
    for (size_t i = 0; i < j; i++)
      if (chosen[i] == chosen[j]) rangeError(info.Env(), std::string(op) + ": expert " + std::to_string(chosen[j]) + " chosen twice");
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
