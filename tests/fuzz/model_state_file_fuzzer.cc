// A model state file (common/model_state_file.h: checkpoints, exports, a site's copy of the
// global model) through LoadModelState. Each input is read as it is and, when it fails only
// on its checksum, again with the trailing SHA-256 recomputed, so the fuzzer also reaches
// what comes after the checksum (the fuzzer cannot forge SHA-256 itself). A state that loads
// must save and load back to the same digest.
#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/digest.h"
#include "common/model_state.h"
#include "common/model_state_file.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

void CheckLoaded(const dermfed::ModelState& state) {
  using namespace dermfed;
  const std::string digest = ModelStateDigest(state);
  const std::string copy = fuzz::ScratchDir() + "/resaved.dfs";
  Status saved = SaveModelState(state, copy);
  FUZZ_CHECK(saved.ok(), "a loaded state does not save: " + saved.ToString());
  auto again = LoadModelState(copy);
  FUZZ_CHECK(again.ok(), "a saved state does not load: " + again.status().ToString());
  FUZZ_CHECK(ModelStateDigest(*again) == digest, "save/load changed the state's digest");
}

}  // namespace

// Protobuf logs every string field with invalid UTF-8 it refuses; a fuzzer makes millions.
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dermfed;
  std::string bytes(reinterpret_cast<const char*>(data), size);
  const std::string path = fuzz::WriteScratchFile("model.dfs", bytes);
  auto state = LoadModelState(path);
  fuzz::Trace("model state file", state.status());
  if (state.ok()) {
    CheckLoaded(*state);
    return 0;
  }
  FUZZ_CHECK(state.status().message().find(path) != std::string::npos,
             "error does not name the file: " + state.status().ToString());
  if (state.status().message().find("checksum mismatch") == std::string::npos) return 0;
  // Re-seal: SHA-256 of everything before the last 32 bytes.
  Sha256 sha;
  sha.Update(bytes.data(), bytes.size() - Sha256::kBytes);
  const auto digest = sha.Final();
  bytes.replace(bytes.size() - Sha256::kBytes, Sha256::kBytes,
                reinterpret_cast<const char*>(digest.data()), digest.size());
  fuzz::WriteScratchFile("model.dfs", bytes);
  state = LoadModelState(path);
  fuzz::Trace("model state file, checksum fixed", state.status());
  if (state.ok()) {
    CheckLoaded(*state);
  } else {
    FUZZ_CHECK(state.status().message().find(path) != std::string::npos,
               "error does not name the file: " + state.status().ToString());
  }
  return 0;
}
