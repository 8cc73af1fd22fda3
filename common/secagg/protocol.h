// Secure aggregation (Bonawitz et al., "Practical Secure Aggregation for Privacy-Preserving
// Machine Learning", CCS 2017), honest-but-curious server version: the coordinator learns the
// sum of the sites' quantized updates in Z_{2^32} and nothing else, even when up to n - t
// sites drop out after masking. Sites are authenticated to the coordinator by mutual TLS, so
// the protocol carries no signatures; the coordinator relays every site-to-site message but
// cannot read (AES-256-GCM) or usefully alter them.
//
// One round, driven by the coordinator's round engine as four extra phases; the library is
// transport-free: every message is a plain struct that serializes to bytes (messages.h).
//
//   0 AdvertiseKeys   site u: Client::Create -> Advertisement{u, c_u^PK, s_u^PK, commit(b_u)}
//                     coordinator: Server::AddAdvertisement, CloseAdvertisements -> U1
//   1 ShareKeys       site u: Client::ShareKeys(U1) -> ShareBundle: for each v in U1 \ {u},
//                       AES-GCM_{k_uv}(u, v, share_v(s_u^SK), share_v(b_u))
//                     coordinator: Server::AddShares, CloseShares -> U2,
//                       MaskingRequestFor(u) = {U2, the ciphertexts addressed to u}
//   2 MaskedInput     site u: Client::MaskInPlace(x_u, request): x_u becomes
//                       y_u = x_u + PRG(b_u) + sum_{v in U2, v != u} sign(u, v) PRG(s_uv)
//                     coordinator: Server::AddMaskedInput (or ...Chunk) folds y_u into one
//                       accumulator; MakeUnmaskRequest -> {U3 = survivors, D = U2 \ U3}
//   3 Unmasking       site v in U3: Client::Unmask -> shares of b_u for u in U3 and of s_u^SK
//                       for u in D (never both for one u)
//                     coordinator: Server::AddUnmaskResponse (>= t), Finish -> sum_{u in U3} x_u
//
// sign(u, v) = +1 if u < v and -1 otherwise, comparing site names as byte strings
// (std::string's operator<). Shamir share x-coordinates are 1 + the site's position in
// sorted U1, so t <= n <= 255 (shares live in GF(2^8)).
//
// Everything derived in a round is bound to its `context` (use RoundContext): HKDF infos,
// AES-GCM associated data, mask generator contexts and the seed commitment all include it,
// so nothing from one round, federation or model version is accepted or reused in another.
//
// Design decisions beyond the paper:
//  - The advertisement carries a commitment SHA-256(binding(context, u, b_u)) to the self-mask
//    seed, so the coordinator verifies every reconstructed b_u, as it verifies every
//    reconstructed s_u^SK against s_u^PK: a wrong share yields DATA_LOSS, never a wrong sum.
//  - Sites decrypt and check the ciphertexts addressed to them before masking, so a tampered
//    or replayed share is detected before the site commits its masked input.
//  - An unmask request names both U3 and D explicitly; a site refuses one that is not a
//    partition of U2 or that, together with any earlier answer, would reveal both kinds of
//    share of one site.
#ifndef DERMFED_COMMON_SECAGG_PROTOCOL_H_
#define DERMFED_COMMON_SECAGG_PROTOCOL_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace dermfed::secagg {

// Shamir shares over GF(2^8) have x-coordinates 1..255.
inline constexpr size_t kMaxSites = 255;
inline constexpr size_t kMaxSiteNameBytes = 255;
inline constexpr size_t kMaxContextBytes = 4096;
// X25519 keys, the self-mask seed b_u, and every key share (a share is as long as its secret).
inline constexpr size_t kKeyBytes = 32;
// The longest vector a round sums: 2^28 words (a 1 GiB accumulator), twice the largest model.
inline constexpr size_t kMaxVectorWords = size_t{1} << 28;

// The context string of one round: the federation name, the round number and the model
// version the update is relative to, each length-prefixed so that no two tuples encode
// alike. Every site and the coordinator must build it from the same values.
std::string RoundContext(absl::string_view federation, uint64_t round,
                         absl::string_view model_version);

}  // namespace dermfed::secagg

#endif  // DERMFED_COMMON_SECAGG_PROTOCOL_H_
