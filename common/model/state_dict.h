// Named tensors in state-dict order, and the one place that moves them in and out of a
// torch module. Order matches PyTorch's Module.state_dict(): a module's own parameters,
// then its own buffers, then each child in registration order, recursively.
//
// Not thread-safe with respect to the module being read or written.
#ifndef DERMFED_COMMON_MODEL_STATE_DICT_H_
#define DERMFED_COMMON_MODEL_STATE_DICT_H_

#include <torch/nn/module.h>

#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace dermfed::model {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Parameters and buffers of `module`, named and ordered as PyTorch's state_dict() names
// them. Undefined tensors (a conv's absent bias) are left out. The tensors alias the
// module's storage.
NamedTensors StateDictOf(const torch::nn::Module& module);

struct LoadOptions {
  // Keys in `source` under these prefixes are ignored, and the module's keys under these
  // prefixes are not required (e.g. "classifier.6." to drop VGG's ImageNet head).
  std::vector<std::string> ignore_prefixes;
  // BatchNorm checkpoints from before PyTorch 0.4.1 have no num_batches_tracked; PyTorch
  // fills it with 0 when loading them, and so do we.
  bool allow_missing_num_batches_tracked = true;
};

// Copies `source` into `module`'s parameters and buffers, like load_state_dict(strict=True).
// Fails, naming the tensor, on a missing key, an unexpected key, or a shape mismatch; the
// dtype of the module's tensor wins (values are converted). On failure nothing is copied.
Status LoadStateDict(torch::nn::Module& module, const NamedTensors& source,
                     const LoadOptions& options = {});

// State-dict names of every BatchNorm layer's tensors (weight, bias, running statistics and
// counter). FedBN keeps these at the sites.
std::vector<std::string> BatchNormTensorNames(const torch::nn::Module& module);

}  // namespace dermfed::model

#endif  // DERMFED_COMMON_MODEL_STATE_DICT_H_
