#include "common/secagg/messages.h"

#include "common/secagg/wire.h"

namespace dermfed::secagg {
namespace {

using internal::WireReader;
using internal::WireWriter;

enum Kind : uint8_t {
  kAdvertisement = 1,
  kAdvertisementList = 2,
  kEncryptedShare = 3,
  kShareBundle = 4,
  kMaskingRequest = 5,
  kUnmaskRequest = 6,
  kUnmaskResponse = 7,
};

// The smallest encodings of list elements, so a count can be checked against what remains.
constexpr size_t kMinSiteBytes = 4 + 1;
constexpr size_t kMinAdvertisementBytes = kMinSiteBytes + 3 * kKeyBytes;
constexpr size_t kMinEncryptedShareBytes = 2 * kMinSiteBytes + 4;
constexpr size_t kMinKeyShareBytes = kMinSiteBytes + kKeyBytes;

Status ReadSite(WireReader& r, absl::string_view field, std::string* site) {
  return r.String(field, 1, kMaxSiteNameBytes, site);
}

void WriteAdvertisement(WireWriter& w, const Advertisement& a) {
  w.String(a.site);
  w.Raw(a.channel_public_key);
  w.Raw(a.mask_public_key);
  w.Raw(a.seed_commitment);
}

Status ReadAdvertisement(WireReader& r, Advertisement* a) {
  DF_RETURN_IF_ERROR(ReadSite(r, "site", &a->site));
  DF_RETURN_IF_ERROR(r.Raw("channel_public_key", a->channel_public_key.data(), kKeyBytes));
  DF_RETURN_IF_ERROR(r.Raw("mask_public_key", a->mask_public_key.data(), kKeyBytes));
  return r.Raw("seed_commitment", a->seed_commitment.data(), kKeyBytes);
}

void WriteEncryptedShare(WireWriter& w, const EncryptedShare& s) {
  w.String(s.from);
  w.String(s.to);
  w.Count(s.ciphertext.size());
  w.Raw(s.ciphertext);
}

Status ReadEncryptedShare(WireReader& r, EncryptedShare* s) {
  DF_RETURN_IF_ERROR(ReadSite(r, "from", &s->from));
  DF_RETURN_IF_ERROR(ReadSite(r, "to", &s->to));
  size_t len = 0;
  DF_RETURN_IF_ERROR(r.Count("ciphertext", kMaxShareCiphertextBytes, 1, &len));
  s->ciphertext.resize(len);
  return r.Raw("ciphertext", s->ciphertext.data(), len);
}

void WriteSites(WireWriter& w, const std::vector<std::string>& sites) {
  w.Count(sites.size());
  for (const std::string& site : sites) w.String(site);
}

Status ReadSites(WireReader& r, absl::string_view field, std::vector<std::string>* sites) {
  size_t n = 0;
  DF_RETURN_IF_ERROR(r.Count(field, kMaxSites, kMinSiteBytes, &n));
  sites->resize(n);
  for (std::string& site : *sites) DF_RETURN_IF_ERROR(ReadSite(r, field, &site));
  return OkStatus();
}

void WriteShares(WireWriter& w, const std::vector<EncryptedShare>& shares) {
  w.Count(shares.size());
  for (const EncryptedShare& s : shares) WriteEncryptedShare(w, s);
}

Status ReadShares(WireReader& r, std::vector<EncryptedShare>* shares) {
  size_t n = 0;
  DF_RETURN_IF_ERROR(r.Count("shares", kMaxSites, kMinEncryptedShareBytes, &n));
  shares->resize(n);
  for (EncryptedShare& s : *shares) DF_RETURN_IF_ERROR(ReadEncryptedShare(r, &s));
  return OkStatus();
}

void WriteKeyShares(WireWriter& w, const std::vector<KeyShare>& shares) {
  w.Count(shares.size());
  for (const KeyShare& s : shares) {
    w.String(s.owner);
    w.Raw(s.share);
  }
}

Status ReadKeyShares(WireReader& r, absl::string_view field, std::vector<KeyShare>* shares) {
  size_t n = 0;
  DF_RETURN_IF_ERROR(r.Count(field, kMaxSites, kMinKeyShareBytes, &n));
  shares->resize(n);
  for (KeyShare& s : *shares) {
    DF_RETURN_IF_ERROR(ReadSite(r, field, &s.owner));
    s.share.resize(kKeyBytes);
    DF_RETURN_IF_ERROR(r.Raw(field, s.share.data(), kKeyBytes));
  }
  return OkStatus();
}

}  // namespace

std::string Advertisement::Serialize() const {
  WireWriter w(kAdvertisement);
  WriteAdvertisement(w, *this);
  return std::move(w.bytes());
}

StatusOr<Advertisement> Advertisement::Parse(absl::string_view bytes) {
  WireReader r(bytes, "secagg Advertisement");
  Advertisement a;
  DF_RETURN_IF_ERROR(r.Header(kAdvertisement));
  DF_RETURN_IF_ERROR(ReadAdvertisement(r, &a));
  DF_RETURN_IF_ERROR(r.Done());
  return a;
}

std::string AdvertisementList::Serialize() const {
  WireWriter w(kAdvertisementList);
  w.Count(advertisements.size());
  for (const Advertisement& a : advertisements) WriteAdvertisement(w, a);
  return std::move(w.bytes());
}

StatusOr<AdvertisementList> AdvertisementList::Parse(absl::string_view bytes) {
  WireReader r(bytes, "secagg AdvertisementList");
  AdvertisementList list;
  DF_RETURN_IF_ERROR(r.Header(kAdvertisementList));
  size_t n = 0;
  DF_RETURN_IF_ERROR(r.Count("advertisements", kMaxSites, kMinAdvertisementBytes, &n));
  list.advertisements.resize(n);
  for (Advertisement& a : list.advertisements) DF_RETURN_IF_ERROR(ReadAdvertisement(r, &a));
  DF_RETURN_IF_ERROR(r.Done());
  return list;
}

std::string EncryptedShare::Serialize() const {
  WireWriter w(kEncryptedShare);
  WriteEncryptedShare(w, *this);
  return std::move(w.bytes());
}

StatusOr<EncryptedShare> EncryptedShare::Parse(absl::string_view bytes) {
  WireReader r(bytes, "secagg EncryptedShare");
  EncryptedShare s;
  DF_RETURN_IF_ERROR(r.Header(kEncryptedShare));
  DF_RETURN_IF_ERROR(ReadEncryptedShare(r, &s));
  DF_RETURN_IF_ERROR(r.Done());
  return s;
}

std::string ShareBundle::Serialize() const {
  WireWriter w(kShareBundle);
  WriteShares(w, shares);
  return std::move(w.bytes());
}

StatusOr<ShareBundle> ShareBundle::Parse(absl::string_view bytes) {
  WireReader r(bytes, "secagg ShareBundle");
  ShareBundle bundle;
  DF_RETURN_IF_ERROR(r.Header(kShareBundle));
  DF_RETURN_IF_ERROR(ReadShares(r, &bundle.shares));
  DF_RETURN_IF_ERROR(r.Done());
  return bundle;
}

std::string MaskingRequest::Serialize() const {
  WireWriter w(kMaskingRequest);
  WriteSites(w, u2);
  WriteShares(w, shares);
  return std::move(w.bytes());
}

StatusOr<MaskingRequest> MaskingRequest::Parse(absl::string_view bytes) {
  WireReader r(bytes, "secagg MaskingRequest");
  MaskingRequest request;
  DF_RETURN_IF_ERROR(r.Header(kMaskingRequest));
  DF_RETURN_IF_ERROR(ReadSites(r, "u2", &request.u2));
  DF_RETURN_IF_ERROR(ReadShares(r, &request.shares));
  DF_RETURN_IF_ERROR(r.Done());
  return request;
}

std::string UnmaskRequest::Serialize() const {
  WireWriter w(kUnmaskRequest);
  WriteSites(w, survivors);
  WriteSites(w, dropped);
  return std::move(w.bytes());
}

StatusOr<UnmaskRequest> UnmaskRequest::Parse(absl::string_view bytes) {
  WireReader r(bytes, "secagg UnmaskRequest");
  UnmaskRequest request;
  DF_RETURN_IF_ERROR(r.Header(kUnmaskRequest));
  DF_RETURN_IF_ERROR(ReadSites(r, "survivors", &request.survivors));
  DF_RETURN_IF_ERROR(ReadSites(r, "dropped", &request.dropped));
  DF_RETURN_IF_ERROR(r.Done());
  return request;
}

std::string UnmaskResponse::Serialize() const {
  WireWriter w(kUnmaskResponse);
  w.String(from);
  WriteKeyShares(w, mask_key_shares);
  WriteKeyShares(w, seed_shares);
  return std::move(w.bytes());
}

StatusOr<UnmaskResponse> UnmaskResponse::Parse(absl::string_view bytes) {
  WireReader r(bytes, "secagg UnmaskResponse");
  UnmaskResponse response;
  DF_RETURN_IF_ERROR(r.Header(kUnmaskResponse));
  DF_RETURN_IF_ERROR(ReadSite(r, "from", &response.from));
  DF_RETURN_IF_ERROR(ReadKeyShares(r, "mask_key_shares", &response.mask_key_shares));
  DF_RETURN_IF_ERROR(ReadKeyShares(r, "seed_shares", &response.seed_shares));
  DF_RETURN_IF_ERROR(r.Done());
  return response;
}

}  // namespace dermfed::secagg
