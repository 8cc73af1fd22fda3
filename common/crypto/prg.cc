#include "common/crypto/prg.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>

#include "absl/strings/str_cat.h"
#include "common/crypto/openssl_util.h"

namespace dermfed::crypto {
namespace {

using internal::EvpCipherCtxPtr;
using internal::OpenSslError;

constexpr size_t kBlockWords = 16384;  // 64 KiB of keystream at a time
constexpr size_t kBlockBytes = kBlockWords * sizeof(uint32_t);
constexpr size_t kIvBytes = 16;

inline uint32_t LoadLittleEndian32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

}  // namespace

Status AddMask(absl::Span<uint32_t> v, ByteSpan key, absl::string_view context,
               MaskSign sign) {
  if (key.size() != kMaskKeyBytes) {
    return InvalidArgumentError(absl::StrCat("mask key has ", key.size(), " bytes, expected ",
                                             kMaskKeyBytes));
  }
  if (context.empty()) {
    return InvalidArgumentError("mask context is empty; it must bind the mask to its round");
  }
  std::array<uint8_t, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_len = 0;
  if (EVP_Digest(context.data(), context.size(), digest.data(), &digest_len, EVP_sha256(),
                 nullptr) != 1) {
    return OpenSslError("mask: hashing the context");
  }
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return OpenSslError("mask: creating the AES-256-CTR context");
  static_assert(kIvBytes <= 32, "IV comes from a SHA-256 digest");
  if (EVP_EncryptInit_ex2(ctx.get(), EVP_aes_256_ctr(), key.data(), digest.data(), nullptr) !=
      1) {
    return OpenSslError("mask: AES-256-CTR init");
  }

  // The keystream is AES-CTR applied to zeros. Encrypting from a constant zero block into a
  // scratch buffer keeps the working set at 128 KiB however long v is.
  static const uint8_t kZeros[kBlockBytes] = {};
  SecretBytes stream(kBlockBytes);  // keystream is mask material: wiped when done
  const bool add = sign == MaskSign::kAdd;
  for (size_t start = 0; start < v.size(); start += kBlockWords) {
    const size_t words = std::min(kBlockWords, v.size() - start);
    int len = 0;
    if (EVP_EncryptUpdate(ctx.get(), stream.data(), &len, kZeros,
                          static_cast<int>(words * sizeof(uint32_t))) != 1 ||
        static_cast<size_t>(len) != words * sizeof(uint32_t)) {
      return OpenSslError("mask: AES-256-CTR keystream");
    }
    uint32_t* out = v.data() + start;
    const uint8_t* s = stream.data();
    if (add) {
      for (size_t i = 0; i < words; ++i) out[i] += LoadLittleEndian32(s + 4 * i);
    } else {
      for (size_t i = 0; i < words; ++i) out[i] -= LoadLittleEndian32(s + 4 * i);
    }
  }
  return OkStatus();
}

StatusOr<std::vector<uint32_t>> ExpandMask(ByteSpan key, absl::string_view context,
                                           size_t count) {
  std::vector<uint32_t> mask(count, 0);
  DF_RETURN_IF_ERROR(AddMask(absl::MakeSpan(mask), key, context, MaskSign::kAdd));
  return mask;
}

}  // namespace dermfed::crypto
