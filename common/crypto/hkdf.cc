#include "common/crypto/hkdf.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "absl/strings/str_cat.h"
#include "common/crypto/openssl_util.h"

namespace dermfed::crypto {

using internal::EvpKdfCtxPtr;
using internal::EvpKdfPtr;
using internal::OpenSslError;

StatusOr<SecretBytes> HkdfSha256(ByteSpan ikm, ByteSpan salt, ByteSpan info, size_t out_len) {
  if (ikm.empty()) return InvalidArgumentError("HKDF-SHA256: input keying material is empty");
  if (out_len == 0 || out_len > kHkdfSha256MaxOutput) {
    return InvalidArgumentError(absl::StrCat("HKDF-SHA256: output length ", out_len,
                                             " is outside [1, ", kHkdfSha256MaxOutput, "]"));
  }
  EvpKdfPtr kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (kdf == nullptr) return OpenSslError("HKDF-SHA256: fetching HKDF");
  EvpKdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  if (ctx == nullptr) return OpenSslError("HKDF-SHA256: creating the context");

  // OSSL_PARAM wants non-const pointers; OpenSSL only reads these.
  OSSL_PARAM params[5];
  OSSL_PARAM* p = params;
  *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0);
  *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                           const_cast<uint8_t*>(ikm.data()), ikm.size());
  // An absent salt is HashLen zeros, which is what OpenSSL uses when none is given.
  if (!salt.empty()) {
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                             const_cast<uint8_t*>(salt.data()), salt.size());
  }
  if (!info.empty()) {
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                             const_cast<uint8_t*>(info.data()), info.size());
  }
  *p = OSSL_PARAM_construct_end();

  SecretBytes out(out_len);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    return OpenSslError("HKDF-SHA256 derivation");
  }
  return out;
}

}  // namespace dermfed::crypto
