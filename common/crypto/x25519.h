// X25519 key agreement (RFC 7748) on OpenSSL EVP. In secure aggregation each site advertises
// X25519 public keys every round; agreeing with a peer's key gives the pairwise secret s_uv
// that seeds the masks both sites add with opposite signs, and a second pair keys the
// AES-GCM channel that carries Shamir shares through the coordinator. The raw agreement
// output is not uniformly random: always run it through HkdfSha256 before use.
//
// Thread-safe: free functions with no shared state.
#ifndef DERMFED_COMMON_CRYPTO_X25519_H_
#define DERMFED_COMMON_CRYPTO_X25519_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "common/crypto/secret.h"
#include "common/status.h"

namespace dermfed::crypto {

inline constexpr size_t kX25519KeyBytes = 32;

struct KeyPair {
  std::array<uint8_t, kX25519KeyBytes> public_key{};
  SecretBytes private_key;  // kX25519KeyBytes bytes
};

// A fresh key pair from OpenSSL's CSPRNG.
StatusOr<KeyPair> GenerateKeyPair();

// The key pair of a given 32-byte private key (RFC 7748 scalar, clamped by X25519 itself);
// for test vectors and for restoring a persisted key.
StatusOr<KeyPair> ImportPrivateKey(ByteSpan private_key);

// X25519(private_key, peer_public_key): 32 bytes, the same on both sides. Fails with
// InvalidArgument on wrong lengths and on a peer key of small order (an all-zero result),
// which a malicious peer could send to force a known secret.
StatusOr<SecretBytes> Agree(ByteSpan private_key, ByteSpan peer_public_key);

}  // namespace dermfed::crypto

#endif  // DERMFED_COMMON_CRYPTO_X25519_H_
