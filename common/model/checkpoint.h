// Reads PyTorch checkpoint files (torch.save) of a state dict without Python and without
// running pickled code: the zip format (PyTorch >= 1.6: archive/data.pkl + archive/data/<key>)
// and the legacy format (magic number, protocol, sys info, the pickle, storage keys, then the
// raw storages). The pickle is read by a restricted unpickler that accepts only the globals a
// state dict needs (collections.OrderedDict, torch._utils._rebuild_tensor_v2 and
// _rebuild_parameter, torch.*Storage types); any other global is refused, by name.
//
// The top-level object must be a dict or OrderedDict from str to tensor. torchvision's
// published ImageNet weights are exactly that.
//
// Thread-safe (no shared state).
#ifndef DERMFED_COMMON_MODEL_CHECKPOINT_H_
#define DERMFED_COMMON_MODEL_CHECKPOINT_H_

#include <string>

#include "common/model/state_dict.h"
#include "common/status.h"

namespace dermfed::model {

// Reads `path` (either format). Errors name the file and what was wrong with it.
StatusOr<NamedTensors> ReadTorchCheckpoint(const std::string& path);

}  // namespace dermfed::model

#endif  // DERMFED_COMMON_MODEL_CHECKPOINT_H_
