// createDecodePlan / decodeAttention / decodeExperts: see decode-binding.cc.
#pragma once

#include <napi.h>

namespace moesaic {

void InitDecode(Napi::Env env, Napi::Object exports);

}  // namespace moesaic
