#include "common/secagg/upload_seal.h"

#include "common/crypto/aead.h"
#include "common/crypto/hkdf.h"
#include "common/crypto/x25519.h"

namespace dermfed::secagg {
namespace {

std::vector<uint8_t> ChunkAad(const std::string& site, int64_t round, int64_t version,
                              uint64_t offset) {
  return crypto::BindingAad(site, static_cast<uint64_t>(round), std::to_string(version),
                            "upload-chunk@" + std::to_string(offset));
}

StatusOr<crypto::SecretBytes> DeriveKey(const crypto::SecretBytes& shared, const std::string& site_key,
                                        const std::string& site, int64_t round, int64_t version) {
  const std::vector<uint8_t> info = crypto::BindingAad(site, static_cast<uint64_t>(round),
                                                       std::to_string(version), "upload-key");
  return crypto::HkdfSha256(crypto::ByteSpan(shared.data(), shared.size()),
                            crypto::AsBytes(site_key), crypto::ByteSpan(info.data(), info.size()),
                            crypto::kAeadKeyBytes);
}

}  // namespace

StatusOr<UploadSealer> UploadSealer::Create(const std::string& coordinator_key,
                                            const std::string& site, int64_t round,
                                            int64_t model_version) {
  if (coordinator_key.size() != crypto::kX25519KeyBytes) {
    return InvalidArgumentError("round " + std::to_string(round) +
                                ": the task carries no valid upload key");
  }
  DF_ASSIGN_OR_RETURN(crypto::KeyPair mine, crypto::GenerateKeyPair());
  DF_ASSIGN_OR_RETURN(crypto::SecretBytes shared,
                      crypto::Agree(crypto::ByteSpan(mine.private_key.data(), mine.private_key.size()),
                                    crypto::AsBytes(coordinator_key)));
  UploadSealer s;
  s.public_key_.assign(reinterpret_cast<const char*>(mine.public_key.data()), mine.public_key.size());
  DF_ASSIGN_OR_RETURN(s.key_, DeriveKey(shared, s.public_key_, site, round, model_version));
  s.site_ = site;
  s.round_ = round;
  s.version_ = model_version;
  return s;
}

StatusOr<std::string> UploadSealer::Seal(uint64_t offset, const std::string& chunk) const {
  const std::vector<uint8_t> aad = ChunkAad(site_, round_, version_, offset);
  DF_ASSIGN_OR_RETURN(std::vector<uint8_t> sealed,
                      crypto::Seal(crypto::ByteSpan(key_.data(), key_.size()),
                                   crypto::ByteSpan(aad.data(), aad.size()), crypto::AsBytes(chunk)));
  return std::string(sealed.begin(), sealed.end());
}

StatusOr<UploadOpener> UploadOpener::Create(const crypto::SecretBytes& coordinator_private_key,
                                            const std::string& site_key, const std::string& site,
                                            int64_t round, int64_t model_version) {
  if (site_key.size() != crypto::kX25519KeyBytes) {
    return InvalidArgumentError("masked update from site '" + site + "' for round " +
                                std::to_string(round) + " is not sealed (no site key)");
  }
  DF_ASSIGN_OR_RETURN(
      crypto::SecretBytes shared,
      crypto::Agree(crypto::ByteSpan(coordinator_private_key.data(), coordinator_private_key.size()),
                    crypto::AsBytes(site_key)));
  UploadOpener o;
  DF_ASSIGN_OR_RETURN(o.key_, DeriveKey(shared, site_key, site, round, model_version));
  o.site_ = site;
  o.round_ = round;
  o.version_ = model_version;
  return o;
}

StatusOr<std::string> UploadOpener::Open(uint64_t offset, const std::string& sealed) const {
  const std::vector<uint8_t> aad = ChunkAad(site_, round_, version_, offset);
  auto plain = crypto::Open(crypto::ByteSpan(key_.data(), key_.size()),
                            crypto::ByteSpan(aad.data(), aad.size()), crypto::AsBytes(sealed));
  if (!plain.ok()) {
    return DataLossError("masked update from site '" + site_ + "' for round " +
                         std::to_string(round_) + ": the chunk at offset " +
                         std::to_string(offset) +
                         " does not open (sealed for another site, round or offset, or altered)");
  }
  return std::string(plain->begin(), plain->end());
}

}  // namespace dermfed::secagg
