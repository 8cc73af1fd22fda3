// The seal on a masked upload: every chunk is AES-256-GCM encrypted under a key only the
// sending site and the coordinator can derive (X25519 between the site's fresh key and the
// coordinator's key for this round, then HKDF), with the site, round, model version and the
// chunk's offset as associated data. A chunk replayed into another round, another offset,
// or sent by another site's certificate does not open. (The bytes are masked already; the
// seal binds them to who sent them, when and where.)
//
// Thread-compatible.
#ifndef DERMFED_COMMON_SECAGG_UPLOAD_SEAL_H_
#define DERMFED_COMMON_SECAGG_UPLOAD_SEAL_H_

#include <array>
#include <cstdint>
#include <string>

#include "common/crypto/secret.h"
#include "common/status.h"

namespace dermfed::secagg {

class UploadSealer {
 public:
  // `coordinator_key`: the round's public key from the TRAIN task.
  static StatusOr<UploadSealer> Create(const std::string& coordinator_key, const std::string& site,
                                       int64_t round, int64_t model_version);
  // The site's fresh public key, sent in the upload's header.
  const std::string& public_key() const { return public_key_; }
  StatusOr<std::string> Seal(uint64_t offset, const std::string& chunk) const;

 private:
  std::string public_key_;
  crypto::SecretBytes key_;
  std::string site_;
  int64_t round_ = 0;
  int64_t version_ = 0;
};

class UploadOpener {
 public:
  // `coordinator_private_key`: the round's private key; `site_key`: from the header;
  // `site`: the sender's identity as the coordinator knows it (its certificate).
  static StatusOr<UploadOpener> Create(const crypto::SecretBytes& coordinator_private_key,
                                       const std::string& site_key, const std::string& site,
                                       int64_t round, int64_t model_version);
  // DATA_LOSS naming the site, round and offset when the chunk does not open.
  StatusOr<std::string> Open(uint64_t offset, const std::string& sealed) const;

 private:
  crypto::SecretBytes key_;
  std::string site_;
  int64_t round_ = 0;
  int64_t version_ = 0;
};

}  // namespace dermfed::secagg

#endif  // DERMFED_COMMON_SECAGG_UPLOAD_SEAL_H_
