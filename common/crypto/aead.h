// AES-256-GCM for the messages secure aggregation routes through the coordinator (the
// Shamir shares one site encrypts for another): the coordinator relays them but cannot read
// or alter them. The associated data binds each message to its sender, round, model version
// and purpose (BindingAad), so a message replayed into another round or context is refused.
//
// Nonces are 96 random bits per message: safe for far more messages than one key ever
// seals here (keys are per pair and per round; the GCM bound is 2^32 messages per key).
//
// Thread-safe: free functions with no shared state.
#ifndef DERMFED_COMMON_CRYPTO_AEAD_H_
#define DERMFED_COMMON_CRYPTO_AEAD_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/crypto/secret.h"
#include "common/status.h"

namespace dermfed::crypto {

inline constexpr size_t kAeadKeyBytes = 32;
inline constexpr size_t kAeadNonceBytes = 12;
inline constexpr size_t kAeadTagBytes = 16;
inline constexpr size_t kAeadOverheadBytes = kAeadNonceBytes + kAeadTagBytes;

// nonce (12) || ciphertext (plaintext.size()) || tag (16), under a fresh random nonce.
// REQUIRES: key has kAeadKeyBytes bytes (else InvalidArgument).
StatusOr<std::vector<uint8_t>> Seal(ByteSpan key, ByteSpan aad, ByteSpan plaintext);

// The plaintext of a Seal output. `sealed` is untrusted: shorter than kAeadOverheadBytes
// gives DataLoss, and so does any failed authentication (wrong key, different AAD, any bit
// flipped) — one code and message for all of them, since GCM cannot tell them apart.
// REQUIRES: key has kAeadKeyBytes bytes (else InvalidArgument).
StatusOr<SecretBytes> Open(ByteSpan key, ByteSpan aad, ByteSpan sealed);

// The associated data that binds a message to where it belongs: a version tag and each
// field length-prefixed (u32 little-endian length, then bytes; the round as u64
// little-endian), so that no two different field tuples encode alike.
std::vector<uint8_t> BindingAad(absl::string_view site, uint64_t round,
                                absl::string_view model_version, absl::string_view purpose);

}  // namespace dermfed::crypto

#endif  // DERMFED_COMMON_CRYPTO_AEAD_H_
