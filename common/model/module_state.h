// The one place that turns a torch module into a ModelState and back.
//
// Not thread-safe with respect to the module.
#ifndef DERMFED_COMMON_MODEL_MODULE_STATE_H_
#define DERMFED_COMMON_MODEL_MODULE_STATE_H_

#include <torch/nn/module.h>

#include "common/model/state_dict.h"
#include "common/model_state.h"
#include "common/status.h"

namespace dermfed::model {

// Copies every parameter and buffer of `module` (state-dict order and names) into a new
// ModelState. Tensors on a GPU are copied to host memory.
StatusOr<ModelState> ToModelState(const torch::nn::Module& module);

// Copies `state` into `module`'s parameters and buffers. Missing, unexpected or mis-shaped
// tensors fail with a message naming the tensor, and leave the module unchanged.
Status LoadModelStateInto(const ModelState& state, torch::nn::Module& module);

// CPU tensors that alias `state`'s buffer (no copy); valid while `state` lives.
StatusOr<NamedTensors> ViewTensors(const ModelState& state);

}  // namespace dermfed::model

#endif  // DERMFED_COMMON_MODEL_MODULE_STATE_H_
