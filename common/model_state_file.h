// ModelState on disk: checkpoints, exports, site-local copies of the global model.
//
// Layout (little-endian):
//   "DFMSTATE"            8 bytes magic
//   uint32 version (1), uint32 reserved (0)
//   uint64 manifest_len   then manifest_len bytes: a dermfed.v1.Manifest protobuf
//   zero padding to a multiple of 64 bytes from the file start
//   buffer_bytes bytes    the ModelState buffer (Manifest.buffer_bytes)
//   32 bytes              SHA-256 of everything before it
//
// Writes are atomic: a temp file in the same directory, fsync, rename, fsync of the
// directory; a crash leaves either the old file or the new one, never half of one.
//
// Thread-safe (no shared state).
#ifndef DERMFED_COMMON_MODEL_STATE_FILE_H_
#define DERMFED_COMMON_MODEL_STATE_FILE_H_

#include <array>
#include <cstdint>
#include <string>

#include "common/model_state.h"
#include "common/status.h"

namespace dermfed {

// Hex SHA-256 of the state's manifest and buffer, as written in its file; it names a model
// version in logs and on the dashboard.
std::string ModelStateDigest(const ModelState& state);

Status SaveModelState(const ModelState& state, const std::string& path);

// Reads and verifies `path`. A wrong magic, unknown version, truncation, a manifest that
// fails ValidateManifest, or a checksum mismatch is an error naming the file.
StatusOr<ModelState> LoadModelState(const std::string& path);

}  // namespace dermfed

#endif  // DERMFED_COMMON_MODEL_STATE_FILE_H_
