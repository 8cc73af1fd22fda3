// Shamir secret sharing (t of n) of a byte string over GF(2^8), one independent polynomial
// per byte, with the AES field polynomial x^8 + x^4 + x^3 + x + 1 (0x11B). Secure
// aggregation shares each site's self-mask seed b_u and pairwise-key secret with the other
// sites, so that any t survivors let the coordinator remove the masks of the sites that
// finished and of those that dropped out, while fewer than t learn nothing.
//
// Share x-coordinates are 1..n; x = 0 would be the secret itself. Field arithmetic is
// branch-free and table-free so its timing does not depend on secret bytes.
//
// Thread-safe: free functions with no shared state.
#ifndef DERMFED_COMMON_CRYPTO_SHAMIR_H_
#define DERMFED_COMMON_CRYPTO_SHAMIR_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/crypto/secret.h"
#include "common/status.h"

namespace dermfed::crypto {

// Shares are for keys and seeds, not bulk data.
inline constexpr size_t kMaxShamirSecretBytes = 64 * 1024;

struct Share {
  uint8_t x = 0;  // 1..255
  SecretBytes y;  // as long as the secret
};

// n shares with x = 1..n of which any t reconstruct `secret`; coefficients from RAND_bytes.
// REQUIRES: 2 <= t <= n <= 255 (t = 1 would hand the secret to every holder);
//           1 <= secret.size() <= kMaxShamirSecretBytes. Else InvalidArgument.
StatusOr<std::vector<Share>> Split(ByteSpan secret, int t, int n);

// The secret from the first t of `shares` (which may come off the network, in any order).
// Refuses (InvalidArgument) t outside [2, 255], fewer than t shares, x = 0, duplicate x, empty or unequal
// lengths. Shares beyond the first t are checked against the polynomial the first t define;
// a share that is off it fails the call with DataLoss instead of yielding a wrong secret.
StatusOr<SecretBytes> Combine(const std::vector<Share>& shares, int t);

}  // namespace dermfed::crypto

#endif  // DERMFED_COMMON_CRYPTO_SHAMIR_H_
