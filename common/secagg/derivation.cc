#include "common/secagg/derivation.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/crypto/hkdf.h"
#include "common/crypto/x25519.h"
#include "common/secagg/wire.h"

namespace dermfed::secagg::internal {
namespace {

constexpr absl::string_view kDomain = "dermfed-secagg-v1";

// The two names of a pair in byte order, so u and v derive the same values.
std::pair<absl::string_view, absl::string_view> Ordered(absl::string_view a, absl::string_view b) {
  return a < b ? std::make_pair(a, b) : std::make_pair(b, a);
}

StatusOr<crypto::SecretBytes> PairKey(absl::string_view purpose, crypto::ByteSpan own_private_key,
                                      const PublicKey& peer_public_key, absl::string_view context,
                                      absl::string_view a, absl::string_view b) {
  DF_ASSIGN_OR_RETURN(crypto::SecretBytes shared, crypto::Agree(own_private_key, peer_public_key));
  const auto [lo, hi] = Ordered(a, b);
  const std::string info = Binding(purpose, {context, lo, hi});
  return crypto::HkdfSha256(shared, {}, crypto::AsBytes(info), kKeyBytes);
}

}  // namespace

std::string Binding(absl::string_view purpose, std::initializer_list<absl::string_view> fields) {
  WireWriter w;
  w.String(kDomain);
  w.String(purpose);
  for (absl::string_view field : fields) w.String(field);
  return std::move(w.bytes());
}

StatusOr<crypto::SecretBytes> ShareChannelKey(crypto::ByteSpan own_private_key,
                                              const PublicKey& peer_public_key,
                                              absl::string_view context, absl::string_view a,
                                              absl::string_view b) {
  return PairKey("share-channel-key", own_private_key, peer_public_key, context, a, b);
}

StatusOr<crypto::SecretBytes> PairwiseMaskKey(crypto::ByteSpan own_private_key,
                                              const PublicKey& peer_public_key,
                                              absl::string_view context, absl::string_view a,
                                              absl::string_view b) {
  return PairKey("pairwise-mask-key", own_private_key, peer_public_key, context, a, b);
}

std::string PairwiseMaskContext(absl::string_view context, absl::string_view a,
                                absl::string_view b) {
  const auto [lo, hi] = Ordered(a, b);
  return Binding("pairwise-mask", {context, lo, hi});
}

std::string SelfMaskContext(absl::string_view context, absl::string_view site) {
  return Binding("self-mask", {context, site});
}

std::vector<uint8_t> ShareAad(absl::string_view context, absl::string_view from,
                              absl::string_view to) {
  const std::string aad = Binding("share-ciphertext", {context, from, to});
  return std::vector<uint8_t>(aad.begin(), aad.end());
}

StatusOr<Digest> SeedCommitment(absl::string_view context, absl::string_view site,
                                crypto::ByteSpan seed) {
  const std::string prefix = Binding("self-mask-seed-commitment", {context, site});
  Digest digest{};
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
                  EVP_DigestUpdate(ctx, prefix.data(), prefix.size()) == 1 &&
                  EVP_DigestUpdate(ctx, seed.data(), seed.size()) == 1 &&
                  EVP_DigestFinal_ex(ctx, digest.data(), &len) == 1 && len == digest.size();
  EVP_MD_CTX_free(ctx);
  if (!ok) {
    ERR_clear_error();
    return InternalError("secagg: SHA-256 of the self-mask seed commitment failed");
  }
  return digest;
}

crypto::SecretBytes EncodeSharePlaintext(const SharePlaintext& p) {
  // Built in a SecretBytes directly so no unwiped copy of the shares is left behind.
  crypto::SecretBytes out;
  out.reserve(8 + p.from.size() + p.to.size() + p.mask_key_share.size() + p.seed_share.size());
  auto append_u32 = [&out](uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  append_u32(static_cast<uint32_t>(p.from.size()));
  out.insert(out.end(), p.from.begin(), p.from.end());
  append_u32(static_cast<uint32_t>(p.to.size()));
  out.insert(out.end(), p.to.begin(), p.to.end());
  out.insert(out.end(), p.mask_key_share.begin(), p.mask_key_share.end());
  out.insert(out.end(), p.seed_share.begin(), p.seed_share.end());
  return out;
}

StatusOr<SharePlaintext> DecodeSharePlaintext(crypto::ByteSpan bytes) {
  WireReader r(absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
               "secagg share plaintext");
  SharePlaintext p;
  Status status = r.String("from", 1, kMaxSiteNameBytes, &p.from);
  if (status.ok()) status = r.String("to", 1, kMaxSiteNameBytes, &p.to);
  if (status.ok()) {
    p.mask_key_share.resize(kKeyBytes);
    status = r.Raw("mask key share", p.mask_key_share.data(), kKeyBytes);
  }
  if (status.ok()) {
    p.seed_share.resize(kKeyBytes);
    status = r.Raw("seed share", p.seed_share.data(), kKeyBytes);
  }
  if (status.ok()) status = r.Done();
  if (!status.ok()) return DataLossError(status.message());
  return p;
}

bool EqualSecret(crypto::ByteSpan a, crypto::ByteSpan b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace dermfed::secagg::internal
