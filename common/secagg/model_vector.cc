#include "common/secagg/model_vector.h"

#include <algorithm>
#include <cstring>

#include "common/crypto/fixed_point.h"

namespace dermfed::secagg {

VectorLayout LayoutFor(const ModelState& model, const std::set<std::string>& local_tensors) {
  VectorLayout layout;
  for (size_t i = 0; i < model.num_tensors(); ++i) {
    const TensorSpec& t = model.manifest()[i];
    if (t.dtype != DType::kFloat32 || local_tensors.count(t.name)) continue;
    layout.tensors.push_back(i);
    layout.words += static_cast<size_t>(t.numel());
  }
  layout.words += 1;
  return layout;
}

StatusOr<ModelState> NewMaskedState(size_t words) {
  TensorSpec spec;
  spec.name = kMaskedTensorName;
  spec.dtype = DType::kInt32;
  spec.shape = {static_cast<int64_t>(words)};
  return ModelState::Create({spec});
}

Status CheckMaskedLayout(const ModelState& masked, size_t words, const std::string& what) {
  if (masked.num_tensors() != 1 || masked.manifest()[0].name != kMaskedTensorName ||
      masked.manifest()[0].dtype != DType::kInt32 ||
      masked.manifest()[0].numel() != static_cast<int64_t>(words)) {
    return InvalidArgumentError(what + ": a masked update must be one int32 tensor '" +
                                std::string(kMaskedTensorName) + "' of " + std::to_string(words) +
                                " elements");
  }
  return OkStatus();
}

Status EncodeWeighted(const ModelState& delta, const VectorLayout& layout, int64_t num_examples,
                      const QuantParams& params, uint32_t* out) {
  if (num_examples <= 0) return InvalidArgumentError("secure aggregation: no training examples");
  const int64_t w = std::min(num_examples, params.max_weight);
  const float bound = params.clip * static_cast<float>(w);
  constexpr size_t kBlock = 1 << 14;
  std::vector<float> scaled(kBlock);
  size_t at = 0;
  for (size_t index : layout.tensors) {
    if (index >= delta.num_tensors() || delta.manifest()[index].dtype != DType::kFloat32) {
      return InvalidArgumentError("secure aggregation: the update does not have the model's layout");
    }
    const float* x = reinterpret_cast<const float*>(delta.TensorData(index));
    const size_t n = static_cast<size_t>(delta.manifest()[index].numel());
    for (size_t i = 0; i < n; i += kBlock) {
      const size_t m = std::min(kBlock, n - i);
      for (size_t j = 0; j < m; ++j) {
        scaled[j] = std::clamp(x[i + j], -params.clip, params.clip) * static_cast<float>(w);
      }
      DF_RETURN_IF_ERROR(crypto::Quantize(scaled.data(), m, bound, params.scale, out + at));
      at += m;
    }
  }
  if (at + 1 != layout.words) {
    return InvalidArgumentError("secure aggregation: the update does not have the model's layout");
  }
  out[at] = static_cast<uint32_t>(w);
  return OkStatus();
}

StatusOr<ModelState> DecodeMean(const std::vector<uint32_t>& sum, const ModelState& global,
                                const VectorLayout& layout, const QuantParams& params,
                                int64_t* total_weight) {
  if (sum.size() != layout.words) {
    return InternalError("secure aggregation: the sum has " + std::to_string(sum.size()) +
                         " words, the layout " + std::to_string(layout.words));
  }
  const int64_t weight = static_cast<int64_t>(sum.back());
  if (weight <= 0) return FailedPreconditionError("secure aggregation: the summed weight is 0");
  if (total_weight) *total_weight = weight;
  DF_ASSIGN_OR_RETURN(ModelState mean, ModelState::Create(global.manifest()));
  size_t at = 0;
  for (size_t index : layout.tensors) {
    float* out = reinterpret_cast<float*>(mean.data() + mean.manifest()[index].offset);
    const size_t n = static_cast<size_t>(mean.manifest()[index].numel());
    DF_RETURN_IF_ERROR(crypto::Dequantize(sum.data() + at, n, params.scale, out));
    const float inv = 1.0f / static_cast<float>(weight);
    for (size_t j = 0; j < n; ++j) out[j] *= inv;
    at += n;
  }
  return mean;
}

}  // namespace dermfed::secagg
