// The messages of one secure-aggregation round (see protocol.h), as plain structs that the
// gRPC layer carries in `bytes` fields. The masked input itself is not here: it is a uint32
// vector that travels through the ordinary chunked model-transfer path.
//
// Wire format (all integers little-endian):
//   header  = kind (u8) || version (u8, = 1)
//   string  = length (u32) || bytes        site names: 1..kMaxSiteNameBytes bytes
//   key     = 32 raw bytes
//   list<T> = count (u32, <= kMaxSites) || count x T (T's fields, no header of its own)
// A message is its header followed by its fields in the order they are declared below;
// Parse refuses (InvalidArgument, naming the message, the field and the offset) a wrong
// kind or version, any length or count above its maximum or beyond the remaining bytes,
// and trailing bytes. Parse checks form only; Client and Server check meaning (duplicates,
// membership, phases).
//
// Thread-safe: these are values.
#ifndef DERMFED_COMMON_SECAGG_MESSAGES_H_
#define DERMFED_COMMON_SECAGG_MESSAGES_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/crypto/secret.h"
#include "common/secagg/protocol.h"
#include "common/status.h"

namespace dermfed::secagg {

using PublicKey = std::array<uint8_t, kKeyBytes>;
using Digest = std::array<uint8_t, kKeyBytes>;

// The largest sealed share: nonce, tag and the plaintext of two maximal site names and two
// key shares fit well inside it.
inline constexpr size_t kMaxShareCiphertextBytes = 1024;

// Round 0, site -> coordinator. Kind 1: string site || key channel_public_key ||
// key mask_public_key || key seed_commitment.
struct Advertisement {
  std::string site;
  PublicKey channel_public_key{};  // c_u^PK: keys the share channel to each peer
  PublicKey mask_public_key{};     // s_u^PK: agrees the pairwise mask keys s_uv
  Digest seed_commitment{};        // SHA-256 commitment to the self-mask seed b_u

  std::string Serialize() const;
  static StatusOr<Advertisement> Parse(absl::string_view bytes);
};

// Round 0, coordinator -> every site in U1. Kind 2: list<Advertisement fields>.
struct AdvertisementList {
  std::vector<Advertisement> advertisements;  // U1, sorted by site

  std::string Serialize() const;
  static StatusOr<AdvertisementList> Parse(absl::string_view bytes);
};

// One site's Shamir shares for one peer, sealed for that peer. Kind 3: string from ||
// string to || ciphertext (u32 length <= kMaxShareCiphertextBytes, then bytes).
struct EncryptedShare {
  std::string from;
  std::string to;
  std::vector<uint8_t> ciphertext;  // nonce || AES-256-GCM(share plaintext) || tag

  std::string Serialize() const;
  static StatusOr<EncryptedShare> Parse(absl::string_view bytes);
};

// Round 1, site -> coordinator: one EncryptedShare for each other site in U1.
// Kind 4: list<EncryptedShare fields>.
struct ShareBundle {
  std::vector<EncryptedShare> shares;

  std::string Serialize() const;
  static StatusOr<ShareBundle> Parse(absl::string_view bytes);
};

// Round 2, coordinator -> each site in U2: who shared keys, and the shares sealed for this
// site. Kind 5: list<string> u2 || list<EncryptedShare fields> shares.
struct MaskingRequest {
  std::vector<std::string> u2;  // sorted
  std::vector<EncryptedShare> shares;

  std::string Serialize() const;
  static StatusOr<MaskingRequest> Parse(absl::string_view bytes);
};

// Round 3, coordinator -> each site in U3. The two lists partition U2.
// Kind 6: list<string> survivors || list<string> dropped.
struct UnmaskRequest {
  std::vector<std::string> survivors;  // U3: their masked inputs were folded; sorted
  std::vector<std::string> dropped;    // D = U2 \ U3; sorted

  std::string Serialize() const;
  static StatusOr<UnmaskRequest> Parse(absl::string_view bytes);
};

// The responder's Shamir share of one site's secret (its x-coordinate is the responder's,
// which the coordinator knows, so it is not sent). Encoded as a fixed-size key field, so
// `share` must have kKeyBytes bytes (Client always makes it so).
struct KeyShare {
  std::string owner;
  crypto::SecretBytes share;  // kKeyBytes bytes
};

// Round 3, site -> coordinator. Kind 7: string from || list<string owner || key share>
// mask_key_shares || list<string owner || key share> seed_shares.
struct UnmaskResponse {
  std::string from;
  std::vector<KeyShare> mask_key_shares;  // of s_u^SK, one per dropped u
  std::vector<KeyShare> seed_shares;      // of b_u, one per surviving u (the responder too)

  std::string Serialize() const;
  static StatusOr<UnmaskResponse> Parse(absl::string_view bytes);
};

}  // namespace dermfed::secagg

#endif  // DERMFED_COMMON_SECAGG_MESSAGES_H_
