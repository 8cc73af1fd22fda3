// Internal to common/crypto: owning pointers for OpenSSL EVP objects and the one place that
// turns OpenSSL's thread-local error queue into a Status message.
//
// Thread-safe: OpenSSL's error queue is per thread.
#ifndef DERMFED_COMMON_CRYPTO_OPENSSL_UTIL_H_
#define DERMFED_COMMON_CRYPTO_OPENSSL_UTIL_H_

#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <memory>

#include "absl/strings/string_view.h"
#include "common/status.h"

namespace dermfed::crypto::internal {

struct EvpPkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct EvpPkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct EvpCipherCtxFree {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
struct EvpKdfFree {
  void operator()(EVP_KDF* p) const { EVP_KDF_free(p); }
};
struct EvpKdfCtxFree {
  void operator()(EVP_KDF_CTX* p) const { EVP_KDF_CTX_free(p); }
};

using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, EvpPkeyCtxFree>;
using EvpCipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, EvpCipherCtxFree>;
using EvpKdfPtr = std::unique_ptr<EVP_KDF, EvpKdfFree>;
using EvpKdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, EvpKdfCtxFree>;

// "`what` failed: <OpenSSL's reasons>" with the given code (Internal by default); drains
// the calling thread's error queue so a later failure does not report stale reasons.
Status OpenSslError(absl::string_view what,
                    absl::StatusCode code = absl::StatusCode::kInternal);

// The largest length handed to one EVP_*Update call (they take an int).
inline constexpr size_t kMaxEvpChunk = size_t{1} << 30;

}  // namespace dermfed::crypto::internal

#endif  // DERMFED_COMMON_CRYPTO_OPENSSL_UTIL_H_
