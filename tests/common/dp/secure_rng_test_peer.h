// Test-only access to SecureRng: a stream with a chosen key, so tests can pin its output.
// Production code has no way to do this (SecureRng's keyed constructor is private); this
// header lives under tests/ and must never be included from anywhere else.
#ifndef DERMFED_TESTS_COMMON_DP_SECURE_RNG_TEST_PEER_H_
#define DERMFED_TESTS_COMMON_DP_SECURE_RNG_TEST_PEER_H_

#include <array>
#include <cstdint>

#include "common/dp/noise.h"

namespace dermfed::dp {

class SecureRngTestPeer {
 public:
  static SecureRng WithKey(const std::array<uint8_t, SecureRng::kKeyBytes>& key) {
    return SecureRng(key.data());
  }
};

}  // namespace dermfed::dp

#endif  // DERMFED_TESTS_COMMON_DP_SECURE_RNG_TEST_PEER_H_
