#include "common/crypto/shamir.h"

#include <openssl/rand.h>

#include "absl/strings/str_cat.h"
#include "common/crypto/openssl_util.h"

namespace dermfed::crypto {
namespace {

// Multiplication in GF(2^8) mod 0x11B, in constant time (no branches, no tables).
uint8_t GfMul(uint8_t a, uint8_t b) {
  uint8_t product = 0;
  for (int i = 0; i < 8; ++i) {
    product ^= static_cast<uint8_t>(-(b & 1)) & a;
    const uint8_t carry = static_cast<uint8_t>(-(a >> 7));
    a = static_cast<uint8_t>(a << 1) ^ (carry & 0x1B);
    b >>= 1;
  }
  return product;
}

// a^254 = a^-1 for a != 0 (the multiplicative group has order 255).
uint8_t GfInv(uint8_t a) {
  uint8_t result = 1;
  uint8_t power = a;
  for (int i = 1; i < 8; ++i) {  // 254 = 2 + 4 + ... + 128
    power = GfMul(power, power);
    result = GfMul(result, power);
  }
  return result;
}

// The Lagrange basis of the points xs evaluated at `at`: L_j(at) = prod_{m != j}
// (at - x_m) / (x_j - x_m), where - is + is XOR in characteristic 2.
// REQUIRES: xs distinct.
std::vector<uint8_t> LagrangeAt(const std::vector<uint8_t>& xs, uint8_t at) {
  std::vector<uint8_t> basis(xs.size());
  for (size_t j = 0; j < xs.size(); ++j) {
    uint8_t numerator = 1;
    uint8_t denominator = 1;
    for (size_t m = 0; m < xs.size(); ++m) {
      if (m == j) continue;
      numerator = GfMul(numerator, at ^ xs[m]);
      denominator = GfMul(denominator, xs[j] ^ xs[m]);
    }
    basis[j] = GfMul(numerator, GfInv(denominator));
  }
  return basis;
}

Status CheckShares(const std::vector<Share>& shares, int t) {
  if (t < 2 || t > 255) {
    return InvalidArgumentError(absl::StrCat("Shamir: threshold ", t, " is outside [2, 255]"));
  }
  if (shares.size() < static_cast<size_t>(t)) {
    return InvalidArgumentError(absl::StrCat("Shamir: ", t, " shares are needed to reconstruct, got ",
                                             shares.size()));
  }
  bool seen[256] = {};
  for (size_t i = 0; i < shares.size(); ++i) {
    const Share& s = shares[i];
    if (s.x == 0) {
      return InvalidArgumentError(
          absl::StrCat("Shamir: share #", i, " has x = 0, which no share may have"));
    }
    if (seen[s.x]) {
      return InvalidArgumentError(
          absl::StrCat("Shamir: x = ", s.x, " appears in more than one share"));
    }
    seen[s.x] = true;
    if (s.y.empty()) {
      return InvalidArgumentError(absl::StrCat("Shamir: share x = ", s.x, " is empty"));
    }
    if (s.y.size() != shares[0].y.size()) {
      return InvalidArgumentError(absl::StrCat("Shamir: share x = ", s.x, " has ", s.y.size(),
                                               " bytes, share x = ", shares[0].x, " has ",
                                               shares[0].y.size()));
    }
  }
  return OkStatus();
}

}  // namespace

StatusOr<std::vector<Share>> Split(ByteSpan secret, int t, int n) {
  if (n < 2 || n > 255) {
    return InvalidArgumentError(absl::StrCat("Shamir: ", n, " shares requested, must be in [2, 255]"));
  }
  if (t < 2 || t > n) {
    return InvalidArgumentError(
        absl::StrCat("Shamir: threshold ", t, " must be in [2, n = ", n, "]"));
  }
  if (secret.empty() || secret.size() > kMaxShamirSecretBytes) {
    return InvalidArgumentError(absl::StrCat("Shamir: secret has ", secret.size(),
                                             " bytes, must be in [1, ", kMaxShamirSecretBytes,
                                             "]"));
  }
  const size_t len = secret.size();
  // Coefficients a_1..a_{t-1} of each byte's polynomial, coefficient-major.
  SecretBytes coefficients(static_cast<size_t>(t - 1) * len);
  if (RAND_bytes(coefficients.data(), static_cast<int>(coefficients.size())) != 1) {
    return internal::OpenSslError("Shamir: RAND_bytes for the polynomial coefficients");
  }
  std::vector<Share> shares(n);
  for (int i = 0; i < n; ++i) {
    Share& share = shares[i];
    share.x = static_cast<uint8_t>(i + 1);
    share.y.resize(len);
    for (size_t b = 0; b < len; ++b) {
      // Horner: f(x) = (((a_{t-1} x + a_{t-2}) x + ...) x + a_0), a_0 = the secret byte.
      uint8_t y = 0;
      for (int k = t - 2; k >= 0; --k) {
        y = GfMul(y, share.x) ^ coefficients[static_cast<size_t>(k) * len + b];
      }
      share.y[b] = GfMul(y, share.x) ^ secret[b];
    }
  }
  return shares;
}

StatusOr<SecretBytes> Combine(const std::vector<Share>& shares, int t) {
  DF_RETURN_IF_ERROR(CheckShares(shares, t));
  const size_t len = shares[0].y.size();
  std::vector<uint8_t> xs(t);
  for (int j = 0; j < t; ++j) xs[j] = shares[j].x;

  // Evaluates the polynomial through the first t shares at `at`, byte by byte.
  auto interpolate = [&](uint8_t at) {
    const std::vector<uint8_t> basis = LagrangeAt(xs, at);
    SecretBytes value(len, 0);
    for (int j = 0; j < t; ++j) {
      for (size_t b = 0; b < len; ++b) value[b] ^= GfMul(basis[j], shares[j].y[b]);
    }
    return value;
  };

  for (size_t e = static_cast<size_t>(t); e < shares.size(); ++e) {
    const SecretBytes expected = interpolate(shares[e].x);
    uint8_t diff = 0;
    for (size_t b = 0; b < len; ++b) diff |= expected[b] ^ shares[e].y[b];
    if (diff != 0) {
      return DataLossError(absl::StrCat("Shamir: share x = ", shares[e].x,
                                        " is inconsistent with the first ", t,
                                        " shares (corrupted or forged share)"));
    }
  }
  return interpolate(0);
}

}  // namespace dermfed::crypto
