#include "common/update_codec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "absl/strings/match.h"

namespace dermfed {
namespace {

constexpr char kMagic[4] = {'D', 'F', 'U', '1'};
constexpr uint64_t kHeaderBytes = 12;  // magic, codec, 3 zero bytes, tensor count
constexpr float kHalfMax = 65504.0f;

// BatchNorm's running statistics are state, not gradients: a rounded or partly sent (top-k
// with a stale residual) running_var delta can drive the variance negative and the model to
// NaN, so they travel raw. They are a tiny share of any model.
bool IsRunningStatistic(const std::string& name) {
  return absl::EndsWith(name, "running_mean") || absl::EndsWith(name, "running_var");
}

bool Compressed(const TensorSpec& t) {
  return t.dtype == DType::kFloat32 && !IsRunningStatistic(t.name);
}

// IEEE 754 binary32 -> binary16, round to nearest even. REQUIRES |f| finite and
// representable (the encoder checks); tiny values become half subnormals or zero.
uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  uint32_t mant = x & 0x7fffffu;
  const int32_t e = static_cast<int32_t>((x >> 23) & 0xffu) - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00u;  // not reached: the encoder refuses overflow
  if (e <= 0) {
    if (e < -10) return sign;  // below half the smallest subnormal
    mant |= 0x800000u;
    const uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is right
  return static_cast<uint16_t>(sign | h);
}

float HalfToFloat(uint16_t h) {
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(mant), -24);
  } else {
    const uint32_t x = ((exp - 15 + 127) << 23) | (mant << 13);
    std::memcpy(&v, &x, sizeof v);
  }
  return (h & 0x8000u) ? -v : v;
}

template <typename T>
void Put(uint8_t*& out, T value) {
  std::memcpy(out, &value, sizeof value);
  out += sizeof value;
}

// A bounds-checked cursor over untrusted bytes.
class Reader {
 public:
  Reader(const uint8_t* data, uint64_t size) : data_(data), size_(size) {}
  bool Has(uint64_t n) const { return n <= size_ - at_; }
  template <typename T>
  T Get() {  // REQUIRES: Has(sizeof(T))
    T v;
    std::memcpy(&v, data_ + at_, sizeof v);
    at_ += sizeof v;
    return v;
  }
  const uint8_t* Take(uint64_t n) {  // REQUIRES: Has(n)
    const uint8_t* p = data_ + at_;
    at_ += n;
    return p;
  }
  uint64_t left() const { return size_ - at_; }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t at_ = 0;
};

uint64_t TensorEncodedBytes(const TensorSpec& t, const CodecOptions& o) {
  if (!Compressed(t)) return t.nbytes;
  const uint64_t n = static_cast<uint64_t>(t.numel());
  switch (o.codec) {
    case UpdateCodec::kFp16:
      return 2 * n;
    case UpdateCodec::kInt8:
      return 4 + n;
    case UpdateCodec::kTopK:
      return 4 + 8 * TopKCount(t.numel(), o.topk_fraction);
    case UpdateCodec::kNone:
      break;
  }
  return t.nbytes;
}

Status EncodeFp16(const TensorSpec& t, const float* x, uint8_t*& out) {
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) {
    if (!(std::fabs(x[i]) <= kHalfMax)) {
      return InvalidArgumentError("tensor '" + t.name + "': value " + std::to_string(x[i]) +
                                  " at index " + std::to_string(i) +
                                  " is not finite or beyond float16's range (±65504)");
    }
    Put<uint16_t>(out, FloatToHalf(x[i]));
  }
  return OkStatus();
}

Status EncodeInt8(const TensorSpec& t, const float* x, uint8_t*& out) {
  const int64_t n = t.numel();
  float max_abs = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) {
      return InvalidArgumentError("tensor '" + t.name + "': value at index " + std::to_string(i) +
                                  " is not finite");
    }
    max_abs = std::max(max_abs, std::fabs(x[i]));
  }
  const float scale = max_abs / 127.0f;
  Put<float>(out, scale);
  for (int64_t i = 0; i < n; ++i) {
    const float q = scale > 0 ? std::nearbyint(x[i] / scale) : 0.0f;
    Put<int8_t>(out, static_cast<int8_t>(std::clamp(q, -127.0f, 127.0f)));
  }
  return OkStatus();
}

// Writes the k largest-magnitude values of x (ties: lower index first) and zeroes them in
// `unsent` when given (error feedback keeps the rest).
Status EncodeTopK(const TensorSpec& t, const float* x, uint64_t k, uint8_t*& out, float* unsent) {
  const int64_t n = t.numel();
  if (static_cast<uint64_t>(n) > std::numeric_limits<uint32_t>::max()) {
    return InvalidArgumentError("tensor '" + t.name + "' has " + std::to_string(n) +
                                " elements, more than topk's 32-bit indices can address");
  }
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) {
      return InvalidArgumentError("tensor '" + t.name + "': value at index " + std::to_string(i) +
                                  " is not finite");
    }
  }
  std::vector<uint32_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0u);
  auto larger = [x](uint32_t a, uint32_t b) {
    const float fa = std::fabs(x[a]), fb = std::fabs(x[b]);
    return fa > fb || (fa == fb && a < b);
  };
  if (k < order.size()) {
    std::nth_element(order.begin(), order.begin() + static_cast<int64_t>(k), order.end(), larger);
  }
  order.resize(k);
  std::sort(order.begin(), order.end());
  Put<uint32_t>(out, static_cast<uint32_t>(k));
  for (uint32_t i : order) Put<uint32_t>(out, i);
  for (uint32_t i : order) Put<float>(out, x[i]);
  if (unsent != nullptr) {
    for (uint32_t i : order) unsent[i] = 0;
  }
  return OkStatus();
}

Status DecodeTensor(const TensorSpec& t, const CodecOptions& o, Reader& in, uint8_t* dst) {
  const auto bad = [&t](const std::string& why) {
    return InvalidArgumentError("tensor '" + t.name + "': " + why);
  };
  const uint64_t need = TensorEncodedBytes(t, o);
  if (!in.Has(need)) {
    return bad("needs " + std::to_string(need) + " encoded bytes, " + std::to_string(in.left()) +
               " are left");
  }
  if (!Compressed(t)) {
    std::memcpy(dst, in.Take(t.nbytes), t.nbytes);
    // Raw float32 (BatchNorm running statistics) gets the same check as decoded values
    // (found by tests/fuzz/update_codec_fuzzer); other dtypes are checked by the engine.
    if (t.dtype == DType::kFloat32) {
      const float* x = reinterpret_cast<const float*>(dst);
      for (int64_t i = 0; i < t.numel(); ++i) {
        if (!std::isfinite(x[i])) return bad("value at index " + std::to_string(i) + " is not finite");
      }
    }
    return OkStatus();
  }
  const int64_t n = t.numel();
  float* out = reinterpret_cast<float*>(dst);
  switch (o.codec) {
    case UpdateCodec::kFp16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = in.Get<uint16_t>();
        if ((h & 0x7c00u) == 0x7c00u) {
          return bad("value at index " + std::to_string(i) + " is not finite (float16 inf/NaN)");
        }
        out[i] = HalfToFloat(h);
      }
      return OkStatus();
    case UpdateCodec::kInt8: {
      const float scale = in.Get<float>();
      if (!std::isfinite(scale) || scale < 0) {
        return bad("int8 scale " + std::to_string(scale) + " is not a finite, non-negative number");
      }
      for (int64_t i = 0; i < n; ++i) {
        const int8_t q = in.Get<int8_t>();
        if (q == -128) return bad("int8 code -128 at index " + std::to_string(i) + " (range is ±127)");
        out[i] = static_cast<float>(q) * scale;
        if (!std::isfinite(out[i])) return bad("value at index " + std::to_string(i) + " overflows");
      }
      return OkStatus();
    }
    case UpdateCodec::kTopK: {
      const uint64_t expected = TopKCount(n, o.topk_fraction);
      const uint32_t k = in.Get<uint32_t>();
      if (k != expected) {
        return bad("topk sends " + std::to_string(k) + " values, the negotiated fraction " +
                   std::to_string(o.topk_fraction) + " gives " + std::to_string(expected));
      }
      const uint8_t* indices = in.Take(4ull * k);
      const uint8_t* values = in.Take(4ull * k);
      int64_t previous = -1;
      for (uint32_t j = 0; j < k; ++j) {
        uint32_t index;
        float value;
        std::memcpy(&index, indices + 4ull * j, sizeof index);
        std::memcpy(&value, values + 4ull * j, sizeof value);
        if (static_cast<int64_t>(index) <= previous || static_cast<int64_t>(index) >= n) {
          return bad("topk index " + std::to_string(index) + " (entry " + std::to_string(j) +
                     ") is out of range or not above the previous one (" +
                     std::to_string(previous) + "); the tensor has " + std::to_string(n) +
                     " values");
        }
        if (!std::isfinite(value)) {
          return bad("topk value for index " + std::to_string(index) + " is not finite");
        }
        out[index] = value;
        previous = index;
      }
      return OkStatus();
    }
    case UpdateCodec::kNone:
      break;
  }
  return bad("no codec");
}

}  // namespace

StatusOr<UpdateCodec> ParseUpdateCodec(std::string_view name) {
  if (name.empty() || name == "none") return UpdateCodec::kNone;
  if (name == "fp16") return UpdateCodec::kFp16;
  if (name == "int8") return UpdateCodec::kInt8;
  if (name == "topk") return UpdateCodec::kTopK;
  return InvalidArgumentError("unknown update compression '" + std::string(name) +
                              "': use none, fp16, int8 or topk");
}

std::string_view UpdateCodecName(UpdateCodec codec) {
  switch (codec) {
    case UpdateCodec::kNone:
      return "none";
    case UpdateCodec::kFp16:
      return "fp16";
    case UpdateCodec::kInt8:
      return "int8";
    case UpdateCodec::kTopK:
      return "topk";
  }
  return "invalid";
}

StatusOr<CodecOptions> NegotiatedCodec(const v1::FederationSpec& spec) {
  CodecOptions o;
  DF_ASSIGN_OR_RETURN(o.codec, ParseUpdateCodec(spec.compression()));
  o.topk_fraction = spec.topk_fraction();
  DF_RETURN_IF_ERROR(ValidateCodecOptions(o));
  return o;
}

Status ValidateCodecOptions(const CodecOptions& options) {
  if (options.codec == UpdateCodec::kTopK &&
      !(options.topk_fraction > 0 && options.topk_fraction <= 1)) {
    return InvalidArgumentError("topk fraction must be in (0, 1], got " +
                                std::to_string(options.topk_fraction));
  }
  return OkStatus();
}

std::string EncodedTensorName(UpdateCodec codec) {
  return "codec/" + std::string(UpdateCodecName(codec));
}

uint64_t TopKCount(int64_t numel, double fraction) {
  if (numel <= 0) return 0;
  const double k = std::ceil(fraction * static_cast<double>(numel));
  return static_cast<uint64_t>(std::clamp(k, 1.0, static_cast<double>(numel)));
}

uint64_t EncodedBytes(const std::vector<TensorSpec>& manifest, const CodecOptions& options) {
  uint64_t total = kHeaderBytes;
  for (const TensorSpec& t : manifest) total += TensorEncodedBytes(t, options);
  return total;
}

StatusOr<ModelState> EncodeUpdate(const ModelState& delta, const CodecOptions& options,
                                  ModelState* residual) {
  DF_RETURN_IF_ERROR(ValidateCodecOptions(options));
  if (options.codec == UpdateCodec::kNone) {
    return InvalidArgumentError("EncodeUpdate: 'none' sends the state itself");
  }
  const bool feedback = residual != nullptr && options.codec == UpdateCodec::kTopK;
  // Error feedback: the input is Δ + the residual, and becomes the next residual.
  ModelState input;
  if (feedback) {
    if (residual->num_tensors() > 0) {
      DF_RETURN_IF_ERROR(Annotate(delta.CheckSameLayout(*residual), "error-feedback residual"));
    }
    input = delta.Clone();
    if (residual->num_tensors() > 0) {
      for (size_t i = 0; i < input.num_tensors(); ++i) {
        if (!Compressed(input.manifest()[i])) continue;
        float* x = reinterpret_cast<float*>(input.TensorData(i));
        const float* r = reinterpret_cast<const float*>(residual->TensorData(i));
        for (int64_t j = 0; j < input.manifest()[i].numel(); ++j) x[j] += r[j];
      }
    }
  }
  const ModelState& source = feedback ? input : delta;

  TensorSpec spec;
  spec.name = EncodedTensorName(options.codec);
  spec.dtype = DType::kUInt8;
  spec.shape = {static_cast<int64_t>(EncodedBytes(delta.manifest(), options))};
  DF_ASSIGN_OR_RETURN(ModelState encoded, ModelState::Create({spec}, /*zero_fill=*/true));
  uint8_t* out = encoded.data();
  std::memcpy(out, kMagic, sizeof kMagic);
  out += sizeof kMagic;
  Put<uint8_t>(out, static_cast<uint8_t>(options.codec));
  out += 3;  // zero
  Put<uint32_t>(out, static_cast<uint32_t>(delta.num_tensors()));
  for (size_t i = 0; i < source.num_tensors(); ++i) {
    const TensorSpec& t = source.manifest()[i];
    const uint8_t* data = source.TensorData(i);
    if (!Compressed(t)) {
      std::memcpy(out, data, t.nbytes);
      out += t.nbytes;
      if (feedback) std::memset(input.TensorData(i), 0, t.nbytes);  // sent exactly
      continue;
    }
    const float* x = reinterpret_cast<const float*>(data);
    Status s;
    switch (options.codec) {
      case UpdateCodec::kFp16:
        s = EncodeFp16(t, x, out);
        break;
      case UpdateCodec::kInt8:
        s = EncodeInt8(t, x, out);
        break;
      default:
        s = EncodeTopK(t, x, TopKCount(t.numel(), options.topk_fraction), out,
                       feedback ? reinterpret_cast<float*>(input.TensorData(i)) : nullptr);
        break;
    }
    DF_RETURN_IF_ERROR(s);
  }
  if (out != encoded.data() + encoded.size_bytes()) {
    return InternalError("update codec: wrote " + std::to_string(out - encoded.data()) +
                         " bytes, planned " + std::to_string(encoded.size_bytes()));
  }
  if (feedback) *residual = std::move(input);
  return encoded;
}

Status CheckEncodedManifest(const std::vector<TensorSpec>& encoded,
                            const std::vector<TensorSpec>& layout, const CodecOptions& options,
                            const std::string& what) {
  const uint64_t bytes = EncodedBytes(layout, options);
  const std::string name = EncodedTensorName(options.codec);
  if (encoded.size() != 1 || encoded[0].name != name || encoded[0].dtype != DType::kUInt8 ||
      encoded[0].shape.size() != 1 || static_cast<uint64_t>(encoded[0].shape[0]) != bytes) {
    return InvalidArgumentError(what + ": a " + std::string(UpdateCodecName(options.codec)) +
                                "-encoded update must be one uint8 tensor '" + name + "' of " +
                                std::to_string(bytes) + " bytes");
  }
  return OkStatus();
}

StatusOr<ModelState> DecodeUpdate(const ModelState& encoded, const ModelState& layout,
                                  const CodecOptions& options, const std::string& what) {
  DF_RETURN_IF_ERROR(Annotate(ValidateCodecOptions(options), what));
  if (options.codec == UpdateCodec::kNone) {
    return InvalidArgumentError(what + ": nothing to decode for codec 'none'");
  }
  DF_RETURN_IF_ERROR(CheckEncodedManifest(encoded.manifest(), layout.manifest(), options, what));
  Reader in(encoded.TensorData(0), encoded.manifest()[0].nbytes);
  if (!in.Has(kHeaderBytes) || std::memcmp(in.Take(sizeof kMagic), kMagic, sizeof kMagic) != 0) {
    return InvalidArgumentError(what + ": not an encoded update (bad magic)");
  }
  const uint8_t codec = in.Get<uint8_t>();
  const uint8_t* zero = in.Take(3);
  const uint32_t count = in.Get<uint32_t>();
  if (codec != static_cast<uint8_t>(options.codec) || zero[0] || zero[1] || zero[2]) {
    return InvalidArgumentError(what + ": encoded with codec " + std::to_string(codec) +
                                ", the federation negotiated " +
                                std::string(UpdateCodecName(options.codec)));
  }
  if (count != layout.num_tensors()) {
    return InvalidArgumentError(what + ": encodes " + std::to_string(count) +
                                " tensors, the model has " + std::to_string(layout.num_tensors()));
  }
  DF_ASSIGN_OR_RETURN(ModelState out, ModelState::Create(layout.manifest(), /*zero_fill=*/true));
  for (size_t i = 0; i < out.num_tensors(); ++i) {
    Status s = DecodeTensor(out.manifest()[i], options, in, out.TensorData(i));
    if (!s.ok()) return Annotate(s, what);
  }
  if (in.left() != 0) {
    return InvalidArgumentError(what + ": " + std::to_string(in.left()) +
                                " bytes after the last tensor");
  }
  return out;
}

}  // namespace dermfed
