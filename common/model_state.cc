#include "common/model_state.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>
#include <unordered_set>

namespace dermfed {
namespace {

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// numel * element size, or an error if a dim is negative or the product overflows.
StatusOr<uint64_t> CheckedBytes(const TensorSpec& t) {
  const size_t es = ElementSize(t.dtype);
  if (es == 0) {
    return InvalidArgumentError("tensor '" + t.name + "' has invalid dtype " +
                                std::to_string(static_cast<int>(t.dtype)));
  }
  unsigned __int128 bytes = es;
  for (int64_t d : t.shape) {
    if (d < 0) {
      return InvalidArgumentError("tensor '" + t.name + "' has negative dimension in shape " +
                                  ShapeString(t.shape));
    }
    bytes *= static_cast<uint64_t>(d);
    if (bytes > std::numeric_limits<uint64_t>::max() / 2) {
      return InvalidArgumentError("tensor '" + t.name + "' shape " + ShapeString(t.shape) +
                                  " is too large");
    }
  }
  return static_cast<uint64_t>(bytes);
}

}  // namespace

size_t ElementSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat64:
    case DType::kInt64:
      return 8;
    case DType::kFloat32:
    case DType::kInt32:
      return 4;
    case DType::kFloat16:
    case DType::kBFloat16:
      return 2;
    case DType::kInt8:
    case DType::kUInt8:
    case DType::kBool:
      return 1;
  }
  return 0;
}

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kFloat64: return "float64";
    case DType::kFloat16: return "float16";
    case DType::kBFloat16: return "bfloat16";
    case DType::kInt64: return "int64";
    case DType::kInt32: return "int32";
    case DType::kInt8: return "int8";
    case DType::kUInt8: return "uint8";
    case DType::kBool: return "bool";
  }
  return "invalid";
}

bool IsValidDType(int value) { return value >= 1 && value <= 9; }

int64_t TensorSpec::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Status ValidateManifest(const std::vector<TensorSpec>& manifest, uint64_t buffer_bytes) {
  std::unordered_set<std::string_view> names;
  // Offsets must be increasing: our own layout is, and requiring it makes the overlap check
  // linear instead of a sort of untrusted input.
  uint64_t end_of_previous = 0;
  for (size_t i = 0; i < manifest.size(); ++i) {
    const TensorSpec& t = manifest[i];
    const std::string where = "manifest entry " + std::to_string(i) + " '" + t.name + "'";
    if (t.name.empty()) return InvalidArgumentError("manifest entry " + std::to_string(i) + " has an empty name");
    if (!names.insert(t.name).second) return InvalidArgumentError(where + " appears twice");
    DF_ASSIGN_OR_RETURN(uint64_t bytes, CheckedBytes(t));
    if (bytes != t.nbytes) {
      return InvalidArgumentError(where + ": nbytes is " + std::to_string(t.nbytes) + ", but " +
                                  std::string(DTypeName(t.dtype)) + " " + ShapeString(t.shape) +
                                  " needs " + std::to_string(bytes));
    }
    if (t.offset % ElementSize(t.dtype) != 0) {
      return InvalidArgumentError(where + ": offset " + std::to_string(t.offset) +
                                  " is not aligned to its element size");
    }
    if (t.offset < end_of_previous) {
      return InvalidArgumentError(where + ": offset " + std::to_string(t.offset) +
                                  " overlaps the previous tensor (ends at " +
                                  std::to_string(end_of_previous) + ")");
    }
    if (t.offset > buffer_bytes || t.nbytes > buffer_bytes - t.offset) {
      return InvalidArgumentError(where + ": bytes [" + std::to_string(t.offset) + ", +" +
                                  std::to_string(t.nbytes) + ") lie outside the " +
                                  std::to_string(buffer_bytes) + "-byte buffer");
    }
    end_of_previous = t.offset + t.nbytes;
  }
  return OkStatus();
}

void ModelState::FreeDeleter::operator()(uint8_t* p) const { std::free(p); }

std::unique_ptr<uint8_t[], ModelState::FreeDeleter> ModelState::Allocate(uint64_t bytes) {
  // Model-sized buffers are written once, page by page, right after they are made (a download,
  // a file read, a clone, an aggregate). With 4 KiB pages that is one page fault per 4 KiB,
  // which on a virtual machine costs more than the copy itself; so a large buffer is aligned to
  // 2 MiB and asks for transparent huge pages (honoured where THP is "madvise" or "always").
  constexpr uint64_t kHugePage = 2u << 20;
  const bool huge = bytes >= 4 * kHugePage;
  const uint64_t align = huge ? kHugePage : kAlignment;
  void* p = std::aligned_alloc(align, AlignUp(bytes == 0 ? 1 : bytes, align));
  if (p == nullptr) return nullptr;
  if (huge) (void)madvise(p, AlignUp(bytes, align), MADV_HUGEPAGE);
  return std::unique_ptr<uint8_t[], FreeDeleter>(static_cast<uint8_t*>(p));
}

StatusOr<ModelState> ModelState::Create(std::vector<TensorSpec> specs, bool zero_fill) {
  uint64_t offset = 0;
  for (TensorSpec& t : specs) {
    DF_ASSIGN_OR_RETURN(t.nbytes, CheckedBytes(t));
    t.offset = offset;
    offset = AlignUp(offset + t.nbytes, kAlignment);
  }
  const uint64_t total = specs.empty() ? 0 : specs.back().offset + specs.back().nbytes;
  DF_RETURN_IF_ERROR(ValidateManifest(specs, total));
  ModelState state;
  state.buffer_ = Allocate(total);
  if (!state.buffer_) {
    return Status(absl::StatusCode::kResourceExhausted,
                  "cannot allocate " + std::to_string(total) + " bytes for a model state");
  }
  if (zero_fill) std::memset(state.buffer_.get(), 0, total);
  state.manifest_ = std::move(specs);
  state.size_bytes_ = total;
  return state;
}

StatusOr<ModelState> ModelState::FromParts(std::vector<TensorSpec> manifest,
                                           const uint8_t* bytes, uint64_t buffer_bytes) {
  DF_RETURN_IF_ERROR(ValidateManifest(manifest, buffer_bytes));
  ModelState state;
  state.buffer_ = Allocate(buffer_bytes);
  if (!state.buffer_) {
    return Status(absl::StatusCode::kResourceExhausted,
                  "cannot allocate " + std::to_string(buffer_bytes) + " bytes for a model state");
  }
  if (buffer_bytes > 0) std::memcpy(state.buffer_.get(), bytes, buffer_bytes);
  state.manifest_ = std::move(manifest);
  state.size_bytes_ = buffer_bytes;
  return state;
}

ModelState ModelState::Clone() const {
  ModelState copy;
  copy.manifest_ = manifest_;
  copy.size_bytes_ = size_bytes_;
  copy.buffer_ = Allocate(size_bytes_);
  if (size_bytes_ > 0) std::memcpy(copy.buffer_.get(), buffer_.get(), size_bytes_);
  return copy;
}

int ModelState::Find(std::string_view name) const {
  for (size_t i = 0; i < manifest_.size(); ++i) {
    if (manifest_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

bool ModelState::SameLayout(const ModelState& other) const { return CheckSameLayout(other).ok(); }

Status ModelState::CheckSameLayout(const ModelState& other) const {
  return CheckSameLayout(other.manifest_);
}

Status ModelState::CheckSameLayout(const std::vector<TensorSpec>& other) const {
  if (manifest_.size() != other.size()) {
    // Name the tensor where the two lists part: the first missing or the first extra one.
    size_t i = 0;
    while (i < manifest_.size() && i < other.size() && manifest_[i].name == other[i].name) ++i;
    const std::string which = other.size() < manifest_.size()
                                  ? "'" + manifest_[i].name + "' is missing"
                                  : "'" + other[i].name + "' is not in the model";
    return InvalidArgumentError("model state has " + std::to_string(other.size()) +
                                " tensors, expected " + std::to_string(manifest_.size()) + ": " +
                                which);
  }
  for (size_t i = 0; i < manifest_.size(); ++i) {
    const TensorSpec& a = manifest_[i];
    const TensorSpec& b = other[i];
    if (a.name != b.name) {
      return InvalidArgumentError("tensor " + std::to_string(i) + " is '" + b.name +
                                  "', expected '" + a.name + "'");
    }
    if (a.dtype != b.dtype || a.shape != b.shape) {
      return InvalidArgumentError("tensor '" + a.name + "' is " +
                                  std::string(DTypeName(b.dtype)) + " " + ShapeString(b.shape) +
                                  ", expected " + std::string(DTypeName(a.dtype)) + " " +
                                  ShapeString(a.shape));
    }
  }
  return OkStatus();
}

uint64_t ModelState::TotalElements() const {
  uint64_t n = 0;
  for (const auto& t : manifest_) n += static_cast<uint64_t>(t.numel());
  return n;
}

namespace {
template <typename T>
void Sub(uint8_t* a, const uint8_t* b, uint64_t nbytes) {
  // Integers wrap (in their unsigned type) rather than overflow: a model from the wire can
  // hold any value, and signed overflow is undefined behaviour.
  using Arith = typename std::conditional_t<std::is_integral_v<T>, std::make_unsigned<T>,
                                            std::common_type<T>>::type;
  T* x = reinterpret_cast<T*>(a);
  const T* y = reinterpret_cast<const T*>(b);
  const uint64_t n = nbytes / sizeof(T);
  for (uint64_t i = 0; i < n; ++i) {
    x[i] = static_cast<T>(static_cast<Arith>(x[i]) - static_cast<Arith>(y[i]));
  }
}
}  // namespace

Status SubtractInPlace(ModelState* a, const ModelState& b) {
  DF_RETURN_IF_ERROR(a->CheckSameLayout(b));
  for (size_t i = 0; i < a->num_tensors(); ++i) {
    const TensorSpec& t = a->manifest()[i];
    uint8_t* x = a->TensorData(i);
    const uint8_t* y = b.TensorData(i);
    switch (t.dtype) {
      case DType::kFloat32: Sub<float>(x, y, t.nbytes); break;
      case DType::kFloat64: Sub<double>(x, y, t.nbytes); break;
      case DType::kInt64: Sub<int64_t>(x, y, t.nbytes); break;
      case DType::kInt32: Sub<int32_t>(x, y, t.nbytes); break;
      case DType::kInt8: Sub<int8_t>(x, y, t.nbytes); break;
      case DType::kUInt8: Sub<uint8_t>(x, y, t.nbytes); break;
      default:
        return InvalidArgumentError("cannot subtract tensor '" + t.name + "' of dtype " +
                                    std::string(DTypeName(t.dtype)));
    }
  }
  return OkStatus();
}

}  // namespace dermfed
