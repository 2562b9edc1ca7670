// The N-API surface of the addon. Arrays arrive as TypedArrays and are used in place (zero copy:
// the data pointer already includes the view's byte offset, so weight views into an mmapped file
// cost nothing). Every length is checked here against the sizes the op will touch, so a wrong call
// from JavaScript throws instead of reading or writing out of bounds; src/tensor/cpu-backend.ts
// checks first and gives the friendlier, tensor-naming message.
#include <napi.h>

#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#include "decode-binding.h"
#include "dispatch.h"
#include "dtype.h"
#include "expert-io.h"
#include "napi-args.h"
#include "experts.h"
#include "mapfile.h"
#include "quant-dispatch.h"
#include "quant-quantize.h"

namespace moesaic {
namespace {

// The optional precision argument: 0 exact (the default), 1 bf16 (kernels.h MatmulPrecision).
int precisionArg(const Args& info, size_t i, const char* op) {
  if (info[i].IsUndefined()) return kPrecisionExact;
  const int p = intArg(info, i);
  if (p != kPrecisionExact && p != kPrecisionBf16)
    throw Napi::RangeError::New(info.Env(), std::string(op) + ": precision must be 0 (exact) or 1 (bf16), got " + std::to_string(p));
  return p;
}

// bf16MatmulKernel(): what the bf16 precision mode runs now, "vdpbf16ps" or "rounded-f32" (the
// fallback: activations rounded to bf16, then the active table's f32 kernels).
Napi::Value Bf16MatmulKernel(const Args& info) {
  return Napi::String::New(info.Env(), bf16DotActive() ? "vdpbf16ps" : "rounded-f32");
}

// matmul(y, x, w, wDtype, rows, n, k, bias | null, biasDtype, precision?)
Napi::Value Matmul(const Args& info) {
  need(info, 9, "matmul");
  MatmulArgs a{};
  a.precision = precisionArg(info, 9, "matmul");
  a.rows = sizeArg(info, 4, "matmul", "rows");
  a.n = sizeArg(info, 5, "matmul", "n");
  a.k = sizeArg(info, 6, "matmul", "k");
  a.wDtype = intArg(info, 3);
  a.y = f32Arg(info, 0, "matmul", "y", prod(info, {a.rows, a.n}));
  a.x = f32Arg(info, 1, "matmul", "x", prod(info, {a.rows, a.k}));
  a.w = weightArg(info, 2, a.wDtype, "matmul", "w", prod(info, {a.n, a.k}));
  if (!info[7].IsNull() && !info[7].IsUndefined()) {
    a.biasDtype = intArg(info, 8);
    a.bias = weightArg(info, 7, a.biasDtype, "matmul", "bias", a.n);
  }
  runMatmul(a);
  return info.Env().Undefined();
}

// rmsNorm(y, x, g, gDtype, rows, dim, eps)
Napi::Value RmsNorm(const Args& info) {
  need(info, 7, "rmsNorm");
  RmsNormArgs a{};
  a.rows = sizeArg(info, 4, "rmsNorm", "rows");
  a.dim = sizeArg(info, 5, "rmsNorm", "dim");
  a.gDtype = intArg(info, 3);
  a.eps = info[6].As<Napi::Number>().FloatValue();
  a.y = f32Arg(info, 0, "rmsNorm", "y", prod(info, {a.rows, a.dim}));
  a.x = f32Arg(info, 1, "rmsNorm", "x", prod(info, {a.rows, a.dim}));
  a.g = weightArg(info, 2, a.gDtype, "rmsNorm", "g", a.dim);
  runRmsNorm(a);
  return info.Env().Undefined();
}

// Per-sequence counts: an Int32Array of n non-negative entries.
const int32_t* countsArg(const Args& info, size_t i, const char* op, const char* name, size_t n) {
  ArrayView a = arrayArg(info, i, op, name);
  if (a.type != napi_int32_array || a.length != n)
    throw Napi::TypeError::New(info.Env(), std::string(op) + ": " + name + " must be an Int32Array of " + std::to_string(n) + " entries");
  const int32_t* p = static_cast<const int32_t*>(a.data);
  for (size_t s = 0; s < n; s++)
    if (p[s] < 0) throw Napi::RangeError::New(info.Env(), std::string(op) + ": " + name + " must not be negative");
  return p;
}

// Array elements are fetched with napi_get_element, which runs JavaScript (a getter). So an op that
// takes arrays of arrays fetches every element first, and only then reads the counts and the views'
// lengths and data pointers, from which nothing JavaScript can change them again before the kernels
// run; and a getter calling back into the same op is refused (it would reuse this thread's buffers).
class NoReentry {
 public:
  NoReentry(napi_env env, bool& busy, const char* op) : busy_(busy) {
    if (busy_) throw Napi::Error::New(env, std::string(op) + ": called again from inside its own argument");
    busy_ = true;
  }
  ~NoReentry() { busy_ = false; }

 private:
  bool& busy_;
};

void fetchElements(const Args& info, Napi::Array arr, size_t n, std::vector<napi_value>& out) {
  if (out.size() < n) out.resize(n);
  for (size_t i = 0; i < n; i++)
    if (napi_get_element(info.Env(), arr, static_cast<uint32_t>(i), &out[i]) != napi_ok)
      throw Napi::Error::New(info.Env());  // the getter's own exception, taken over and rethrown
}

// A Float32Array fetched from a JS Array (element i), with at least `need` elements.
float* f32Element(const Args& info, napi_value v, size_t i, const char* op, const char* name, size_t need) {
  bool isTyped = false;
  napi_is_typedarray(info.Env(), v, &isTyped);
  napi_typedarray_type type = napi_int8_array;
  size_t length = 0;
  void* data = nullptr;
  if (isTyped) napi_get_typedarray_info(info.Env(), v, &type, &length, &data, nullptr, nullptr);
  const std::string what = std::string(op) + ": " + name + "[" + std::to_string(i) + "]";
  if (!isTyped || type != napi_float32_array) throw Napi::TypeError::New(info.Env(), what + " must be a Float32Array");
  if (length < need) throw Napi::RangeError::New(info.Env(), what + " has " + std::to_string(length) + " elements, needs " + std::to_string(need));
  return static_cast<float*>(data);
}

// rope(x, tokens, pos0, heads, headDim, theta): sequence s's tokens[s] rows of x (one after another)
// sit at positions pos0[s], pos0[s] + 1, ...
Napi::Value Rope(const Args& info) {
  const char* op = "rope";
  need(info, 6, op);
  ArrayView tv = arrayArg(info, 1, op, "tokens");
  const size_t n = tv.length;
  const int32_t* tokens = countsArg(info, 1, op, "tokens", n);
  const int32_t* pos0 = countsArg(info, 2, op, "pos0", n);
  const size_t heads = sizeArg(info, 3, op, "heads"), headDim = sizeArg(info, 4, op, "headDim");
  const double theta = info[5].As<Napi::Number>().DoubleValue();
  if (headDim % 2 != 0) throw Napi::RangeError::New(info.Env(), "rope: headDim must be even");
  size_t total = 0;
  for (size_t s = 0; s < n; s++) total += static_cast<size_t>(tokens[s]);
  float* x = f32Arg(info, 0, op, "x", prod(info, {total, heads, headDim}));
  thread_local std::vector<RopeArgs> seqs;  // grow-only: no allocation per call in steady state
  if (seqs.size() < n) seqs.resize(n);
  size_t row = 0;
  for (size_t s = 0; s < n; s++) {
    seqs[s] = RopeArgs{x + row * heads * headDim, static_cast<size_t>(tokens[s]), heads, headDim, static_cast<double>(pos0[s]), theta};
    row += static_cast<size_t>(tokens[s]);
  }
  runRope(seqs.data(), n);
  return info.Env().Undefined();
}

// attention(out, q, kCaches, vCaches, tokens, pos0, heads, kvHeads, headDim, window): sequence s's
// tokens[s] query rows (one after another in q and out) attend over its own caches, which hold
// positions [0, pos0[s] + tokens[s]).
Napi::Value Attention(const Args& info) {
  const char* op = "attention";
  need(info, 10, op);
  thread_local bool busy = false;
  NoReentry guard(info.Env(), busy, op);
  if (!info[2].IsArray() || !info[3].IsArray()) throw Napi::TypeError::New(info.Env(), "attention: kCaches and vCaches must be Arrays");
  Napi::Array ks = info[2].As<Napi::Array>(), vs = info[3].As<Napi::Array>();
  const size_t nk = ks.Length();
  if (vs.Length() != nk) throw Napi::RangeError::New(info.Env(), "attention: one kCache and one vCache per sequence");
  thread_local std::vector<napi_value> kv, vv;
  fetchElements(info, ks, nk, kv);
  fetchElements(info, vs, nk, vv);
  // from here on no JavaScript runs
  ArrayView tv = arrayArg(info, 4, op, "tokens");
  const size_t n = tv.length;
  if (n != nk) throw Napi::RangeError::New(info.Env(), "attention: one kCache and one vCache per sequence");
  const int32_t* tokens = countsArg(info, 4, op, "tokens", n);
  const int32_t* pos0 = countsArg(info, 5, op, "pos0", n);
  const size_t heads = sizeArg(info, 6, op, "heads"), kvHeads = sizeArg(info, 7, op, "kvHeads");
  const size_t headDim = sizeArg(info, 8, op, "headDim"), window = sizeArg(info, 9, op, "window");
  if (kvHeads == 0 || heads % kvHeads != 0) throw Napi::RangeError::New(info.Env(), "attention: heads must be a multiple of kvHeads");
  if (headDim == 0) throw Napi::RangeError::New(info.Env(), "attention: headDim must be positive");
  size_t total = 0;
  for (size_t s = 0; s < n; s++) total += static_cast<size_t>(tokens[s]);
  float* out = f32Arg(info, 0, op, "out", prod(info, {total, heads, headDim}));
  const float* q = f32Arg(info, 1, op, "q", prod(info, {total, heads, headDim}));
  thread_local std::vector<AttentionArgs> seqs;  // grow-only: no allocation per call in steady state
  if (seqs.size() < n) seqs.resize(n);
  size_t row = 0;
  for (size_t s = 0; s < n; s++) {
    const size_t t = static_cast<size_t>(tokens[s]), p = static_cast<size_t>(pos0[s]);
    const size_t ctx = prod(info, {p + t, kvHeads, headDim});
    AttentionArgs& a = seqs[s];
    a.out = out + row * heads * headDim;
    a.q = q + row * heads * headDim;
    a.k = f32Element(info, kv[s], s, op, "kCaches", ctx);
    a.v = f32Element(info, vv[s], s, op, "vCaches", ctx);
    a.tokens = t;
    a.pos0 = p;
    a.heads = heads;
    a.kvHeads = kvHeads;
    a.headDim = headDim;
    a.window = window;
    row += t;
  }
  runAttention(seqs.data(), n);
  return info.Env().Undefined();
}

// siluMul(out, gate, up, n)
Napi::Value SiluMul(const Args& info) {
  need(info, 4, "siluMul");
  SiluMulArgs a{};
  a.n = sizeArg(info, 3, "siluMul", "n");
  a.out = f32Arg(info, 0, "siluMul", "out", a.n);
  a.gate = f32Arg(info, 1, "siluMul", "gate", a.n);
  a.up = f32Arg(info, 2, "siluMul", "up", a.n);
  runSiluMul(a);
  return info.Env().Undefined();
}

Napi::Value Isa(const Args& info) { return Napi::String::New(info.Env(), currentIsa()); }

Napi::Value SetIsa(const Args& info) {
  need(info, 1, "setIsa");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (!selectIsa(name)) {
    std::string have;
    for (const std::string& s : supportedIsas()) have += (have.empty() ? "" : ", ") + s;
    throw Napi::Error::New(info.Env(), "instruction set '" + name + "' is not available on this CPU (available: " +
                                           have + ")");
  }
  return info.Env().Undefined();
}

Napi::Value SupportedIsas(const Args& info) {
  std::vector<std::string> all = supportedIsas();
  Napi::Array out = Napi::Array::New(info.Env(), all.size());
  for (size_t i = 0; i < all.size(); i++) out.Set(static_cast<uint32_t>(i), all[i]);
  return out;
}

Napi::Value GetThreads(const Args& info) { return Napi::Number::New(info.Env(), threadCount()); }

Napi::Value SetThreads(const Args& info) {
  need(info, 1, "setThreads");
  size_t n = sizeArg(info, 0, "setThreads", "n");
  if (n < 1 || n > 256) throw Napi::RangeError::New(info.Env(), "setThreads: n must be in 1..256");
  setThreadCount(static_cast<int>(n));
  return info.Env().Undefined();
}

// setPoolProfiling(on): coordination counters of the kernel pool on (reset) or off
Napi::Value SetPoolProfiling(const Args& info) {
  need(info, 1, "setPoolProfiling");
  setPoolProfiling(info[0].ToBoolean().Value());
  return info.Env().Undefined();
}

// poolStats() -> { jobs, inlineJobs, callerWaitMs, pickups, wakeMs, sleepWakes }
Napi::Value GetPoolStats(const Args& info) {
  const PoolStats s = poolStats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("jobs", Napi::Number::New(info.Env(), static_cast<double>(s.jobs)));
  o.Set("inlineJobs", Napi::Number::New(info.Env(), static_cast<double>(s.inlineJobs)));
  o.Set("callerWaitMs", Napi::Number::New(info.Env(), static_cast<double>(s.callerWaitNs) / 1e6));
  o.Set("pickups", Napi::Number::New(info.Env(), static_cast<double>(s.pickups)));
  o.Set("wakeMs", Napi::Number::New(info.Env(), static_cast<double>(s.wakeNs) / 1e6));
  o.Set("sleepWakes", Napi::Number::New(info.Env(), static_cast<double>(s.sleepWakes)));
  return o;
}

// swiGlu(out, x, wg, wu, wDtype, rows, n, k, precision?)
Napi::Value SwiGlu(const Args& info) {
  need(info, 8, "swiGlu");
  SwiGluArgs a{};
  a.precision = precisionArg(info, 8, "swiGlu");
  a.wDtype = intArg(info, 4);
  a.rows = sizeArg(info, 5, "swiGlu", "rows");
  a.n = sizeArg(info, 6, "swiGlu", "n");
  a.k = sizeArg(info, 7, "swiGlu", "k");
  a.out = f32Arg(info, 0, "swiGlu", "out", prod(info, {a.rows, a.n}));
  a.x = f32Arg(info, 1, "swiGlu", "x", prod(info, {a.rows, a.k}));
  a.wg = weightArg(info, 2, a.wDtype, "swiGlu", "gate", prod(info, {a.n, a.k}));
  a.wu = weightArg(info, 3, a.wDtype, "swiGlu", "up", prod(info, {a.n, a.k}));
  runSwiGlu(a);
  return info.Env().Undefined();
}

// expertsSwiGlu(out, x, act, weights, rowStarts, wDtype, hidden, ffn): weights is an Array of 3 per
// group (gate, up, down); group g covers rows [rowStarts[g], rowStarts[g + 1]) of x, out and act.
Napi::Value ExpertsSwiGlu(const Args& info) {
  const char* op = "expertsSwiGlu";
  need(info, 8, op);
  thread_local bool busy = false;
  NoReentry guard(info.Env(), busy, op);
  if (!info[3].IsArray()) throw Napi::TypeError::New(info.Env(), std::string(op) + ": weights must be an Array");
  Napi::Array ws = info[3].As<Napi::Array>();
  const size_t nw = ws.Length();
  thread_local std::vector<napi_value> wv;
  fetchElements(info, ws, nw, wv);
  // from here on no JavaScript runs
  ExpertsArgs a{};
  a.precision = precisionArg(info, 8, op);
  a.wDtype = intArg(info, 5);
  a.hidden = sizeArg(info, 6, op, "hidden");
  a.ffn = sizeArg(info, 7, op, "ffn");
  ArrayView starts = arrayArg(info, 4, op, "rowStarts");
  if (starts.type != napi_int32_array || starts.length < 1) throw Napi::TypeError::New(info.Env(), std::string(op) + ": rowStarts must be a non-empty Int32Array");
  const int32_t* rs = static_cast<const int32_t*>(starts.data);
  a.count = starts.length - 1;
  if (nw != 3 * a.count) throw Napi::RangeError::New(info.Env(), std::string(op) + ": weights must hold 3 per group");
  if (rs[0] < 0) throw Napi::RangeError::New(info.Env(), std::string(op) + ": rowStarts must start at 0 or more");
  for (size_t g = 0; g < a.count; g++)
    if (rs[g + 1] < rs[g]) throw Napi::RangeError::New(info.Env(), std::string(op) + ": rowStarts must not decrease");
  const size_t rows = static_cast<size_t>(rs[a.count]);
  a.out = f32Arg(info, 0, op, "out", prod(info, {rows, a.hidden}));
  a.x = f32Arg(info, 1, op, "x", prod(info, {rows, a.hidden}));
  a.act = f32Arg(info, 2, op, "act", prod(info, {rows, a.ffn}));
  const size_t wlen = prod(info, {a.hidden, a.ffn});
  // Grow-only per calling thread: no allocation per call once the widest layer has been seen.
  thread_local std::vector<ExpertGroup> groups;
  if (groups.size() < a.count) groups.resize(a.count);
  for (size_t g = 0; g < a.count; g++) {
    ExpertGroup& e = groups[g];
    const void* w3[3];
    for (int m = 0; m < 3; m++) {
      napi_value v = wv[3 * g + m];
      bool isTyped = false;
      napi_is_typedarray(info.Env(), v, &isTyped);
      if (!isTyped) throw Napi::TypeError::New(info.Env(), std::string(op) + ": weights[" + std::to_string(3 * g + m) + "] must be a TypedArray");
      napi_typedarray_type type;
      size_t length;
      void* data;
      napi_get_typedarray_info(info.Env(), v, &type, &length, &data, nullptr, nullptr);
      const bool ok = a.wDtype == kF32 ? type == napi_float32_array : (a.wDtype == kBF16 || a.wDtype == kF16) && type == napi_uint16_array;
      if (!ok) throw Napi::TypeError::New(info.Env(), std::string(op) + ": weights[" + std::to_string(3 * g + m) + "] has the wrong array type for dtype code " + std::to_string(a.wDtype));
      if (length < wlen) throw Napi::RangeError::New(info.Env(), std::string(op) + ": weights[" + std::to_string(3 * g + m) + "] has " + std::to_string(length) + " elements, needs " + std::to_string(wlen));
      w3[m] = data;
    }
    e.wg = w3[0];
    e.wu = w3[1];
    e.wd = w3[2];
    e.row0 = static_cast<size_t>(rs[g]);
    e.rows = static_cast<size_t>(rs[g + 1] - rs[g]);
  }
  a.groups = groups.data();
  runExpertsSwiGlu(a);
  return info.Env().Undefined();
}

// quantMatmul(y, x, w, wDtype, rows, n, k, up | null): y = x · Wᵀ on block-quantized W (Uint8Array of
// its blocks), or the fused SwiGLU silu(x · Wᵀ) * (x · Upᵀ) when up is given.
Napi::Value QuantMatmul(const Args& info) {
  need(info, 8, "quantMatmul");
  QuantMatmulArgs a{};
  a.wDtype = intArg(info, 3);
  if (!isQuantDtype(a.wDtype))
    throw Napi::TypeError::New(info.Env(), "quantMatmul: dtype code " + std::to_string(a.wDtype) + " is not a quantized type");
  a.rows = sizeArg(info, 4, "quantMatmul", "rows");
  a.n = sizeArg(info, 5, "quantMatmul", "n");
  a.k = sizeArg(info, 6, "quantMatmul", "k");
  if (a.k % quantBlock(a.wDtype) != 0)
    throw Napi::RangeError::New(info.Env(), "quantMatmul: k must be a multiple of " + std::to_string(quantBlock(a.wDtype)));
  a.rowBytes = a.k / quantBlock(a.wDtype) * quantBlockBytes(a.wDtype);
  a.y = f32Arg(info, 0, "quantMatmul", "y", prod(info, {a.rows, a.n}));
  const float* x = f32Arg(info, 1, "quantMatmul", "x", prod(info, {a.rows, a.k}));
  const size_t bytes = prod(info, {a.n, a.rowBytes});
  for (size_t i : {2u, 7u}) {
    if (i == 7 && (info[7].IsNull() || info[7].IsUndefined())) break;
    ArrayView w = arrayArg(info, i, "quantMatmul", i == 2 ? "w" : "up");
    if (w.type != napi_uint8_array) throw Napi::TypeError::New(info.Env(), "quantMatmul: weights must be a Uint8Array");
    if (w.length < bytes)
      throw Napi::RangeError::New(info.Env(), "quantMatmul: weights have " + std::to_string(w.length) + " bytes, need " + std::to_string(bytes));
    (i == 2 ? a.w : a.up) = static_cast<const uint8_t*>(w.data);
  }
  runQuantMatmul(a, x);
  return info.Env().Undefined();
}

// quantizeRows(x, out, dtype, rows, k): rows of f32 weights into ggml blocks (src/tensor/quant/quantize.ts).
Napi::Value QuantizeRows(const Args& info) {
  need(info, 5, "quantizeRows");
  const int dtype = intArg(info, 2);
  if (!isQuantDtype(dtype)) throw Napi::TypeError::New(info.Env(), "quantizeRows: dtype code " + std::to_string(dtype) + " is not a quantized type");
  const size_t rows = sizeArg(info, 3, "quantizeRows", "rows"), k = sizeArg(info, 4, "quantizeRows", "k");
  if (k % quantBlock(dtype) != 0)
    throw Napi::RangeError::New(info.Env(), "quantizeRows: k must be a multiple of " + std::to_string(quantBlock(dtype)));
  const float* x = f32Arg(info, 0, "quantizeRows", "x", prod(info, {rows, k}));
  ArrayView o = arrayArg(info, 1, "quantizeRows", "out");
  const size_t bytes = prod(info, {rows, k / quantBlock(dtype), quantBlockBytes(dtype)});
  if (o.type != napi_uint8_array || o.length < bytes)
    throw Napi::RangeError::New(info.Env(), "quantizeRows: out must be a Uint8Array of at least " + std::to_string(bytes) + " bytes");
  quantizeRows(dtype, x, rows, k, static_cast<uint8_t*>(o.data));
  return info.Env().Undefined();
}

Napi::Value QuantIsa(const Args& info) { return Napi::String::New(info.Env(), quantIsa()); }

// readBandwidthGBs(megabytes, reps)
Napi::Value ReadBandwidth(const Args& info) {
  need(info, 2, "readBandwidthGBs");
  size_t mb = sizeArg(info, 0, "readBandwidthGBs", "megabytes");
  size_t reps = sizeArg(info, 1, "readBandwidthGBs", "reps");
  if (mb < 1 || mb > 65536) throw Napi::RangeError::New(info.Env(), "readBandwidthGBs: megabytes must be in 1..65536");
  return Napi::Number::New(info.Env(), measureReadBandwidth(mb << 20, static_cast<int>(std::min<size_t>(reps, 1000))));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exportFn<Matmul>(env, exports, "matmul");
  exportFn<RmsNorm>(env, exports, "rmsNorm");
  exportFn<Rope>(env, exports, "rope");
  exportFn<Attention>(env, exports, "attention");
  exportFn<SiluMul>(env, exports, "siluMul");
  exportFn<SwiGlu>(env, exports, "swiGlu");
  exportFn<ExpertsSwiGlu>(env, exports, "expertsSwiGlu");
  exportFn<Bf16MatmulKernel>(env, exports, "bf16MatmulKernel");
  exportFn<Isa>(env, exports, "isa");
  exportFn<SetIsa>(env, exports, "setIsa");
  exportFn<SupportedIsas>(env, exports, "supportedIsas");
  exportFn<GetThreads>(env, exports, "getThreads");
  exportFn<SetThreads>(env, exports, "setThreads");
  exportFn<ReadBandwidth>(env, exports, "readBandwidthGBs");
  exportFn<QuantMatmul>(env, exports, "quantMatmul");
  exportFn<QuantIsa>(env, exports, "quantIsa");
  exportFn<QuantizeRows>(env, exports, "quantizeRows");
  exportFn<SetPoolProfiling>(env, exports, "setPoolProfiling");
  exportFn<GetPoolStats>(env, exports, "poolStats");
  exports.Set("mapFile", Napi::Function::New(env, MapFile, "mapFile"));
  exports.Set("allocHugePages", Napi::Function::New(env, AllocHugePages, "allocHugePages"));
  exports.Set("releasePages", Napi::Function::New(env, ReleasePages, "releasePages"));
  InitExpertArena(env, exports);
  InitDecode(env, exports);
  return exports;
}

}  // namespace
}  // namespace moesaic

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return moesaic::Init(env, exports); }

NODE_API_MODULE(moesaic_native, InitModule)
