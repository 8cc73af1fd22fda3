// ModelState: a model's tensors as one contiguous, 64-byte-aligned buffer plus an ordered
// manifest of (name, dtype, shape, offset, nbytes). It is the unit the federation ships,
// aggregates, checkpoints and exports, and it needs no LibTorch: the coordinator folds
// updates straight on these buffers.
//
// Thread-compatible: const methods may be called concurrently; mutation needs exclusion.
#ifndef DERMFED_COMMON_MODEL_STATE_H_
#define DERMFED_COMMON_MODEL_STATE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace dermfed {

enum class DType : uint8_t {
  kFloat32 = 1,
  kFloat64 = 2,
  kFloat16 = 3,
  kBFloat16 = 4,
  kInt64 = 5,
  kInt32 = 6,
  kInt8 = 7,
  kUInt8 = 8,
  kBool = 9,
};

// Bytes per element; 0 for a value outside the enum.
size_t ElementSize(DType dtype);
// "float32", "int64", ...; "invalid" for a value outside the enum.
std::string_view DTypeName(DType dtype);
bool IsValidDType(int value);

struct TensorSpec {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  uint64_t offset = 0;  // bytes from the start of the buffer
  uint64_t nbytes = 0;  // numel * ElementSize(dtype)

  // Product of shape (1 for a scalar).
  int64_t numel() const;
};

// Checks a manifest against a buffer of `buffer_bytes`: names non-empty and unique, dtypes
// valid, dims non-negative, nbytes == numel * element size without overflow, every tensor
// inside the buffer and aligned to its element size, no two tensors overlapping. Errors
// name the offending tensor. Untrusted manifests (files, network) go through this.
Status ValidateManifest(const std::vector<TensorSpec>& manifest, uint64_t buffer_bytes);

class ModelState {
 public:
  static constexpr size_t kAlignment = 64;

  ModelState() = default;
  ModelState(ModelState&&) noexcept = default;
  ModelState& operator=(ModelState&&) noexcept = default;
  ModelState(const ModelState&) = delete;  // buffers can be > 500 MB: copy with Clone()
  ModelState& operator=(const ModelState&) = delete;

  // Lays out `specs` (offset and nbytes are computed; shape and dtype are taken) with each
  // tensor aligned to kAlignment, and allocates a buffer, zeroed unless the caller is about
  // to overwrite every byte (`zero_fill` false: a download being reassembled).
  static StatusOr<ModelState> Create(std::vector<TensorSpec> specs, bool zero_fill = true);

  // Adopts a manifest and a buffer of `buffer_bytes` bytes (as read from a file or the
  // wire) after ValidateManifest. The bytes are copied into an aligned buffer.
  static StatusOr<ModelState> FromParts(std::vector<TensorSpec> manifest, const uint8_t* bytes,
                                        uint64_t buffer_bytes);

  ModelState Clone() const;

  const std::vector<TensorSpec>& manifest() const { return manifest_; }
  size_t num_tensors() const { return manifest_.size(); }
  uint8_t* data() { return buffer_.get(); }
  const uint8_t* data() const { return buffer_.get(); }
  uint64_t size_bytes() const { return size_bytes_; }

  // Index of the tensor called `name`, or -1.
  int Find(std::string_view name) const;
  uint8_t* TensorData(size_t index) { return data() + manifest_[index].offset; }
  const uint8_t* TensorData(size_t index) const { return data() + manifest_[index].offset; }

  // True when both have the same names, dtypes and shapes in the same order.
  bool SameLayout(const ModelState& other) const;
  // OK when SameLayout, else an error naming the first differing tensor.
  Status CheckSameLayout(const ModelState& other) const;
  // The same check against a manifest alone (an untrusted one, before any buffer exists).
  Status CheckSameLayout(const std::vector<TensorSpec>& other) const;

  // Total number of elements over all tensors.
  uint64_t TotalElements() const;

 private:
  struct FreeDeleter {
    void operator()(uint8_t* p) const;
  };
  static std::unique_ptr<uint8_t[], FreeDeleter> Allocate(uint64_t bytes);

  std::vector<TensorSpec> manifest_;
  std::unique_ptr<uint8_t[], FreeDeleter> buffer_;
  uint64_t size_bytes_ = 0;
};

// a <- a - b, tensor by tensor (Δ = local − global). REQUIRES same layout (checked). Float
// and integer dtypes are supported except float16/bfloat16 (an error naming the tensor).
Status SubtractInPlace(ModelState* a, const ModelState& b);

}  // namespace dermfed

#endif  // DERMFED_COMMON_MODEL_STATE_H_
