// Byte-string types shared by the crypto library. SecretBytes holds key material: a
// std::vector whose allocator wipes (OPENSSL_cleanse) every buffer it gives back, so a
// key leaves nothing behind on destruction, reallocation or move-assignment. ByteSpan is
// the read-only view every function takes, so callers can pass a std::vector, a
// SecretBytes, a std::array or (through AsBytes) a protobuf `bytes` field.
//
// Thread-safe: these are values.
#ifndef DERMFED_COMMON_CRYPTO_SECRET_H_
#define DERMFED_COMMON_CRYPTO_SECRET_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace dermfed::crypto {

// Overwrites n bytes at p in a way the compiler may not elide.
void Cleanse(void* p, size_t n);

// A std::allocator that wipes memory before giving it back.
template <typename T>
struct CleansingAllocator {
  using value_type = T;
  CleansingAllocator() noexcept = default;
  template <typename U>
  CleansingAllocator(const CleansingAllocator<U>&) noexcept {}
  T* allocate(size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, size_t n) noexcept {
    Cleanse(p, n * sizeof(T));
    std::allocator<T>().deallocate(p, n);
  }
};
template <typename T, typename U>
bool operator==(const CleansingAllocator<T>&, const CleansingAllocator<U>&) noexcept {
  return true;
}
template <typename T, typename U>
bool operator!=(const CleansingAllocator<T>&, const CleansingAllocator<U>&) noexcept {
  return false;
}

using SecretBytes = std::vector<uint8_t, CleansingAllocator<uint8_t>>;
using ByteSpan = absl::Span<const uint8_t>;

inline ByteSpan AsBytes(absl::string_view s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

}  // namespace dermfed::crypto

#endif  // DERMFED_COMMON_CRYPTO_SECRET_H_
