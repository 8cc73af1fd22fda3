// Hex decoding for the crypto tests' published vectors.
#ifndef DERMFED_TESTS_COMMON_CRYPTO_HEX_H_
#define DERMFED_TESTS_COMMON_CRYPTO_HEX_H_

#include <cstdint>
#include <string>
#include <vector>

namespace dermfed::crypto::testing {

inline std::vector<uint8_t> FromHex(const std::string& hex) {
  auto nibble = [](char c) -> uint8_t {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return c - 'A' + 10;
  };
  std::vector<uint8_t> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<uint8_t>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  }
  return out;
}

template <typename Bytes>
std::vector<uint8_t> ToVector(const Bytes& b) {
  return std::vector<uint8_t>(b.begin(), b.end());
}

}  // namespace dermfed::crypto::testing

#endif  // DERMFED_TESTS_COMMON_CRYPTO_HEX_H_
