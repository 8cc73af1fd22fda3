// SHA-256 (OpenSSL EVP), incremental. Names model versions and guards transfers and files.
//
// Not thread-safe: one hasher per thread.
#ifndef DERMFED_COMMON_DIGEST_H_
#define DERMFED_COMMON_DIGEST_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

struct evp_md_ctx_st;

namespace dermfed {

class Sha256 {
 public:
  static constexpr size_t kBytes = 32;
  Sha256();
  ~Sha256();
  void Update(const void* data, size_t n);
  std::array<uint8_t, kBytes> Final();

 private:
  evp_md_ctx_st* ctx_;
};

std::string HexDigest(const uint8_t* digest, size_t n);

}  // namespace dermfed

#endif  // DERMFED_COMMON_DIGEST_H_
