// Process-wide LibTorch settings that come from config: thread count and device.
#ifndef DERMFED_COMMON_MODEL_RUNTIME_H_
#define DERMFED_COMMON_MODEL_RUNTIME_H_

#include <c10/core/Device.h>

#include <string>

#include "common/status.h"

namespace dermfed::model {

// Sets LibTorch's intra-op thread count; 0 means all cores. Debian's LibTorch otherwise
// starts with one. Returns the count in effect.
int ConfigureThreads(int threads);

// "auto" (CUDA when LibTorch sees a GPU, else CPU), "cpu", "cuda" or "cuda:N".
StatusOr<c10::Device> PickDevice(const std::string& preference);

}  // namespace dermfed::model

#endif  // DERMFED_COMMON_MODEL_RUNTIME_H_
