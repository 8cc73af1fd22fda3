#include "common/secagg/server.h"

#include <algorithm>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/crypto/aead.h"
#include "common/crypto/fixed_point.h"
#include "common/crypto/prg.h"
#include "common/crypto/shamir.h"
#include "common/crypto/x25519.h"
#include "common/secagg/derivation.h"

namespace dermfed::secagg {
namespace {

using crypto::SecretBytes;

constexpr const char* kPhaseNames[] = {"advertise keys", "share keys", "masked input",
                                       "unmasking",      "done",       "failed"};

bool Contains(const std::vector<std::string>& sorted, const std::string& site) {
  return std::binary_search(sorted.begin(), sorted.end(), site);
}

// The Shamir x-coordinate of a site: 1 + its position in sorted U1.
uint8_t ShareX(const std::vector<std::string>& u1, const std::string& site) {
  return static_cast<uint8_t>(std::lower_bound(u1.begin(), u1.end(), site) - u1.begin() + 1);
}

// Checks that `shares` names each site of `expected` exactly once, with a key-sized share.
Status CheckKeyShares(const std::string& who, const char* kind, const std::vector<KeyShare>& shares,
                      const std::vector<std::string>& expected) {
  std::set<std::string> seen;
  for (const KeyShare& share : shares) {
    if (!Contains(expected, share.owner)) {
      return InvalidArgumentError(absl::StrCat(who, " has a ", kind, " share of site ", share.owner,
                                               ", which was not asked for"));
    }
    if (!seen.insert(share.owner).second) {
      return InvalidArgumentError(
          absl::StrCat(who, " has more than one ", kind, " share of site ", share.owner));
    }
    if (share.share.size() != kKeyBytes) {
      return InvalidArgumentError(absl::StrCat(who, " has a ", share.share.size(), "-byte ", kind,
                                               " share of site ", share.owner, ", expected ",
                                               kKeyBytes));
    }
  }
  if (seen.size() != expected.size()) {
    std::vector<std::string> missing;
    for (const std::string& site : expected) {
      if (seen.count(site) == 0) missing.push_back(site);
    }
    return InvalidArgumentError(
        absl::StrCat(who, " lacks the ", kind, " share of site(s) ", absl::StrJoin(missing, ", ")));
  }
  return OkStatus();
}

}  // namespace

StatusOr<Server> Server::Create(std::string context, std::vector<std::string> participants,
                                int threshold, size_t vector_length) {
  if (context.empty() || context.size() > kMaxContextBytes) {
    return InvalidArgumentError(absl::StrCat("secagg server: context has ", context.size(),
                                             " bytes, must be in [1, ", kMaxContextBytes, "]"));
  }
  std::sort(participants.begin(), participants.end());
  const size_t n = participants.size();
  if (n < 2 || n > kMaxSites) {
    return InvalidArgumentError(
        absl::StrCat("secagg server: ", n, " participants, must be in [2, ", kMaxSites, "]"));
  }
  for (size_t i = 0; i < n; ++i) {
    const std::string& site = participants[i];
    if (site.empty() || site.size() > kMaxSiteNameBytes) {
      return InvalidArgumentError(absl::StrCat("secagg server: participant name '", site, "' has ",
                                               site.size(), " bytes, must be in [1, ",
                                               kMaxSiteNameBytes, "]"));
    }
    if (i > 0 && site == participants[i - 1]) {
      return InvalidArgumentError(
          absl::StrCat("secagg server: participant ", site, " is listed more than once"));
    }
  }
  if (threshold < 2 || threshold > static_cast<int>(n)) {
    return InvalidArgumentError(absl::StrCat("secagg server: threshold ", threshold,
                                             " must be in [2, ", n, " participants]"));
  }
  if (vector_length == 0 || vector_length > kMaxVectorWords) {
    return InvalidArgumentError(absl::StrCat("secagg server: vector length ", vector_length,
                                             " must be in [1, ", kMaxVectorWords, "]"));
  }
  Server s;
  s.context_ = std::move(context);
  s.participants_ = std::move(participants);
  s.threshold_ = threshold;
  s.vector_length_ = vector_length;
  return s;
}

Status Server::CheckSender(const std::string& from, Phase phase, const char* what) const {
  if (!Contains(participants_, from)) {
    return PermissionDeniedError(absl::StrCat("secagg server: ", what, " from site ", from,
                                              ", which is not a participant of this round"));
  }
  if (phase_ != phase) {
    return FailedPreconditionError(
        absl::StrCat("secagg server: ", what, " from site ", from, " arrived in phase '",
                     kPhaseNames[static_cast<int>(phase_)], "', expected in phase '",
                     kPhaseNames[static_cast<int>(phase)], "'"));
  }
  return OkStatus();
}

Status Server::AddAdvertisement(const std::string& from, const Advertisement& advertisement) {
  DF_RETURN_IF_ERROR(CheckSender(from, Phase::kAdvertise, "advertisement"));
  if (advertisement.site != from) {
    return PermissionDeniedError(absl::StrCat("secagg server: advertisement from site ", from,
                                              " names site ", advertisement.site));
  }
  if (advertisements_.count(from) > 0) {
    return AlreadyExistsError(
        absl::StrCat("secagg server: site ", from, " already advertised its keys"));
  }
  if (advertisement.channel_public_key == advertisement.mask_public_key) {
    return InvalidArgumentError(
        absl::StrCat("secagg server: site ", from, " advertises the same key for both purposes"));
  }
  for (const auto& [site, other] : advertisements_) {
    for (const PublicKey& key : {advertisement.channel_public_key, advertisement.mask_public_key}) {
      if (key == other.channel_public_key || key == other.mask_public_key) {
        return InvalidArgumentError(absl::StrCat("secagg server: site ", from,
                                                 " advertises a public key that site ", site,
                                                 " already advertised"));
      }
    }
  }
  advertisements_.emplace(from, advertisement);
  return OkStatus();
}

StatusOr<AdvertisementList> Server::CloseAdvertisements() {
  if (phase_ != Phase::kAdvertise) {
    return FailedPreconditionError("secagg server: advertisements are already closed");
  }
  if (advertisements_.size() < static_cast<size_t>(threshold_)) {
    return FailedPreconditionError(
        absl::StrCat("secagg server: only ", advertisements_.size(), " of ", participants_.size(),
                     " sites advertised keys, fewer than the threshold ", threshold_));
  }
  AdvertisementList list;
  for (const auto& [site, advertisement] : advertisements_) {  // std::map: sorted by site
    u1_.push_back(site);
    list.advertisements.push_back(advertisement);
  }
  phase_ = Phase::kShareKeys;
  return list;
}

Status Server::AddShares(const std::string& from, ShareBundle bundle) {
  DF_RETURN_IF_ERROR(CheckSender(from, Phase::kShareKeys, "shares"));
  const std::string who = absl::StrCat("secagg server: shares from site ", from);
  if (!Contains(u1_, from)) {
    return FailedPreconditionError(
        absl::StrCat(who, ": it did not advertise keys in this round (not in U1)"));
  }
  if (shared_.count(from) > 0) {
    return AlreadyExistsError(absl::StrCat(who, ": it already sent its shares"));
  }
  if (bundle.shares.size() != u1_.size() - 1) {
    return InvalidArgumentError(absl::StrCat(who, ": ", bundle.shares.size(),
                                             " shares, expected one for each of the ",
                                             u1_.size() - 1, " other sites of U1"));
  }
  std::set<std::string> recipients;
  for (const EncryptedShare& share : bundle.shares) {
    if (share.from != from) {
      return PermissionDeniedError(
          absl::StrCat(who, ": a share claims to be from site ", share.from));
    }
    if (share.to == from || !Contains(u1_, share.to)) {
      return InvalidArgumentError(absl::StrCat(who, ": a share is addressed to site ", share.to,
                                               ", which is not another site of U1"));
    }
    if (!recipients.insert(share.to).second) {
      return InvalidArgumentError(
          absl::StrCat(who, ": more than one share is addressed to site ", share.to));
    }
    if (share.ciphertext.size() < crypto::kAeadOverheadBytes ||
        share.ciphertext.size() > kMaxShareCiphertextBytes) {
      return InvalidArgumentError(
          absl::StrCat(who, ": the share for site ", share.to, " has ", share.ciphertext.size(),
                       " bytes of ciphertext, outside [", crypto::kAeadOverheadBytes, ", ",
                       kMaxShareCiphertextBytes, "]"));
    }
  }
  for (EncryptedShare& share : bundle.shares) {
    inbox_[share.to].push_back(std::move(share));
  }
  shared_.insert(from);
  return OkStatus();
}

StatusOr<std::vector<std::string>> Server::CloseShares() {
  if (phase_ != Phase::kShareKeys) {
    return FailedPreconditionError(absl::StrCat("secagg server: cannot close shares in phase '",
                                                kPhaseNames[static_cast<int>(phase_)], "'"));
  }
  if (shared_.size() < static_cast<size_t>(threshold_)) {
    return FailedPreconditionError(absl::StrCat("secagg server: only ", shared_.size(), " of ",
                                                u1_.size(),
                                                " sites of U1 sent their shares, "
                                                "fewer than the threshold ",
                                                threshold_));
  }
  u2_.assign(shared_.begin(), shared_.end());
  // Shares for sites that left after advertising are never delivered.
  for (auto it = inbox_.begin(); it != inbox_.end();) {
    it = Contains(u2_, it->first) ? std::next(it) : inbox_.erase(it);
  }
  phase_ = Phase::kMaskedInput;
  return u2_;
}

StatusOr<MaskingRequest> Server::MaskingRequestFor(const std::string& site) const {
  if (phase_ != Phase::kMaskedInput) {
    return FailedPreconditionError(absl::StrCat(
        "secagg server: masking request for site ", site, " asked for in phase '",
        kPhaseNames[static_cast<int>(phase_)], "'; it exists in phase 'masked input'"));
  }
  if (!Contains(u2_, site)) {
    return FailedPreconditionError(
        absl::StrCat("secagg server: site ", site, " did not send its shares (not in U2)"));
  }
  MaskingRequest request;
  request.u2 = u2_;
  auto it = inbox_.find(site);
  if (it != inbox_.end()) request.shares = it->second;
  return request;
}

Status Server::AddMaskedInput(const std::string& from, absl::Span<const uint32_t> y) {
  if (y.size() != vector_length_) {
    DF_RETURN_IF_ERROR(CheckSender(from, Phase::kMaskedInput, "masked input"));
    return InvalidArgumentError(absl::StrCat("secagg server: masked input from site ", from,
                                             " has ", y.size(), " words, expected ",
                                             vector_length_));
  }
  auto it = words_from_.find(from);
  if (it != words_from_.end() && it->second > 0 && it->second < vector_length_) {
    return FailedPreconditionError(absl::StrCat("secagg server: site ", from,
                                                " sends a whole masked input after ", it->second,
                                                " words of it in chunks"));
  }
  return AddMaskedInputChunk(from, 0, y);
}

Status Server::AddMaskedInputChunk(const std::string& from, size_t offset,
                                   absl::Span<const uint32_t> words) {
  DF_RETURN_IF_ERROR(CheckSender(from, Phase::kMaskedInput, "masked input"));
  const std::string who = absl::StrCat("secagg server: masked input from site ", from);
  if (!Contains(u2_, from)) {
    return FailedPreconditionError(absl::StrCat(who, ": it did not send its shares (not in U2)"));
  }
  const size_t received = words_from_[from];
  if (received == vector_length_) {
    return AlreadyExistsError(absl::StrCat(who, ": its whole input was already folded"));
  }
  if (offset != received) {
    return InvalidArgumentError(
        absl::StrCat(who, ": chunk at word ", offset, ", expected the next at word ", received));
  }
  if (words.size() > vector_length_ - offset) {
    return InvalidArgumentError(absl::StrCat(who, ": chunk of ", words.size(), " words at word ",
                                             offset, " runs past the vector length ",
                                             vector_length_));
  }
  if (accumulator_.empty()) {
    try {
      accumulator_.assign(vector_length_, 0);
    } catch (const std::bad_alloc&) {
      return absl::ResourceExhaustedError(
          absl::StrCat("secagg server: cannot allocate the ", vector_length_, "-word accumulator"));
    }
  }
  crypto::AddMod32(accumulator_.data() + offset, words.data(), words.size());
  words_from_[from] = received + words.size();
  return OkStatus();
}

StatusOr<UnmaskRequest> Server::MakeUnmaskRequest() {
  if (phase_ != Phase::kMaskedInput) {
    return FailedPreconditionError(
        absl::StrCat("secagg server: cannot close the masked inputs in phase '",
                     kPhaseNames[static_cast<int>(phase_)], "'"));
  }
  UnmaskRequest request;
  std::vector<std::string> partial;
  for (const std::string& site : u2_) {
    auto it = words_from_.find(site);
    const size_t received = it == words_from_.end() ? 0 : it->second;
    if (received == vector_length_) {
      request.survivors.push_back(site);
    } else if (received == 0) {
      request.dropped.push_back(site);
    } else {
      partial.push_back(absl::StrCat(site, " (", received, " of ", vector_length_, " words)"));
    }
  }
  if (!partial.empty()) {
    return DataLossError(absl::StrCat(
        "secagg server: the masked input of site(s) ", absl::StrJoin(partial, ", "),
        " is partial; a partial input cannot be removed from the sum, so the round cannot be "
        "unmasked until it is complete"));
  }
  if (request.survivors.size() < static_cast<size_t>(threshold_)) {
    return FailedPreconditionError(
        absl::StrCat("secagg server: only ", request.survivors.size(), " of ", u2_.size(),
                     " sites of U2 sent their masked input, fewer than the threshold ", threshold_,
                     "; the sum cannot be unmasked"));
  }
  u3_ = request.survivors;
  dropped_ = request.dropped;
  phase_ = Phase::kUnmask;
  return request;
}

Status Server::AddUnmaskResponse(const std::string& from, const UnmaskResponse& response) {
  DF_RETURN_IF_ERROR(CheckSender(from, Phase::kUnmask, "unmask response"));
  const std::string who = absl::StrCat("secagg server: unmask response from site ", from);
  if (response.from != from) {
    return PermissionDeniedError(absl::StrCat(who, " names site ", response.from));
  }
  if (!Contains(u3_, from)) {
    return FailedPreconditionError(
        absl::StrCat(who, ": it is not a survivor of this round (not in U3)"));
  }
  if (responses_.count(from) > 0) {
    return AlreadyExistsError(absl::StrCat(who, ": it already answered"));
  }
  DF_RETURN_IF_ERROR(CheckKeyShares(who, "mask key", response.mask_key_shares, dropped_));
  DF_RETURN_IF_ERROR(CheckKeyShares(who, "seed", response.seed_shares, u3_));
  responses_.emplace(from, response);
  return OkStatus();
}

StatusOr<std::vector<uint32_t>> Server::Finish() {
  if (phase_ != Phase::kUnmask) {
    return FailedPreconditionError(absl::StrCat("secagg server: cannot finish in phase '",
                                                kPhaseNames[static_cast<int>(phase_)], "'"));
  }
  if (responses_.size() < static_cast<size_t>(threshold_)) {
    return FailedPreconditionError(absl::StrCat(
        "secagg server: ", responses_.size(), " of ", u3_.size(),
        " survivors answered the unmask request, fewer than the threshold ", threshold_));
  }
  // Gather each secret's shares, at the responders' x-coordinates.
  std::map<std::string, std::vector<crypto::Share>> seed_shares, mask_key_shares;
  for (const auto& [responder, response] : responses_) {
    const uint8_t x = ShareX(u1_, responder);
    for (const KeyShare& s : response.seed_shares) seed_shares[s.owner].push_back({x, s.share});
    for (const KeyShare& s : response.mask_key_shares) {
      mask_key_shares[s.owner].push_back({x, s.share});
    }
  }

  // Reconstruct and verify every secret before touching the accumulator, so a failure leaves
  // it intact.
  std::vector<std::pair<std::string, SecretBytes>> seeds;  // (u in U3, b_u)
  for (const std::string& site : u3_) {
    auto seed = crypto::Combine(seed_shares[site], threshold_);
    if (!seed.ok()) {
      return DataLossError(absl::StrCat("secagg server: the self-mask seed of site ", site,
                                        " does not reconstruct: ", seed.status().message()));
    }
    DF_ASSIGN_OR_RETURN(const Digest commitment, internal::SeedCommitment(context_, site, *seed));
    if (!internal::EqualSecret(commitment, advertisements_.at(site).seed_commitment)) {
      return DataLossError(absl::StrCat("secagg server: the self-mask seed of site ", site,
                                        " reconstructs to a value that does not match its "
                                        "commitment (a wrong share)"));
    }
    seeds.emplace_back(site, *std::move(seed));
  }
  struct PairMask {
    SecretBytes key;
    std::string context;
    crypto::MaskSign removal;
  };
  std::vector<PairMask> pair_masks;  // one per (u in D, v in U3)
  for (const std::string& dropped : dropped_) {
    auto private_key = crypto::Combine(mask_key_shares[dropped], threshold_);
    if (!private_key.ok()) {
      return DataLossError(absl::StrCat("secagg server: the mask key of dropped site ", dropped,
                                        " does not reconstruct: ", private_key.status().message()));
    }
    auto pair = crypto::ImportPrivateKey(*private_key);
    if (!pair.ok() || pair->public_key != advertisements_.at(dropped).mask_public_key) {
      return DataLossError(absl::StrCat("secagg server: the mask key of dropped site ", dropped,
                                        " reconstructs to a key that does not match its "
                                        "advertised public key (a wrong share)"));
    }
    for (const std::string& survivor : u3_) {
      DF_ASSIGN_OR_RETURN(
          SecretBytes key,
          internal::PairwiseMaskKey(*private_key, advertisements_.at(survivor).mask_public_key,
                                    context_, dropped, survivor));
      // The survivor added +PRG(s_uv) if it sorts first, -PRG(s_uv) otherwise.
      pair_masks.push_back(
          PairMask{std::move(key), internal::PairwiseMaskContext(context_, dropped, survivor),
                   survivor < dropped ? crypto::MaskSign::kSubtract : crypto::MaskSign::kAdd});
    }
  }

  const absl::Span<uint32_t> sum = absl::MakeSpan(accumulator_);
  Status status;
  for (const auto& [site, seed] : seeds) {
    status = crypto::AddMask(sum, seed, internal::SelfMaskContext(context_, site),
                             crypto::MaskSign::kSubtract);
    if (!status.ok()) break;
  }
  for (size_t i = 0; status.ok() && i < pair_masks.size(); ++i) {
    status = crypto::AddMask(sum, pair_masks[i].key, pair_masks[i].context, pair_masks[i].removal);
  }
  if (!status.ok()) {
    // Half-removed masks: the accumulator is garbage and must not be read.
    phase_ = Phase::kFailed;
    std::vector<uint32_t>().swap(accumulator_);
    return Annotate(status, "secagg server: removing the masks");
  }
  phase_ = Phase::kDone;
  return std::move(accumulator_);
}

}  // namespace dermfed::secagg
