#include "coordinator/strategies/tensor_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/match.h"

namespace dermfed::coordinator {
namespace {

uint32_t FloatBits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

float BitsFloat(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

// Index of the first element whose exponent field is all ones (Inf or NaN), or -1. `Bits`
// is the unsigned type of the element's width. The inner loop ORs a flag over a block with
// no branch so it vectorizes; only a block that holds a bad value is scanned again.
template <typename Bits>
int64_t FirstAllOnesExponent(const uint8_t* data, int64_t numel, Bits exponent_mask) {
  constexpr int64_t kBlock = 1024;
  for (int64_t start = 0; start < numel; start += kBlock) {
    const int64_t end = std::min(numel, start + kBlock);
    Bits bad = 0;
    for (int64_t i = start; i < end; ++i) {
      Bits b;
      std::memcpy(&b, data + i * sizeof(Bits), sizeof(Bits));
      bad |= static_cast<Bits>((b & exponent_mask) == exponent_mask);
    }
    if (bad == 0) continue;
    for (int64_t i = start; i < end; ++i) {
      Bits b;
      std::memcpy(&b, data + i * sizeof(Bits), sizeof(Bits));
      if ((b & exponent_mask) == exponent_mask) return i;
    }
  }
  return -1;
}

std::string DescribeNonFinite(const uint8_t* data, DType dtype, int64_t i) {
  const double v = LoadAsDouble(data, dtype, i);
  return std::string("a non-finite value (") + (std::isnan(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf")) +
         ") at element " + std::to_string(i);
}

}  // namespace

bool IsFloating(DType dtype) {
  return dtype == DType::kFloat32 || dtype == DType::kFloat64 || dtype == DType::kFloat16 ||
         dtype == DType::kBFloat16;
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in float.
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    return BitsFloat(sign | FloatBits(magnitude));
  }
  if (exponent == 31) return BitsFloat(sign | 0x7f800000u | (mantissa << 13));
  return BitsFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

uint16_t FloatToHalf(float value) {
  const uint32_t x = FloatBits(value);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return sign | (abs > 0x7f800000u ? 0x7e00 : 0x7c00);
  if (abs >= 0x477ff000u) return sign | 0x7c00;  // >= 65520 rounds to Inf
  if (abs < 0x38800000u) {
    // Below 2^-14: a subnormal half. |value| * 2^24 is exact; rint rounds to nearest even
    // and may give 1024, which is the encoding of the smallest normal.
    const float scaled = BitsFloat(abs) * 16777216.0f;
    return sign | static_cast<uint16_t>(std::nearbyint(scaled));
  }
  // Re-bias the exponent from 127 to 15 and round the 13 dropped bits to nearest even.
  const uint32_t odd = (abs >> 13) & 1u;
  abs += 0xc8000fffu + odd;
  return sign | static_cast<uint16_t>(abs >> 13);
}

float BFloat16ToFloat(uint16_t bits) { return BitsFloat(static_cast<uint32_t>(bits) << 16); }

uint16_t FloatToBFloat16(float value) {
  uint32_t x = FloatBits(value);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x0040u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

int64_t FirstNonFinite(const uint8_t* data, DType dtype, int64_t numel) {
  switch (dtype) {
    case DType::kFloat32:
      return FirstAllOnesExponent<uint32_t>(data, numel, 0x7f800000u);
    case DType::kFloat64:
      return FirstAllOnesExponent<uint64_t>(data, numel, 0x7ff0000000000000ull);
    case DType::kFloat16:
      return FirstAllOnesExponent<uint16_t>(data, numel, 0x7c00u);
    case DType::kBFloat16:
      return FirstAllOnesExponent<uint16_t>(data, numel, 0x7f80u);
    default:
      return -1;
  }
}

double LoadAsDouble(const uint8_t* data, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::kFloat32: {
      float v;
      std::memcpy(&v, data + i * 4, 4);
      return v;
    }
    case DType::kFloat64: {
      double v;
      std::memcpy(&v, data + i * 8, 8);
      return v;
    }
    case DType::kFloat16:
    case DType::kBFloat16: {
      uint16_t v;
      std::memcpy(&v, data + i * 2, 2);
      return dtype == DType::kFloat16 ? HalfToFloat(v) : BFloat16ToFloat(v);
    }
    default:
      return 0.0;
  }
}

void StoreFromDouble(double value, DType dtype, int64_t i, uint8_t* data) {
  switch (dtype) {
    case DType::kFloat32: {
      const float v = static_cast<float>(value);
      std::memcpy(data + i * 4, &v, 4);
      return;
    }
    case DType::kFloat64:
      std::memcpy(data + i * 8, &value, 8);
      return;
    case DType::kFloat16:
    case DType::kBFloat16: {
      const float f = static_cast<float>(value);
      const uint16_t v = dtype == DType::kFloat16 ? FloatToHalf(f) : FloatToBFloat16(f);
      std::memcpy(data + i * 2, &v, 2);
      return;
    }
    default:
      return;
  }
}

void AxpyFloat(float* __restrict acc, const float* __restrict x, float w, size_t n) {
  for (size_t i = 0; i < n; ++i) acc[i] += w * x[i];
}

void AxpyDouble(double* __restrict acc, const double* __restrict x, double w, size_t n) {
  for (size_t i = 0; i < n; ++i) acc[i] += w * x[i];
}

void AxpyHalf(float* __restrict acc, const uint16_t* __restrict x, float w, size_t n) {
  for (size_t i = 0; i < n; ++i) acc[i] += w * HalfToFloat(x[i]);
}

void AxpyBFloat16(float* __restrict acc, const uint16_t* __restrict x, float w, size_t n) {
  for (size_t i = 0; i < n; ++i) acc[i] += w * BFloat16ToFloat(x[i]);
}

void ScaleFloat(float* x, float s, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] *= s;
}

void ScaleDouble(double* x, double s, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] *= s;
}

Status ValidateUpdate(const ModelState& layout, const std::string& site, int64_t num_examples,
                      const ModelState& delta) {
  const std::string who = "site " + site;
  if (num_examples <= 0) {
    return InvalidArgumentError(who + ": num_examples must be > 0, got " +
                                std::to_string(num_examples));
  }
  Status same = layout.CheckSameLayout(delta);
  if (!same.ok()) return Annotate(same, who + ": update does not match the global model");
  for (size_t t = 0; t < delta.num_tensors(); ++t) {
    const TensorSpec& spec = delta.manifest()[t];
    const int64_t bad = FirstNonFinite(delta.TensorData(t), spec.dtype, spec.numel());
    if (bad >= 0) {
      return InvalidArgumentError(who + ": tensor '" + spec.name + "' has " +
                                  DescribeNonFinite(delta.TensorData(t), spec.dtype, bad));
    }
  }
  return OkStatus();
}

Status ValidateAggregate(const ModelState& aggregate, const ModelState& global,
                         const std::set<std::string>& local_tensors) {
  Status same = global.CheckSameLayout(aggregate);
  if (!same.ok()) return Annotate(same, "aggregate delta does not match the global model");
  for (size_t t = 0; t < aggregate.num_tensors(); ++t) {
    const TensorSpec& spec = aggregate.manifest()[t];
    if (!IsAggregated(spec, local_tensors)) continue;
    const int64_t bad = FirstNonFinite(aggregate.TensorData(t), spec.dtype, spec.numel());
    if (bad >= 0) {
      return InvalidArgumentError("aggregate delta tensor '" + spec.name + "' has " +
                                  DescribeNonFinite(aggregate.TensorData(t), spec.dtype, bad));
    }
  }
  return OkStatus();
}

Status AddDelta(const ModelState& delta, const std::set<std::string>& local_tensors,
                ModelState* global) {
  DF_RETURN_IF_ERROR(ValidateAggregate(delta, *global, local_tensors));
  for (size_t t = 0; t < global->num_tensors(); ++t) {
    const TensorSpec& spec = global->manifest()[t];
    if (!IsAggregated(spec, local_tensors)) continue;
    const size_t n = static_cast<size_t>(spec.numel());
    uint8_t* dst = global->TensorData(t);
    const uint8_t* src = delta.TensorData(t);
    switch (spec.dtype) {
      case DType::kFloat32:
        AxpyFloat(reinterpret_cast<float*>(dst), reinterpret_cast<const float*>(src), 1.0f, n);
        break;
      case DType::kFloat64:
        AxpyDouble(reinterpret_cast<double*>(dst), reinterpret_cast<const double*>(src), 1.0, n);
        break;
      default:  // float16 / bfloat16: add exactly in double, round once
        for (size_t i = 0; i < n; ++i) {
          const double sum = LoadAsDouble(dst, spec.dtype, i) + LoadAsDouble(src, spec.dtype, i);
          StoreFromDouble(sum, spec.dtype, i, dst);
        }
        break;
    }
  }
  return OkStatus();
}

int64_t ClampRunningVariances(ModelState* state, std::vector<std::string>* tensors) {
  int64_t clamped = 0;
  for (size_t t = 0; t < state->num_tensors(); ++t) {
    const TensorSpec& spec = state->manifest()[t];
    if (!IsFloating(spec.dtype) || !absl::EndsWith(spec.name, "running_var")) continue;
    uint8_t* data = state->TensorData(t);
    int64_t here = 0;
    for (int64_t i = 0; i < spec.numel(); ++i) {
      if (LoadAsDouble(data, spec.dtype, i) < 0) {
        StoreFromDouble(0.0, spec.dtype, i, data);
        ++here;
      }
    }
    if (here > 0 && tensors != nullptr) tensors->push_back(spec.name);
    clamped += here;
  }
  return clamped;
}

}  // namespace dermfed::coordinator
