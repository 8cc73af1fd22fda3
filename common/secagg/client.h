// One site's side of one secure-aggregation round (protocol.h): it makes the round's keys,
// shares them, masks the site's quantized update in place, and answers the coordinator's
// unmask request. A Client lives for exactly one round; the next round makes a new one, so
// no key or seed is ever used under two contexts.
//
// Each step may succeed once, in order (ShareKeys, MaskInPlace, then Unmask). A step that
// refuses its input leaves the client where it was; once MaskInPlace has started writing to
// x, any failure is final. The client never reveals both shares (self-mask seed and mask
// key) of the same site, across all the unmask requests it answers.
//
// Not thread-safe: the site daemon drives it from the round's one thread.
#ifndef DERMFED_COMMON_SECAGG_CLIENT_H_
#define DERMFED_COMMON_SECAGG_CLIENT_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "common/crypto/secret.h"
#include "common/secagg/messages.h"
#include "common/status.h"

namespace dermfed::secagg {

class Client {
 public:
  // Fresh key pairs c_u and s_u and a fresh self-mask seed b_u for site `self` in the round
  // named by `context` (RoundContext), with Shamir threshold `threshold`, which must equal
  // the coordinator's. InvalidArgument on an empty or over-long name or context, or a
  // threshold outside [2, kMaxSites].
  static StatusOr<Client> Create(std::string self, std::string context, int threshold);

  Client(Client&&) = default;
  Client& operator=(Client&&) = default;

  const std::string& site() const { return self_; }
  // Round 0: what this site sends the coordinator.
  const Advertisement& advertisement() const { return advertisement_; }

  // Round 1: checks U1 (at least `threshold` sites, at most kMaxSites, no duplicate site or
  // key, this site present with its own advertisement), then Shamir-splits s_u^SK and b_u
  // among U1 and seals each other site's shares for it. InvalidArgument (naming the site)
  // when U1 fails a check.
  StatusOr<ShareBundle> ShareKeys(const AdvertisementList& u1);

  // Round 2: turns x (this site's quantized update) into its masked input y_u, in place,
  // after checking U2 (a subset of U1 with at least `threshold` sites, this site among them)
  // and opening every share addressed to this site: exactly one from each other site in U2.
  // A share that fails authentication (tampered, another round's, another context's) gives
  // DataLoss naming its sender; all checks happen before x is touched.
  Status MaskInPlace(absl::Span<uint32_t> x, const MaskingRequest& request);

  // Round 3: this site's shares of b_u for each u in request.survivors and of s_u^SK for
  // each u in request.dropped. Refuses with PermissionDenied a request with fewer than
  // `threshold` survivors, one that lists this site as dropped, and one that would reveal
  // both shares of any site (in itself or together with an earlier answer); InvalidArgument
  // when the two lists are not a partition of U2. Repeating an answered request is allowed.
  StatusOr<UnmaskResponse> Unmask(const UnmaskRequest& request);

 private:
  enum class Phase { kAdvertised, kSharedKeys, kMasked, kFailed };

  // The shares another site sealed for this one (or this site's own shares).
  struct HeldShares {
    crypto::SecretBytes mask_key_share;  // of s_owner^SK
    crypto::SecretBytes seed_share;      // of b_owner
  };

  Client() = default;
  Status CheckPhase(Phase expected, const char* step) const;

  std::string self_;
  std::string context_;
  int threshold_ = 0;
  Phase phase_ = Phase::kAdvertised;

  crypto::SecretBytes channel_private_key_;  // c_u^SK, wiped after ShareKeys
  crypto::SecretBytes mask_private_key_;     // s_u^SK, wiped after ShareKeys
  crypto::SecretBytes seed_;                 // b_u, wiped after MaskInPlace
  Advertisement advertisement_;

  // From ShareKeys: U1 and, for each other site in it, k_uv and s_uv (wiped after masking).
  std::vector<std::string> u1_;
  std::map<std::string, crypto::SecretBytes> channel_keys_;
  std::map<std::string, crypto::SecretBytes> mask_keys_;

  // From MaskInPlace: U2 and the shares held for each site in it, this one included.
  std::vector<std::string> u2_;
  std::map<std::string, HeldShares> held_;

  // What Unmask has revealed so far.
  std::set<std::string> revealed_seed_of_;
  std::set<std::string> revealed_mask_key_of_;
};

}  // namespace dermfed::secagg

#endif  // DERMFED_COMMON_SECAGG_CLIENT_H_
