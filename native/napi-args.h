// Reading N-API arguments on the hot entry points: a fixed argument array (no heap), TypedArrays used
// in place, every length checked against what the op will touch. Shared by binding.cc and
// decode-binding.cc.
#pragma once

#include <napi.h>

#include <cmath>
#include <initializer_list>
#include <string>

#include "dtype.h"

namespace moesaic {

/**
 * The arguments of one call, read with napi_get_cb_info into a fixed array. Napi::CallbackInfo heap-
 * allocates when a call has more than 6 arguments (matmul has 9, attention 10), and these functions
 * run hundreds of times per decoded token, so the hot entry points use this instead.
 */
class Args {
 public:
  static constexpr size_t kMax = 12;
  Args(napi_env env, napi_callback_info info) : env_(env) {
    napi_get_cb_info(env, info, &argc_, argv_, nullptr, nullptr);
  }
  Napi::Env Env() const { return env_; }
  size_t Length() const { return argc_; }
  Napi::Value operator[](size_t i) const { return i < argc_ && i < kMax ? Napi::Value(env_, argv_[i]) : env_.Undefined(); }

 private:
  Napi::Env env_;
  size_t argc_ = kMax;
  napi_value argv_[kMax];
};

// Adapts `Napi::Value f(const Args&)` to a raw N-API callback, turning C++ exceptions into JS ones.
template <Napi::Value (*F)(const Args&)>
napi_value entry(napi_env env, napi_callback_info info) {
  try {
    return F(Args(env, info));
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
    return nullptr;
  }
}

template <Napi::Value (*F)(const Args&)>
void exportFn(Napi::Env env, Napi::Object exports, const char* name) {
  napi_value fn;
  NAPI_THROW_IF_FAILED_VOID(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, entry<F>, nullptr, &fn));
  exports.Set(name, Napi::Value(env, fn));
}

struct ArrayView {
  void* data;
  size_t length;  // elements
  napi_typedarray_type type;
};

inline ArrayView arrayArg(const Args& info, size_t i, const char* op, const char* name) {
  napi_value v = info[i];
  bool isTyped = false;
  napi_is_typedarray(info.Env(), v, &isTyped);
  if (!isTyped) throw Napi::TypeError::New(info.Env(), std::string(op) + ": " + name + " must be a TypedArray");
  ArrayView a{};
  napi_status s = napi_get_typedarray_info(info.Env(), v, &a.type, &a.length, &a.data, nullptr, nullptr);
  if (s != napi_ok) throw Napi::Error::New(info.Env(), std::string(op) + ": cannot read " + name);
  return a;
}

inline float* f32Arg(const Args& info, size_t i, const char* op, const char* name, size_t need) {
  ArrayView a = arrayArg(info, i, op, name);
  if (a.type != napi_float32_array)
    throw Napi::TypeError::New(info.Env(), std::string(op) + ": " + name + " must be a Float32Array");
  if (a.length < need)
    throw Napi::RangeError::New(info.Env(), std::string(op) + ": " + name + " has " + std::to_string(a.length) +
                                                " elements, needs " + std::to_string(need));
  return static_cast<float*>(a.data);
}

// Whether a TypedArray of `type` holds weights of `dtype`: Float32Array for f32, Uint16Array of raw
// bits for bf16/f16.
inline bool arrayHoldsDtype(napi_typedarray_type type, int dtype) {
  return dtype == kF32 ? type == napi_float32_array : (dtype == kBF16 || dtype == kF16) && type == napi_uint16_array;
}

// A weight (see arrayHoldsDtype) of at least `need` elements.
inline const void* weightArg(const Args& info, size_t i, int dtype, const char* op, const char* name,
                      size_t need) {
  ArrayView a = arrayArg(info, i, op, name);
  if (!arrayHoldsDtype(a.type, dtype))
    throw Napi::TypeError::New(info.Env(), std::string(op) + ": " + name + " has the wrong array type for dtype code " +
                                               std::to_string(dtype));
  if (a.length < need)
    throw Napi::RangeError::New(info.Env(), std::string(op) + ": " + name + " has " + std::to_string(a.length) +
                                                " elements, needs " + std::to_string(need));
  return a.data;
}

inline size_t sizeArg(const Args& info, size_t i, const char* op, const char* name) {
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d != std::floor(d) || d > 9.0e15)
    throw Napi::RangeError::New(info.Env(), std::string(op) + ": " + name + " must be a non-negative integer");
  return static_cast<size_t>(d);
}

// Product of sizes, refusing overflow (a huge product would otherwise wrap and pass the length checks).
inline size_t prod(const Args& info, std::initializer_list<size_t> xs) {
  size_t p = 1;
  for (size_t x : xs)
    if (__builtin_mul_overflow(p, x, &p)) throw Napi::RangeError::New(info.Env(), "size overflow");
  return p;
}

inline int intArg(const Args& info, size_t i) { return info[i].As<Napi::Number>().Int32Value(); }

inline void need(const Args& info, size_t n, const char* op) {
  if (info.Length() < n)
    throw Napi::TypeError::New(info.Env(), std::string(op) + ": expected " + std::to_string(n) + " arguments");
}

}  // namespace moesaic
