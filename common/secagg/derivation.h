// Internal to common/secagg: every key, context, associated data and commitment the client
// and the server must derive identically, in one place. Each is bound to the round context
// and a purpose label through Binding, so no secret keys two things and nothing crosses
// rounds. The pair functions order the two site names themselves, so both ends agree.
//
// Thread-safe: free functions with no shared state.
#ifndef DERMFED_COMMON_SECAGG_DERIVATION_H_
#define DERMFED_COMMON_SECAGG_DERIVATION_H_

#include <initializer_list>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/crypto/secret.h"
#include "common/secagg/messages.h"
#include "common/status.h"

namespace dermfed::secagg::internal {

// "dermfed-secagg-v1", purpose and each field, each u32-length-prefixed.
std::string Binding(absl::string_view purpose, std::initializer_list<absl::string_view> fields);

// k_uv = HKDF(X25519(c_u^SK, c_v^PK), info = binding("share-channel-key", context, pair)).
StatusOr<crypto::SecretBytes> ShareChannelKey(crypto::ByteSpan own_private_key,
                                              const PublicKey& peer_public_key,
                                              absl::string_view context, absl::string_view a,
                                              absl::string_view b);

// s_uv = HKDF(X25519(s_u^SK, s_v^PK), info = binding("pairwise-mask-key", context, pair)).
StatusOr<crypto::SecretBytes> PairwiseMaskKey(crypto::ByteSpan own_private_key,
                                              const PublicKey& peer_public_key,
                                              absl::string_view context, absl::string_view a,
                                              absl::string_view b);

// The mask generator contexts of PRG(s_uv) and PRG(b_u).
std::string PairwiseMaskContext(absl::string_view context, absl::string_view a,
                                absl::string_view b);
std::string SelfMaskContext(absl::string_view context, absl::string_view site);

// The associated data of the share `from` seals for `to`.
std::vector<uint8_t> ShareAad(absl::string_view context, absl::string_view from,
                              absl::string_view to);

// SHA-256(binding("self-mask-seed-commitment", context, site, seed)).
StatusOr<Digest> SeedCommitment(absl::string_view context, absl::string_view site,
                                crypto::ByteSpan seed);

// The plaintext sealed in an EncryptedShare: string from || string to || key share of
// s_from^SK || key share of b_from.
struct SharePlaintext {
  std::string from;
  std::string to;
  crypto::SecretBytes mask_key_share;
  crypto::SecretBytes seed_share;
};
crypto::SecretBytes EncodeSharePlaintext(const SharePlaintext& p);
// DataLoss on any malformation: the bytes passed authentication, so a bad encoding means a
// broken peer, not a transmission error.
StatusOr<SharePlaintext> DecodeSharePlaintext(crypto::ByteSpan bytes);

// Constant-time equality of two equal-length byte strings (false on unequal lengths).
bool EqualSecret(crypto::ByteSpan a, crypto::ByteSpan b);

}  // namespace dermfed::secagg::internal

#endif  // DERMFED_COMMON_SECAGG_DERIVATION_H_
