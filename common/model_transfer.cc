#include "common/model_transfer.h"

#include <cstring>

namespace dermfed {

v1::Manifest ManifestToProto(const ModelState& state) {
  v1::Manifest manifest;
  manifest.set_buffer_bytes(state.size_bytes());
  for (const TensorSpec& t : state.manifest()) {
    v1::TensorSpec* p = manifest.add_tensors();
    p->set_name(t.name);
    p->set_dtype(static_cast<v1::DType>(t.dtype));
    for (int64_t d : t.shape) p->add_shape(d);
    p->set_offset(t.offset);
    p->set_nbytes(t.nbytes);
  }
  return manifest;
}

StatusOr<std::vector<TensorSpec>> ManifestFromProto(const v1::Manifest& manifest) {
  std::vector<TensorSpec> specs;
  specs.reserve(manifest.tensors_size());
  for (int i = 0; i < manifest.tensors_size(); ++i) {
    const v1::TensorSpec& p = manifest.tensors(i);
    if (!IsValidDType(p.dtype())) {
      return InvalidArgumentError("tensor '" + p.name() + "' has unknown dtype " +
                                  std::to_string(p.dtype()));
    }
    TensorSpec t;
    t.name = p.name();
    t.dtype = static_cast<DType>(p.dtype());
    t.shape.assign(p.shape().begin(), p.shape().end());
    t.offset = p.offset();
    t.nbytes = p.nbytes();
    specs.push_back(std::move(t));
  }
  DF_RETURN_IF_ERROR(ValidateManifest(specs, manifest.buffer_bytes()));
  return specs;
}

std::array<uint8_t, Sha256::kBytes> BufferDigest(const ModelState& state) {
  Sha256 sha;
  sha.Update(state.data(), state.size_bytes());
  return sha.Final();
}

StatusOr<ChunkAssembler> ChunkAssembler::Start(const v1::Manifest& manifest,
                                               const std::string& sha256, const std::string& what,
                                               const ModelState* expected, uint64_t max_bytes) {
  if (sha256.size() != Sha256::kBytes) {
    return InvalidArgumentError(what + ": header has no valid SHA-256 digest");
  }
  // Validated and compared with the expected layout before anything is allocated, so that a
  // wrong dtype, shape, name or tensor count is refused naming the tensor, not as a size.
  auto specs = ManifestFromProto(manifest);
  if (!specs.ok()) return Annotate(specs.status(), what);
  if (expected != nullptr) {
    Status s = expected->CheckSameLayout(*specs);
    if (!s.ok()) return Annotate(s, what);
  }
  if (manifest.buffer_bytes() > max_bytes) {
    return InvalidArgumentError(what + ": " + std::to_string(manifest.buffer_bytes()) +
                                " bytes exceeds the limit of " + std::to_string(max_bytes));
  }
  // Lay the state out ourselves and require the sender's offsets to match: the buffer we
  // fill is then exactly what the manifest describes.
  std::vector<TensorSpec> layout = *specs;
  // Every byte, padding included, arrives in the chunks and Finish() checks they all did,
  // so zeroing the buffer first would only cost a pass over it.
  DF_ASSIGN_OR_RETURN(ModelState state, ModelState::Create(layout, /*zero_fill=*/false));
  for (size_t i = 0; i < specs->size(); ++i) {
    if ((*specs)[i].offset != state.manifest()[i].offset) {
      return InvalidArgumentError(what + ": tensor '" + (*specs)[i].name + "' is at offset " +
                                  std::to_string((*specs)[i].offset) + ", expected " +
                                  std::to_string(state.manifest()[i].offset));
    }
  }
  if (state.size_bytes() != manifest.buffer_bytes()) {
    return InvalidArgumentError(what + ": buffer_bytes " + std::to_string(manifest.buffer_bytes()) +
                                " does not match its tensors (" + std::to_string(state.size_bytes()) +
                                ")");
  }
  return ChunkAssembler(std::move(state), sha256, what);
}

Status ChunkAssembler::Add(uint64_t offset, const std::string& data) {
  if (offset != received_) {
    return InvalidArgumentError(what_ + ": chunk at byte " + std::to_string(offset) +
                                ", expected byte " + std::to_string(received_));
  }
  if (data.size() > total() - received_) {
    return InvalidArgumentError(what_ + ": chunk of " + std::to_string(data.size()) +
                                " bytes at " + std::to_string(offset) + " overruns the " +
                                std::to_string(total()) + "-byte model");
  }
  std::memcpy(state_.data() + received_, data.data(), data.size());
  received_ += data.size();
  return OkStatus();
}

StatusOr<ModelState> ChunkAssembler::Finish() {
  if (received_ != total()) {
    return DataLossError(what_ + ": stream ended after " + std::to_string(received_) + " of " +
                         std::to_string(total()) + " bytes");
  }
  const auto digest = BufferDigest(state_);
  if (std::memcmp(digest.data(), sha256_.data(), digest.size()) != 0) {
    return DataLossError(what_ + ": SHA-256 mismatch (corrupted in transit)");
  }
  return std::move(state_);
}

}  // namespace dermfed
