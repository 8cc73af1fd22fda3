// The one chunking path: a ModelState crosses the wire (and into files) as its protobuf
// manifest plus raw buffer bytes in chunks of kChunkBytes, with a SHA-256 of the buffer.
// ChunkAssembler rebuilds a ModelState from untrusted chunks: the manifest is validated
// (and, for updates, must match the expected layout) before anything is allocated, chunks
// must arrive in order without gaps or overruns, and the digest must match at the end, so a
// half-received or corrupted model is never used.
//
// Thread-compatible.
#ifndef DERMFED_COMMON_MODEL_TRANSFER_H_
#define DERMFED_COMMON_MODEL_TRANSFER_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/model_state.h"
#include "common/status.h"
#include "dermfed/v1/model_state.pb.h"

namespace dermfed {

// 2 MiB: well under gRPC's 4 MiB default message limit, large enough to amortize framing.
inline constexpr size_t kChunkBytes = 2u << 20;

v1::Manifest ManifestToProto(const ModelState& state);
// Converts and validates (ValidateManifest against manifest.buffer_bytes()).
StatusOr<std::vector<TensorSpec>> ManifestFromProto(const v1::Manifest& manifest);

std::array<uint8_t, Sha256::kBytes> BufferDigest(const ModelState& state);

class ChunkAssembler {
 public:
  // `what` names the transfer in errors ("update from site-2 for round 3"). When `expected`
  // is given, the manifest must have its exact layout. `max_bytes` bounds the buffer.
  static StatusOr<ChunkAssembler> Start(const v1::Manifest& manifest, const std::string& sha256,
                                        const std::string& what, const ModelState* expected,
                                        uint64_t max_bytes);
  // For resumed downloads: start from a partially filled state at `offset`.
  Status Add(uint64_t offset, const std::string& data);
  uint64_t received() const { return received_; }
  uint64_t total() const { return state_.size_bytes(); }
  // REQUIRES: every byte received. Checks the digest and hands over the state.
  StatusOr<ModelState> Finish();

 private:
  ChunkAssembler(ModelState state, std::string sha256, std::string what)
      : state_(std::move(state)), sha256_(std::move(sha256)), what_(std::move(what)) {}
  ModelState state_;
  std::string sha256_;
  std::string what_;
  uint64_t received_ = 0;
};

}  // namespace dermfed

#endif  // DERMFED_COMMON_MODEL_TRANSFER_H_
