#include "common/crypto/aead.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/crypto/openssl_util.h"

namespace dermfed::crypto {
namespace {

using internal::EvpCipherCtxPtr;
using internal::kMaxEvpChunk;
using internal::OpenSslError;

constexpr absl::string_view kAadVersion = "dermfed-aead-binding-v1";

Status CheckKey(ByteSpan key) {
  if (key.size() != kAeadKeyBytes) {
    return InvalidArgumentError(absl::StrCat("AES-256-GCM key has ", key.size(),
                                             " bytes, expected ", kAeadKeyBytes));
  }
  return OkStatus();
}

// EVP_{En,De}cryptUpdate take an int length; feed `in` in chunks. `out` null = AAD.
template <typename UpdateFn>
bool UpdateInChunks(EVP_CIPHER_CTX* ctx, UpdateFn update, uint8_t* out, ByteSpan in) {
  for (size_t done = 0; done < in.size();) {
    const size_t n = std::min(kMaxEvpChunk, in.size() - done);
    int len = 0;
    if (update(ctx, out == nullptr ? nullptr : out + done, &len, in.data() + done,
               static_cast<int>(n)) != 1) {
      return false;
    }
    if (out != nullptr && static_cast<size_t>(len) != n) return false;
    done += n;
  }
  return true;
}

void AppendU32(std::vector<uint8_t>* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void AppendU64(std::vector<uint8_t>* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void AppendField(std::vector<uint8_t>* out, absl::string_view field) {
  AppendU32(out, static_cast<uint32_t>(field.size()));
  out->insert(out->end(), field.begin(), field.end());
}

}  // namespace

StatusOr<std::vector<uint8_t>> Seal(ByteSpan key, ByteSpan aad, ByteSpan plaintext) {
  DF_RETURN_IF_ERROR(CheckKey(key));
  std::vector<uint8_t> sealed(kAeadOverheadBytes + plaintext.size());
  uint8_t* nonce = sealed.data();
  uint8_t* ciphertext = nonce + kAeadNonceBytes;
  uint8_t* tag = ciphertext + plaintext.size();
  if (RAND_bytes(nonce, kAeadNonceBytes) != 1) return OpenSslError("AES-256-GCM: nonce");

  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return OpenSslError("AES-256-GCM: creating the context");
  if (EVP_EncryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), key.data(), nonce, nullptr) != 1) {
    return OpenSslError("AES-256-GCM: encrypt init");
  }
  if (!UpdateInChunks(ctx.get(), EVP_EncryptUpdate, nullptr, aad) ||
      !UpdateInChunks(ctx.get(), EVP_EncryptUpdate, ciphertext, plaintext)) {
    return OpenSslError("AES-256-GCM: encrypt");
  }
  int final_len = 0;
  if (EVP_EncryptFinal_ex(ctx.get(), ciphertext + plaintext.size(), &final_len) != 1 ||
      final_len != 0) {
    return OpenSslError("AES-256-GCM: encrypt final");
  }
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, kAeadTagBytes),
      OSSL_PARAM_construct_end()};
  if (EVP_CIPHER_CTX_get_params(ctx.get(), params) != 1) {
    return OpenSslError("AES-256-GCM: reading the tag");
  }
  return sealed;
}

StatusOr<SecretBytes> Open(ByteSpan key, ByteSpan aad, ByteSpan sealed) {
  DF_RETURN_IF_ERROR(CheckKey(key));
  if (sealed.size() < kAeadOverheadBytes) {
    return DataLossError(absl::StrCat("AES-256-GCM: sealed message has ", sealed.size(),
                                      " bytes, fewer than the ", kAeadOverheadBytes,
                                      " of nonce and tag"));
  }
  const uint8_t* nonce = sealed.data();
  const ByteSpan ciphertext = sealed.subspan(kAeadNonceBytes, sealed.size() - kAeadOverheadBytes);
  // OSSL_PARAM wants a non-const pointer; OpenSSL copies the expected tag from it.
  uint8_t tag[kAeadTagBytes];
  std::copy(sealed.end() - kAeadTagBytes, sealed.end(), tag);

  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return OpenSslError("AES-256-GCM: creating the context");
  if (EVP_DecryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), key.data(), nonce, nullptr) != 1) {
    return OpenSslError("AES-256-GCM: decrypt init");
  }
  SecretBytes plaintext(ciphertext.size());
  if (!UpdateInChunks(ctx.get(), EVP_DecryptUpdate, nullptr, aad) ||
      !UpdateInChunks(ctx.get(), EVP_DecryptUpdate, plaintext.data(), ciphertext)) {
    return OpenSslError("AES-256-GCM: decrypt");
  }
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, kAeadTagBytes),
      OSSL_PARAM_construct_end()};
  if (EVP_CIPHER_CTX_set_params(ctx.get(), params) != 1) {
    return OpenSslError("AES-256-GCM: setting the expected tag");
  }
  int final_len = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), plaintext.data() + plaintext.size(), &final_len) != 1) {
    // Authentication failed; the (unauthenticated) plaintext is wiped by SecretBytes.
    ERR_clear_error();
    return DataLossError(absl::StrCat(
        "AES-256-GCM: authentication failed for a ", sealed.size(),
        "-byte sealed message (wrong key, different associated data such as site, round, "
        "model version or purpose, or altered bytes)"));
  }
  return plaintext;
}

std::vector<uint8_t> BindingAad(absl::string_view site, uint64_t round,
                                absl::string_view model_version, absl::string_view purpose) {
  std::vector<uint8_t> aad;
  aad.reserve(4 * 4 + 8 + kAadVersion.size() + site.size() + model_version.size() +
              purpose.size());
  AppendField(&aad, kAadVersion);
  AppendField(&aad, purpose);
  AppendField(&aad, site);
  AppendU64(&aad, round);
  AppendField(&aad, model_version);
  return aad;
}

}  // namespace dermfed::crypto
