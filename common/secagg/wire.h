// Internal to common/secagg: the little-endian, length-prefixed encoding every secagg message
// and the sealed share plaintext use. The reader treats its input as hostile: every length
// and count is checked against its maximum and against the bytes that remain before anything
// is read or allocated, and each error names the message, the field and the offset.
//
// Thread-safe: values; a WireReader is used by one thread.
#ifndef DERMFED_COMMON_SECAGG_WIRE_H_
#define DERMFED_COMMON_SECAGG_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "common/crypto/secret.h"
#include "common/status.h"

namespace dermfed::secagg::internal {

inline constexpr uint8_t kWireVersion = 1;

class WireWriter {
 public:
  WireWriter() = default;
  // Starts a message with its header: kind, then kWireVersion.
  explicit WireWriter(uint8_t kind);

  void U32(uint32_t v);
  void Raw(crypto::ByteSpan bytes);  // fixed-size field: no length prefix
  void String(absl::string_view s);  // u32 length, then the bytes
  void Count(size_t n) { U32(static_cast<uint32_t>(n)); }

  std::string& bytes() { return out_; }

 private:
  std::string out_;
};

class WireReader {
 public:
  // `what` names the message in errors ("secagg Advertisement").
  WireReader(absl::string_view in, absl::string_view what) : in_(in), what_(what) {}

  // The header written by WireWriter(kind).
  Status Header(uint8_t kind);
  Status U32(absl::string_view field, uint32_t* v);
  // Exactly out_len bytes.
  Status Raw(absl::string_view field, uint8_t* out, size_t out_len);
  // A length-prefixed string of min_len..max_len bytes.
  Status String(absl::string_view field, size_t min_len, size_t max_len, std::string* out);
  // A list count <= max_count whose elements, at min_element_bytes each, fit what remains.
  Status Count(absl::string_view field, size_t max_count, size_t min_element_bytes, size_t* count);
  // OK when every byte has been read.
  Status Done() const;

 private:
  Status Error(absl::string_view field, absl::string_view problem) const;

  absl::string_view in_;
  size_t pos_ = 0;
  std::string what_;
};

}  // namespace dermfed::secagg::internal

#endif  // DERMFED_COMMON_SECAGG_WIRE_H_
