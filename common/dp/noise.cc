#include "common/dp/noise.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace dermfed::dp {
namespace {

constexpr size_t kNormalChunk = 1024;  // normals drawn at a time when adding noise
constexpr double kTwoPi = 6.283185307179586476925286766559;
// Clipping lands this far (relatively) under the bound; see ClipToNorm in the header.
constexpr double kClipMargin = 1.0 - 1.0 / (1 << 22);

Status OpenSslError(const std::string& what) {
  std::string reasons;
  unsigned long code = 0;
  while ((code = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!reasons.empty()) reasons += "; ";
    reasons += buf;
  }
  return InternalError(absl::StrCat(what, " failed", reasons.empty() ? "" : ": ", reasons));
}

inline double UniformFromBits(uint64_t bits) {
  return static_cast<double>((bits >> 11) + 1) * 0x1.0p-53;  // (0, 1]
}

Status ValidateStddev(double stddev) {
  if (!(stddev > 0) || !std::isfinite(stddev)) {
    return InvalidArgumentError(
        absl::StrCat("Gaussian noise stddev must be positive and finite, got ", stddev));
  }
  return OkStatus();
}

// Visits each float32 tensor as (index, float*, count); errors on other floating dtypes.
template <typename StatePtr, typename Fn>
Status ForEachFloatTensor(StatePtr state, Fn fn) {
  for (size_t t = 0; t < state->num_tensors(); ++t) {
    const TensorSpec& spec = state->manifest()[t];
    switch (spec.dtype) {
      case DType::kFloat32: {
        auto* p = state->TensorData(t);
        using Float = std::conditional_t<std::is_const_v<std::remove_pointer_t<decltype(p)>>,
                                         const float, float>;
        DF_RETURN_IF_ERROR(
            fn(t, reinterpret_cast<Float*>(p), static_cast<size_t>(spec.nbytes / sizeof(float))));
        break;
      }
      case DType::kFloat64:
      case DType::kFloat16:
      case DType::kBFloat16:
        return InvalidArgumentError(
            absl::StrCat("tensor '", spec.name, "' is ", std::string(DTypeName(spec.dtype)),
                         "; DP clipping and noise support float32 tensors only"));
      default:
        break;  // integer/bool tensors are not clipped or noised (see the header)
    }
  }
  return OkStatus();
}

}  // namespace

struct SecureRng::State {
  std::array<uint8_t, kKeyBytes> key{};
  std::array<uint8_t, kKeyBytes + kRefillBytes> block{};
  size_t pos = kKeyBytes + kRefillBytes;  // next unread byte of block; end = empty
  EVP_CIPHER_CTX* ctx = nullptr;

  ~State() {
    EVP_CIPHER_CTX_free(ctx);
    OPENSSL_cleanse(key.data(), key.size());
    OPENSSL_cleanse(block.data(), block.size());
  }
};

SecureRng::SecureRng(const uint8_t key[kKeyBytes]) : state_(std::make_unique<State>()) {
  std::memcpy(state_->key.data(), key, kKeyBytes);
}

SecureRng::SecureRng(SecureRng&&) noexcept = default;
SecureRng& SecureRng::operator=(SecureRng&&) noexcept = default;
SecureRng::~SecureRng() = default;

StatusOr<SecureRng> SecureRng::Create() {
  std::array<uint8_t, kKeyBytes> key{};
  if (RAND_priv_bytes(key.data(), static_cast<int>(key.size())) != 1) {
    return OpenSslError("SecureRng: RAND_priv_bytes for the ChaCha20 key");
  }
  SecureRng rng(key.data());
  OPENSSL_cleanse(key.data(), key.size());
  return rng;
}

Status SecureRng::Refill() {
  State& s = *state_;
  if (s.ctx == nullptr) {
    s.ctx = EVP_CIPHER_CTX_new();
    if (s.ctx == nullptr) return OpenSslError("SecureRng: EVP_CIPHER_CTX_new");
  }
  // IV = 32-bit block counter 0 || 96-bit nonce 0: each key is used for one block run only.
  static const uint8_t kZeroIv[16] = {};
  if (EVP_EncryptInit_ex2(s.ctx, EVP_chacha20(), s.key.data(), kZeroIv, nullptr) != 1) {
    return OpenSslError("SecureRng: ChaCha20 init");
  }
  std::memset(s.block.data(), 0, s.block.size());
  int len = 0;
  if (EVP_EncryptUpdate(s.ctx, s.block.data(), &len, s.block.data(),
                        static_cast<int>(s.block.size())) != 1 ||
      static_cast<size_t>(len) != s.block.size()) {
    return OpenSslError("SecureRng: ChaCha20 keystream");
  }
  std::memcpy(s.key.data(), s.block.data(), kKeyBytes);  // the next key; the old one is gone
  OPENSSL_cleanse(s.block.data(), kKeyBytes);
  s.pos = kKeyBytes;
  return OkStatus();
}

Status SecureRng::Fill(uint8_t* out, size_t n) {
  State& s = *state_;
  while (n > 0) {
    if (s.pos == s.block.size()) DF_RETURN_IF_ERROR(Refill());
    const size_t take = std::min(n, s.block.size() - s.pos);
    std::memcpy(out, s.block.data() + s.pos, take);
    OPENSSL_cleanse(s.block.data() + s.pos, take);  // handed out: not kept
    s.pos += take;
    out += take;
    n -= take;
  }
  return OkStatus();
}

StatusOr<double> SecureRng::NextUniform() {
  uint64_t bits = 0;
  DF_RETURN_IF_ERROR(Fill(reinterpret_cast<uint8_t*>(&bits), sizeof(bits)));
  return UniformFromBits(bits);
}

Status SecureRng::FillStandardNormal(double* out, size_t n) {
  std::array<uint64_t, 2 * kNormalChunk> bits;
  while (n > 0) {
    const size_t count = std::min(n, 2 * kNormalChunk);
    const size_t pairs = (count + 1) / 2;
    DF_RETURN_IF_ERROR(Fill(reinterpret_cast<uint8_t*>(bits.data()), 2 * pairs * sizeof(uint64_t)));
    for (size_t p = 0; p < pairs; ++p) {
      const double u1 = UniformFromBits(bits[2 * p]);  // (0, 1]: log is finite
      const double u2 = UniformFromBits(bits[2 * p + 1]);
      const double r = std::sqrt(-2.0 * std::log(u1));
      const double theta = kTwoPi * u2;
      out[2 * p] = r * std::cos(theta);
      if (2 * p + 1 < count) out[2 * p + 1] = r * std::sin(theta);
    }
    OPENSSL_cleanse(bits.data(), 2 * pairs * sizeof(uint64_t));
    out += count;
    n -= count;
  }
  return OkStatus();
}

double L2Norm(const float* x, size_t n) {
  // Eight partial sums: vectorisable, and a shorter chain of rounding than one.
  double acc[8] = {};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += static_cast<double>(x[i + k]) * x[i + k];
  }
  for (; i < n; ++i) acc[0] += static_cast<double>(x[i]) * x[i];
  double sum = 0;
  for (double a : acc) sum += a;
  return std::sqrt(sum);
}

StatusOr<double> ClipToNorm(float* x, size_t n, double clip) {
  if (!(clip > 0) || !std::isfinite(clip)) {
    return InvalidArgumentError(absl::StrCat("clip norm must be positive and finite, got ", clip));
  }
  const double norm = L2Norm(x, n);
  if (!std::isfinite(norm)) {
    return InvalidArgumentError("update holds a NaN or infinite value; it cannot be clipped");
  }
  if (norm > clip) {
    const double scale = clip / norm * kClipMargin;
    for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(x[i] * scale);
  }
  return norm;
}

Status AddGaussianNoise(float* x, size_t n, double stddev, SecureRng& rng) {
  DF_RETURN_IF_ERROR(ValidateStddev(stddev));
  std::array<double, kNormalChunk> z;
  for (size_t start = 0; start < n; start += kNormalChunk) {
    const size_t count = std::min(kNormalChunk, n - start);
    DF_RETURN_IF_ERROR(rng.FillStandardNormal(z.data(), count));
    for (size_t i = 0; i < count; ++i) {
      x[start + i] = static_cast<float>(x[start + i] + stddev * z[i]);
    }
  }
  OPENSSL_cleanse(z.data(), sizeof(z));
  return OkStatus();
}

StatusOr<double> L2Norm(const ModelState& state) {
  double sum_sq = 0;
  DF_RETURN_IF_ERROR(ForEachFloatTensor(&state, [&](size_t, const float* p, size_t count) {
    const double norm = L2Norm(p, count);
    sum_sq += norm * norm;
    return OkStatus();
  }));
  return std::sqrt(sum_sq);
}

StatusOr<double> ClipToNorm(ModelState* state, double clip) {
  if (!(clip > 0) || !std::isfinite(clip)) {
    return InvalidArgumentError(absl::StrCat("clip norm must be positive and finite, got ", clip));
  }
  DF_ASSIGN_OR_RETURN(const double norm, L2Norm(*state));
  if (!std::isfinite(norm)) {
    // Name the first tensor at fault so the operator can find the diverging layer.
    for (size_t t = 0; t < state->num_tensors(); ++t) {
      const TensorSpec& spec = state->manifest()[t];
      if (spec.dtype != DType::kFloat32) continue;
      const double n = L2Norm(reinterpret_cast<const float*>(state->TensorData(t)),
                              static_cast<size_t>(spec.nbytes / sizeof(float)));
      if (!std::isfinite(n)) {
        return InvalidArgumentError(
            absl::StrCat("tensor '", spec.name,
                         "' holds a NaN or infinite value; the update cannot be "
                         "clipped"));
      }
    }
    return InvalidArgumentError("update has an infinite L2 norm; it cannot be clipped");
  }
  if (norm > clip) {
    const double scale = clip / norm * kClipMargin;
    DF_RETURN_IF_ERROR(ForEachFloatTensor(state, [&](size_t, float* p, size_t count) {
      for (size_t i = 0; i < count; ++i) p[i] = static_cast<float>(p[i] * scale);
      return OkStatus();
    }));
  }
  return norm;
}

Status AddGaussianNoise(ModelState* state, double stddev, SecureRng& rng) {
  DF_RETURN_IF_ERROR(ValidateStddev(stddev));
  // Check the whole layout before touching anything, so an error leaves the state as it was.
  DF_RETURN_IF_ERROR(ForEachFloatTensor(static_cast<const ModelState*>(state),
                                        [](size_t, const float*, size_t) { return OkStatus(); }));
  return ForEachFloatTensor(state, [&](size_t t, float* p, size_t count) {
    return Annotate(AddGaussianNoise(p, count, stddev, rng),
                    absl::StrCat("noise for tensor '", state->manifest()[t].name, "'"));
  });
}

StatusOr<double> CentralNoiseStddev(double noise_multiplier, double clip) {
  if (!(noise_multiplier > 0) || !std::isfinite(noise_multiplier)) {
    return InvalidArgumentError(
        absl::StrCat("noise multiplier must be positive and finite, got ", noise_multiplier));
  }
  if (!(clip > 0) || !std::isfinite(clip)) {
    return InvalidArgumentError(absl::StrCat("clip norm must be positive and finite, got ", clip));
  }
  return noise_multiplier * clip;
}

StatusOr<double> DistributedNoiseStddev(double noise_multiplier, double clip, int min_sites) {
  DF_ASSIGN_OR_RETURN(const double central, CentralNoiseStddev(noise_multiplier, clip));
  if (min_sites < 1) {
    return InvalidArgumentError(absl::StrCat(
        "distributed DP needs at least 1 surviving site to share the noise, got ", min_sites));
  }
  return central / std::sqrt(static_cast<double>(min_sites));
}

}  // namespace dermfed::dp
