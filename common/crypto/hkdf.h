// HKDF with SHA-256 (RFC 5869) through OpenSSL's EVP_KDF "HKDF". Turns an X25519 agreement
// or a seed into the keys secure aggregation uses (mask keys, channel keys), with `info`
// naming the purpose so one secret never keys two things.
//
// Thread-safe: a free function with no shared state.
#ifndef DERMFED_COMMON_CRYPTO_HKDF_H_
#define DERMFED_COMMON_CRYPTO_HKDF_H_

#include <cstddef>

#include "common/crypto/secret.h"
#include "common/status.h"

namespace dermfed::crypto {

// RFC 5869 limits the output to 255 hash blocks.
inline constexpr size_t kHkdfSha256MaxOutput = 255 * 32;

// Extract-then-expand: `out_len` bytes derived from `ikm`. An empty `salt` means HashLen
// zero bytes (RFC 5869 section 2.2); `info` may be empty.
// REQUIRES: ikm non-empty; 1 <= out_len <= kHkdfSha256MaxOutput (else InvalidArgument).
StatusOr<SecretBytes> HkdfSha256(ByteSpan ikm, ByteSpan salt, ByteSpan info, size_t out_len);

}  // namespace dermfed::crypto

#endif  // DERMFED_COMMON_CRYPTO_HKDF_H_
