// The coordinator's side of one secure-aggregation round (protocol.h). It admits the
// messages of a fixed participant list P, phase by phase, folds each masked input into one
// accumulator as it arrives (no per-site copy is kept), and in the end removes the masks to
// leave exactly the sum of the surviving sites' inputs mod 2^32 — or fails with a status
// that says why; it never returns a wrong sum.
//
// Phases: advertisements -> shares -> masked inputs -> unmask responses -> done. Each Close*
// (and MakeUnmaskRequest) ends a phase; one that fails (too few sites) leaves the phase
// open, so the caller may wait for more messages or abandon the round. Every Add* takes
// `from`, the peer's authenticated identity (its mTLS certificate), and refuses a message
// whose own sender field differs, a site outside P or outside the set the phase admits
// (PermissionDenied / FailedPrecondition), a duplicate (AlreadyExists), a message in the
// wrong phase (FailedPrecondition) and a malformed one (InvalidArgument), naming the site;
// a refused message changes nothing.
//
// Not thread-safe: the round engine calls it under its own lock.
#ifndef DERMFED_COMMON_SECAGG_SERVER_H_
#define DERMFED_COMMON_SECAGG_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "common/secagg/messages.h"
#include "common/status.h"

namespace dermfed::secagg {

class Server {
 public:
  // A round of `participants` (P: distinct names, 2..kMaxSites of them) under `context`
  // (RoundContext) with Shamir threshold `threshold` (2 <= t <= |P|), summing vectors of
  // `vector_length` uint32 words (1..kMaxVectorWords). InvalidArgument otherwise.
  static StatusOr<Server> Create(std::string context, std::vector<std::string> participants,
                                 int threshold, size_t vector_length);

  Server(Server&&) = default;
  Server& operator=(Server&&) = default;

  // Round 0.
  Status AddAdvertisement(const std::string& from, const Advertisement& advertisement);
  // U1 sorted by site, to broadcast to each site in it. FailedPrecondition with fewer than
  // `threshold` advertisements (the message says how many arrived).
  StatusOr<AdvertisementList> CloseAdvertisements();

  // Round 1: a site in U1 sends exactly one share for each other site in U1.
  Status AddShares(const std::string& from, ShareBundle bundle);
  // U2 (sorted): the sites whose shares arrived. FailedPrecondition with fewer than
  // `threshold`.
  StatusOr<std::vector<std::string>> CloseShares();
  // For a site in U2, after CloseShares: U2 and the shares sealed for it by sites in U2.
  StatusOr<MaskingRequest> MaskingRequestFor(const std::string& site) const;

  // Round 2: folds y_u into the accumulator. y has exactly `vector_length` words; a site in
  // U2 sends one masked input.
  Status AddMaskedInput(const std::string& from, absl::Span<const uint32_t> y);
  // The same, in pieces that arrive in order: `offset` must equal the number of words this
  // site has sent so far, and the input counts once all `vector_length` have arrived. A
  // partial input cannot be taken out of the sum again, so a site that stops half way makes
  // MakeUnmaskRequest fail until it finishes.
  Status AddMaskedInputChunk(const std::string& from, size_t offset,
                             absl::Span<const uint32_t> words);
  // Ends round 2: U3 = the sites whose whole masked input was folded, D = U2 \ U3. The same
  // request goes to every site in U3. FailedPrecondition with fewer than `threshold`
  // survivors (the message says how many) and DataLoss while a site's input is partial.
  StatusOr<UnmaskRequest> MakeUnmaskRequest();

  // Round 3: from a site in U3, its shares of b_u for each u in U3 and of s_u^SK for each u
  // in D, each exactly once.
  Status AddUnmaskResponse(const std::string& from, const UnmaskResponse& response);
  // Reconstructs b_u (u in U3) and s_u^SK (u in D) from all responses, checks each against
  // the advertised commitment and public key, and removes the masks: the exact sum of x_u
  // over U3, mod 2^32. FailedPrecondition with fewer than `threshold` responses, DataLoss
  // when a secret does not reconstruct or does not match; both leave the server as it was,
  // so more responses can still help. On success the server is done.
  StatusOr<std::vector<uint32_t>> Finish();

  // U1, U2 and U3 once their phases have closed (empty before).
  const std::vector<std::string>& u1() const { return u1_; }
  const std::vector<std::string>& u2() const { return u2_; }
  const std::vector<std::string>& u3() const { return u3_; }

 private:
  enum class Phase { kAdvertise, kShareKeys, kMaskedInput, kUnmask, kDone, kFailed };

  Server() = default;
  Status CheckSender(const std::string& from, Phase phase, const char* what) const;

  std::string context_;
  std::vector<std::string> participants_;  // P, sorted
  int threshold_ = 0;
  size_t vector_length_ = 0;
  Phase phase_ = Phase::kAdvertise;

  std::map<std::string, Advertisement> advertisements_;
  std::vector<std::string> u1_;
  std::map<std::string, std::vector<EncryptedShare>> inbox_;  // by recipient
  std::set<std::string> shared_;                              // sent their shares
  std::vector<std::string> u2_;
  std::vector<uint32_t> accumulator_;         // allocated with the first masked input
  std::map<std::string, size_t> words_from_;  // masked-input words folded, by site
  std::vector<std::string> u3_;
  std::vector<std::string> dropped_;
  std::map<std::string, UnmaskResponse> responses_;
};

}  // namespace dermfed::secagg

#endif  // DERMFED_COMMON_SECAGG_SERVER_H_
