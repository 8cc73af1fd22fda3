// A torch.save file (model.init_checkpoint: torchvision's published ImageNet weights, or any
// file an operator downloads) through ReadTorchCheckpoint (common/model/checkpoint.h): the
// zip format (LibTorch's PyTorchStreamReader, then our unpickler) and the legacy format (our
// own reader). A file that reads must give tensors whose bytes are all there.
#include <ATen/ATen.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/model/checkpoint.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dermfed;
  const std::string path = fuzz::WriteScratchFile("checkpoint.pt", fuzz::AsView(data, size));
  auto tensors = model::ReadTorchCheckpoint(path);
  fuzz::Trace("checkpoint", tensors.status());
  if (!tensors.ok()) {
    FUZZ_CHECK(tensors.status().message().find(path) != std::string::npos,
               "error does not name the file: " + tensors.status().ToString());
    return 0;
  }
  for (const auto& [name, tensor] : *tensors) {
    FUZZ_CHECK(!name.empty(), "a tensor without a name");
    // Touch every element: a tensor must not reach outside the bytes it was given.
    if (tensor.numel() > 0 && tensor.numel() < (1 << 20)) tensor.contiguous().sum();
  }
  return 0;
}
