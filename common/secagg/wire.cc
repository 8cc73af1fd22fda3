#include "common/secagg/wire.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace dermfed::secagg::internal {

WireWriter::WireWriter(uint8_t kind) {
  out_.push_back(static_cast<char>(kind));
  out_.push_back(static_cast<char>(kWireVersion));
}

void WireWriter::U32(uint32_t v) {
  for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
}

void WireWriter::Raw(crypto::ByteSpan bytes) {
  out_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

void WireWriter::String(absl::string_view s) {
  U32(static_cast<uint32_t>(s.size()));
  out_.append(s.data(), s.size());
}

Status WireReader::Error(absl::string_view field, absl::string_view problem) const {
  return InvalidArgumentError(
      absl::StrCat(what_, ": ", field, " at byte ", pos_, " of ", in_.size(), ": ", problem));
}

Status WireReader::Header(uint8_t kind) {
  if (in_.size() - pos_ < 2) return Error("header", "truncated (2 bytes needed)");
  const uint8_t got_kind = static_cast<uint8_t>(in_[pos_]);
  const uint8_t got_version = static_cast<uint8_t>(in_[pos_ + 1]);
  if (got_kind != kind) {
    return Error("header", absl::StrCat("message kind ", int{got_kind}, ", expected ", int{kind}));
  }
  if (got_version != kWireVersion) {
    return Error("header",
                 absl::StrCat("wire version ", int{got_version}, ", expected ", int{kWireVersion}));
  }
  pos_ += 2;
  return OkStatus();
}

Status WireReader::U32(absl::string_view field, uint32_t* v) {
  if (in_.size() - pos_ < 4) {
    return Error(field, absl::StrCat("truncated (4 bytes needed, ", in_.size() - pos_, " left)"));
  }
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) {
    value |= uint32_t{static_cast<uint8_t>(in_[pos_ + i])} << (8 * i);
  }
  pos_ += 4;
  *v = value;
  return OkStatus();
}

Status WireReader::Raw(absl::string_view field, uint8_t* out, size_t out_len) {
  if (in_.size() - pos_ < out_len) {
    return Error(field, absl::StrCat("truncated (", out_len, " bytes needed, ", in_.size() - pos_,
                                     " left)"));
  }
  std::copy(in_.data() + pos_, in_.data() + pos_ + out_len, out);
  pos_ += out_len;
  return OkStatus();
}

Status WireReader::String(absl::string_view field, size_t min_len, size_t max_len,
                          std::string* out) {
  uint32_t len = 0;
  DF_RETURN_IF_ERROR(U32(field, &len));
  if (len < min_len || len > max_len) {
    pos_ -= 4;
    return Error(field, absl::StrCat("length ", len, " is outside [", min_len, ", ", max_len, "]"));
  }
  if (in_.size() - pos_ < len) {
    pos_ -= 4;
    return Error(field, absl::StrCat("length ", len, " runs past the end (", in_.size() - pos_ - 4,
                                     " bytes left)"));
  }
  out->assign(in_.data() + pos_, len);
  pos_ += len;
  return OkStatus();
}

Status WireReader::Count(absl::string_view field, size_t max_count, size_t min_element_bytes,
                         size_t* count) {
  uint32_t n = 0;
  DF_RETURN_IF_ERROR(U32(field, &n));
  if (n > max_count) {
    pos_ -= 4;
    return Error(field, absl::StrCat("count ", n, " exceeds the maximum ", max_count));
  }
  if (min_element_bytes > 0 && n > (in_.size() - pos_) / min_element_bytes) {
    pos_ -= 4;
    return Error(field, absl::StrCat("count ", n, " of at least ", min_element_bytes,
                                     " bytes each runs past the end (", in_.size() - pos_ - 4,
                                     " bytes left)"));
  }
  *count = n;
  return OkStatus();
}

Status WireReader::Done() const {
  if (pos_ != in_.size()) {
    return Error("end", absl::StrCat(in_.size() - pos_, " trailing bytes"));
  }
  return OkStatus();
}

}  // namespace dermfed::secagg::internal
