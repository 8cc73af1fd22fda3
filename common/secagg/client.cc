#include "common/secagg/client.h"

#include <openssl/rand.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/crypto/aead.h"
#include "common/crypto/prg.h"
#include "common/crypto/shamir.h"
#include "common/crypto/x25519.h"
#include "common/secagg/derivation.h"

namespace dermfed::secagg {
namespace {

using crypto::SecretBytes;

// Frees and wipes a secret now rather than when the client is destroyed.
void Wipe(SecretBytes& s) { SecretBytes().swap(s); }

template <typename Map>
void WipeAll(Map& m) {
  Map().swap(m);  // SecretBytes values are wiped as they are freed
}

bool Contains(const std::vector<std::string>& sorted, const std::string& site) {
  return std::binary_search(sorted.begin(), sorted.end(), site);
}

const char* PhaseName(int phase) {
  static const char* const kNames[] = {"advertised", "shared keys", "masked", "failed"};
  return kNames[phase];
}

}  // namespace

StatusOr<Client> Client::Create(std::string self, std::string context, int threshold) {
  if (self.empty() || self.size() > kMaxSiteNameBytes) {
    return InvalidArgumentError(absl::StrCat("secagg client: site name has ", self.size(),
                                             " bytes, must be in [1, ", kMaxSiteNameBytes, "]"));
  }
  if (context.empty() || context.size() > kMaxContextBytes) {
    return InvalidArgumentError(absl::StrCat("secagg client ", self, ": context has ",
                                             context.size(), " bytes, must be in [1, ",
                                             kMaxContextBytes, "]"));
  }
  if (threshold < 2 || threshold > static_cast<int>(kMaxSites)) {
    return InvalidArgumentError(absl::StrCat("secagg client ", self, ": threshold ", threshold,
                                             " is outside [2, ", kMaxSites, "]"));
  }
  Client c;
  DF_ASSIGN_OR_RETURN(crypto::KeyPair channel, crypto::GenerateKeyPair());
  DF_ASSIGN_OR_RETURN(crypto::KeyPair mask, crypto::GenerateKeyPair());
  c.seed_.resize(kKeyBytes);
  if (RAND_bytes(c.seed_.data(), static_cast<int>(c.seed_.size())) != 1) {
    return InternalError(absl::StrCat("secagg client ", self, ": RAND_bytes for the seed failed"));
  }
  DF_ASSIGN_OR_RETURN(c.advertisement_.seed_commitment,
                      internal::SeedCommitment(context, self, c.seed_));
  c.advertisement_.site = self;
  c.advertisement_.channel_public_key = channel.public_key;
  c.advertisement_.mask_public_key = mask.public_key;
  c.channel_private_key_ = std::move(channel.private_key);
  c.mask_private_key_ = std::move(mask.private_key);
  c.self_ = std::move(self);
  c.context_ = std::move(context);
  c.threshold_ = threshold;
  return c;
}

Status Client::CheckPhase(Phase expected, const char* step) const {
  if (phase_ == expected) return OkStatus();
  return FailedPreconditionError(absl::StrCat(
      "secagg client ", self_, ": ", step, " needs phase '", PhaseName(static_cast<int>(expected)),
      "', the client is in phase '", PhaseName(static_cast<int>(phase_)), "'"));
}

StatusOr<ShareBundle> Client::ShareKeys(const AdvertisementList& u1_list) {
  DF_RETURN_IF_ERROR(CheckPhase(Phase::kAdvertised, "ShareKeys"));
  const std::string who = absl::StrCat("secagg client ", self_, ": U1");
  std::vector<Advertisement> u1 = u1_list.advertisements;
  const size_t n = u1.size();
  if (n < static_cast<size_t>(threshold_) || n > kMaxSites) {
    return InvalidArgumentError(absl::StrCat(who, " has ", n, " sites, must be in [threshold ",
                                             threshold_, ", ", kMaxSites, "]"));
  }
  std::sort(u1.begin(), u1.end(),
            [](const Advertisement& a, const Advertisement& b) { return a.site < b.site; });
  std::vector<PublicKey> keys;
  size_t self_index = n;
  for (size_t i = 0; i < n; ++i) {
    const Advertisement& a = u1[i];
    if (i > 0 && a.site == u1[i - 1].site) {
      return InvalidArgumentError(absl::StrCat(who, " lists site ", a.site, " more than once"));
    }
    keys.push_back(a.channel_public_key);
    keys.push_back(a.mask_public_key);
    if (a.site == self_) {
      if (a.channel_public_key != advertisement_.channel_public_key ||
          a.mask_public_key != advertisement_.mask_public_key ||
          a.seed_commitment != advertisement_.seed_commitment) {
        return InvalidArgumentError(
            absl::StrCat(who, " lists this site with keys that are not the ones it advertised"));
      }
      self_index = i;
    }
  }
  if (self_index == n) {
    return InvalidArgumentError(absl::StrCat(who, " does not list this site"));
  }
  std::sort(keys.begin(), keys.end());
  if (std::adjacent_find(keys.begin(), keys.end()) != keys.end()) {
    const PublicKey& dup = *std::adjacent_find(keys.begin(), keys.end());
    std::vector<std::string> holders;
    for (const Advertisement& a : u1) {
      if (a.channel_public_key == dup || a.mask_public_key == dup) holders.push_back(a.site);
    }
    return InvalidArgumentError(absl::StrCat(who, ": a public key appears more than once (sites ",
                                             absl::StrJoin(holders, ", "), ")"));
  }

  // Everything below goes into locals; the client changes only once all of it succeeded.
  std::vector<std::string> sites;
  std::map<std::string, SecretBytes> channel_keys, mask_keys;
  for (const Advertisement& a : u1) {
    sites.push_back(a.site);
    if (a.site == self_) continue;
    auto channel_key = internal::ShareChannelKey(channel_private_key_, a.channel_public_key,
                                                 context_, self_, a.site);
    if (!channel_key.ok()) {
      return Annotate(channel_key.status(),
                      absl::StrCat(who, ": channel public key of site ", a.site));
    }
    auto mask_key =
        internal::PairwiseMaskKey(mask_private_key_, a.mask_public_key, context_, self_, a.site);
    if (!mask_key.ok()) {
      return Annotate(mask_key.status(), absl::StrCat(who, ": mask public key of site ", a.site));
    }
    channel_keys.emplace(a.site, *std::move(channel_key));
    mask_keys.emplace(a.site, *std::move(mask_key));
  }
  DF_ASSIGN_OR_RETURN(std::vector<crypto::Share> mask_key_shares,
                      crypto::Split(mask_private_key_, threshold_, static_cast<int>(n)));
  DF_ASSIGN_OR_RETURN(std::vector<crypto::Share> seed_shares,
                      crypto::Split(seed_, threshold_, static_cast<int>(n)));

  ShareBundle bundle;
  for (size_t i = 0; i < n; ++i) {
    if (i == self_index) continue;
    const std::string& peer = sites[i];
    internal::SharePlaintext plaintext{self_, peer, std::move(mask_key_shares[i].y),
                                       std::move(seed_shares[i].y)};
    DF_ASSIGN_OR_RETURN(
        std::vector<uint8_t> sealed,
        crypto::Seal(channel_keys.at(peer), internal::ShareAad(context_, self_, peer),
                     internal::EncodeSharePlaintext(plaintext)));
    bundle.shares.push_back(EncryptedShare{self_, peer, std::move(sealed)});
  }

  held_[self_] =
      HeldShares{std::move(mask_key_shares[self_index].y), std::move(seed_shares[self_index].y)};
  u1_ = std::move(sites);
  channel_keys_ = std::move(channel_keys);
  mask_keys_ = std::move(mask_keys);
  Wipe(channel_private_key_);
  Wipe(mask_private_key_);
  phase_ = Phase::kSharedKeys;
  return bundle;
}

Status Client::MaskInPlace(absl::Span<uint32_t> x, const MaskingRequest& request) {
  DF_RETURN_IF_ERROR(CheckPhase(Phase::kSharedKeys, "MaskInPlace"));
  const std::string who = absl::StrCat("secagg client ", self_, ": ");
  std::vector<std::string> u2 = request.u2;
  std::sort(u2.begin(), u2.end());
  for (size_t i = 0; i < u2.size(); ++i) {
    if (i > 0 && u2[i] == u2[i - 1]) {
      return InvalidArgumentError(absl::StrCat(who, "U2 lists site ", u2[i], " more than once"));
    }
    if (!Contains(u1_, u2[i])) {
      return InvalidArgumentError(
          absl::StrCat(who, "U2 lists site ", u2[i], ", which is not in U1"));
    }
  }
  if (u2.size() < static_cast<size_t>(threshold_)) {
    return InvalidArgumentError(
        absl::StrCat(who, "U2 has ", u2.size(), " sites, fewer than the threshold ", threshold_));
  }
  if (!Contains(u2, self_)) {
    return InvalidArgumentError(absl::StrCat(who, "U2 does not list this site"));
  }

  // Exactly one share from each other site in U2, each opened and checked.
  std::map<std::string, HeldShares> opened;
  for (const EncryptedShare& share : request.shares) {
    if (share.to != self_) {
      return InvalidArgumentError(
          absl::StrCat(who, "got a share from site ", share.from, " addressed to site ", share.to));
    }
    if (share.from == self_ || !Contains(u2, share.from)) {
      return InvalidArgumentError(absl::StrCat(who, "got a share from site ", share.from,
                                               ", which is not another site of U2"));
    }
    if (opened.count(share.from) > 0) {
      return InvalidArgumentError(
          absl::StrCat(who, "got more than one share from site ", share.from));
    }
    auto plaintext =
        crypto::Open(channel_keys_.at(share.from), internal::ShareAad(context_, share.from, self_),
                     share.ciphertext);
    if (!plaintext.ok()) {
      return Annotate(plaintext.status(), absl::StrCat(who, "share from site ", share.from));
    }
    auto decoded = internal::DecodeSharePlaintext(*plaintext);
    if (!decoded.ok()) {
      return Annotate(decoded.status(), absl::StrCat(who, "share from site ", share.from));
    }
    if (decoded->from != share.from || decoded->to != self_) {
      return DataLossError(absl::StrCat(who, "the share from site ", share.from,
                                        " was sealed as a share from site ", decoded->from,
                                        " to site ", decoded->to));
    }
    opened[share.from] =
        HeldShares{std::move(decoded->mask_key_share), std::move(decoded->seed_share)};
  }
  if (opened.size() != u2.size() - 1) {
    std::vector<std::string> missing;
    for (const std::string& site : u2) {
      if (site != self_ && opened.count(site) == 0) missing.push_back(site);
    }
    return InvalidArgumentError(
        absl::StrCat(who, "no share from site(s) ", absl::StrJoin(missing, ", "), " of U2"));
  }

  // From here on x changes, so any failure is final.
  phase_ = Phase::kFailed;
  const std::string self_context = internal::SelfMaskContext(context_, self_);
  DF_RETURN_IF_ERROR(
      Annotate(crypto::AddMask(x, seed_, self_context, crypto::MaskSign::kAdd), who + "self mask"));
  for (const std::string& peer : u2) {
    if (peer == self_) continue;
    const crypto::MaskSign sign =
        self_ < peer ? crypto::MaskSign::kAdd : crypto::MaskSign::kSubtract;
    DF_RETURN_IF_ERROR(
        Annotate(crypto::AddMask(x, mask_keys_.at(peer),
                                 internal::PairwiseMaskContext(context_, self_, peer), sign),
                 absl::StrCat(who, "pairwise mask with site ", peer)));
  }

  for (auto& [site, shares] : opened) held_[site] = std::move(shares);
  u2_ = std::move(u2);
  Wipe(seed_);
  WipeAll(mask_keys_);
  WipeAll(channel_keys_);
  phase_ = Phase::kMasked;
  return OkStatus();
}

StatusOr<UnmaskResponse> Client::Unmask(const UnmaskRequest& request) {
  DF_RETURN_IF_ERROR(CheckPhase(Phase::kMasked, "Unmask"));
  const std::string who = absl::StrCat("secagg client ", self_, ": unmask request ");
  // Each list: sites of U2, each once.
  auto collect = [&](const std::vector<std::string>& list, const char* name,
                     std::set<std::string>* set) -> Status {
    for (const std::string& site : list) {
      if (!Contains(u2_, site)) {
        return InvalidArgumentError(
            absl::StrCat(who, "lists site ", site, " among the ", name, ", but it is not in U2"));
      }
      if (!set->insert(site).second) {
        return InvalidArgumentError(
            absl::StrCat(who, "lists site ", site, " more than once among the ", name));
      }
    }
    return OkStatus();
  };
  std::set<std::string> survivors, dropped;
  DF_RETURN_IF_ERROR(collect(request.survivors, "survivors", &survivors));
  DF_RETURN_IF_ERROR(collect(request.dropped, "dropped", &dropped));
  // The safety rule: b_u and s_u^SK of one site together unmask its input.
  for (const std::string& site : survivors) {
    if (dropped.count(site) > 0) {
      return PermissionDeniedError(
          absl::StrCat(who, "lists site ", site,
                       " both as a survivor and as dropped; revealing both its "
                       "seed share and its mask key share would expose its input"));
    }
    if (revealed_mask_key_of_.count(site) > 0) {
      return PermissionDeniedError(absl::StrCat(
          who, "lists site ", site,
          " as a survivor, but an earlier request listed it as "
          "dropped and got its mask key share; revealing its seed share too would expose its "
          "input"));
    }
  }
  for (const std::string& site : dropped) {
    if (revealed_seed_of_.count(site) > 0) {
      return PermissionDeniedError(absl::StrCat(
          who, "lists site ", site,
          " as dropped, but an earlier request listed it as a "
          "survivor and got its seed share; revealing its mask key share too would expose its "
          "input"));
    }
  }
  if (survivors.size() < static_cast<size_t>(threshold_)) {
    return PermissionDeniedError(absl::StrCat(who, "has ", survivors.size(),
                                              " survivors, fewer than the threshold ", threshold_,
                                              "; refusing to unmask a sum of so few inputs"));
  }
  if (dropped.count(self_) > 0) {
    return PermissionDeniedError(
        absl::StrCat(who, "lists this site as dropped, but it sent its masked input"));
  }
  if (survivors.size() + dropped.size() != u2_.size()) {
    std::vector<std::string> missing;
    for (const std::string& site : u2_) {
      if (survivors.count(site) == 0 && dropped.count(site) == 0) missing.push_back(site);
    }
    return InvalidArgumentError(
        absl::StrCat(who, "does not account for site(s) ", absl::StrJoin(missing, ", "), " of U2"));
  }

  UnmaskResponse response;
  response.from = self_;
  for (const std::string& site : dropped) {
    response.mask_key_shares.push_back(KeyShare{site, held_.at(site).mask_key_share});
    revealed_mask_key_of_.insert(site);
  }
  for (const std::string& site : survivors) {
    response.seed_shares.push_back(KeyShare{site, held_.at(site).seed_share});
    revealed_seed_of_.insert(site);
  }
  return response;
}

}  // namespace dermfed::secagg
