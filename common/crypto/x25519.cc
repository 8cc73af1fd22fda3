#include "common/crypto/x25519.h"

#include <openssl/evp.h>

#include "absl/strings/str_cat.h"
#include "common/crypto/openssl_util.h"

namespace dermfed::crypto {
namespace {

using internal::EvpPkeyCtxPtr;
using internal::EvpPkeyPtr;
using internal::OpenSslError;

Status CheckKeyLength(ByteSpan key, absl::string_view what) {
  if (key.size() != kX25519KeyBytes) {
    return InvalidArgumentError(absl::StrCat("X25519 ", what, " has ", key.size(),
                                             " bytes, expected ", kX25519KeyBytes));
  }
  return OkStatus();
}

StatusOr<KeyPair> KeyPairOf(EVP_PKEY* pkey) {
  KeyPair pair;
  size_t public_len = pair.public_key.size();
  if (EVP_PKEY_get_raw_public_key(pkey, pair.public_key.data(), &public_len) != 1 ||
      public_len != kX25519KeyBytes) {
    return OpenSslError("X25519: reading the public key");
  }
  pair.private_key.resize(kX25519KeyBytes);
  size_t private_len = pair.private_key.size();
  if (EVP_PKEY_get_raw_private_key(pkey, pair.private_key.data(), &private_len) != 1 ||
      private_len != kX25519KeyBytes) {
    return OpenSslError("X25519: reading the private key");
  }
  return pair;
}

}  // namespace

StatusOr<KeyPair> GenerateKeyPair() {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "X25519", nullptr));
  if (ctx == nullptr) return OpenSslError("X25519: creating the key generation context");
  if (EVP_PKEY_keygen_init(ctx.get()) != 1) return OpenSslError("X25519: keygen init");
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_generate(ctx.get(), &raw) != 1) return OpenSslError("X25519: key generation");
  EvpPkeyPtr pkey(raw);
  return KeyPairOf(pkey.get());
}

StatusOr<KeyPair> ImportPrivateKey(ByteSpan private_key) {
  DF_RETURN_IF_ERROR(CheckKeyLength(private_key, "private key"));
  EvpPkeyPtr pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, private_key.data(),
                                               private_key.size()));
  if (pkey == nullptr) return OpenSslError("X25519: importing the private key");
  return KeyPairOf(pkey.get());
}

StatusOr<SecretBytes> Agree(ByteSpan private_key, ByteSpan peer_public_key) {
  DF_RETURN_IF_ERROR(CheckKeyLength(private_key, "private key"));
  DF_RETURN_IF_ERROR(CheckKeyLength(peer_public_key, "peer public key"));
  EvpPkeyPtr own(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, private_key.data(),
                                              private_key.size()));
  if (own == nullptr) return OpenSslError("X25519: importing the private key");
  EvpPkeyPtr peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer_public_key.data(),
                                              peer_public_key.size()));
  if (peer == nullptr) {
    return OpenSslError("X25519: importing the peer public key",
                        absl::StatusCode::kInvalidArgument);
  }
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, own.get(), nullptr));
  if (ctx == nullptr) return OpenSslError("X25519: creating the derivation context");
  if (EVP_PKEY_derive_init(ctx.get()) != 1) return OpenSslError("X25519: derive init");
  if (EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) != 1) {
    return OpenSslError("X25519: setting the peer public key",
                        absl::StatusCode::kInvalidArgument);
  }
  SecretBytes shared(kX25519KeyBytes);
  size_t shared_len = shared.size();
  // OpenSSL itself fails the derivation when the result is all zero (a small-order peer
  // key); report that as the peer's fault, not ours.
  if (EVP_PKEY_derive(ctx.get(), shared.data(), &shared_len) != 1) {
    return OpenSslError("X25519 agreement (peer public key of small order?)",
                        absl::StatusCode::kInvalidArgument);
  }
  if (shared_len != kX25519KeyBytes) {
    return InternalError(absl::StrCat("X25519 agreement gave ", shared_len, " bytes"));
  }
  // Belt and braces, in constant time: refuse an all-zero secret whatever OpenSSL did.
  uint8_t any = 0;
  for (uint8_t b : shared) any |= b;
  if (any == 0) {
    return InvalidArgumentError(
        "X25519 agreement gave the all-zero secret: the peer public key is of small order");
  }
  return shared;
}

}  // namespace dermfed::crypto
