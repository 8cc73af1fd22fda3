#include "tests/fuzz/fuzz_model.h"

#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

namespace dermfed::fuzz {

const ModelState& FuzzGlobalModel() {
  static const ModelState* const global = [] {
    std::vector<TensorSpec> specs = {
        {"backbone.conv.weight", DType::kFloat32, {4, 3, 3, 3}},
        {"backbone.bn.running_mean", DType::kFloat32, {4}},
        {"backbone.bn.num_batches_tracked", DType::kInt64, {}},
        {"head.fc.weight", DType::kFloat32, {6, 4}},
        {"head.fc.bias", DType::kFloat16, {6}},
    };
    auto state = ModelState::Create(specs);
    if (!state.ok()) {
      std::fprintf(stderr, "FuzzGlobalModel: %s\n", state.status().ToString().c_str());
      std::abort();
    }
    for (uint64_t i = 0; i < state->size_bytes(); ++i)
      state->data()[i] = static_cast<uint8_t>(i % 7);
    return new ModelState(std::move(state).value());
  }();
  return *global;
}

}  // namespace dermfed::fuzz
