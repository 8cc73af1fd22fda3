#include "common/model/module_state.h"

#include <torch/torch.h>

#include <cstring>

#include "common/model/torch_call.h"

namespace dermfed::model {
namespace {

StatusOr<DType> ToDType(c10::ScalarType t, const std::string& name) {
  switch (t) {
    case torch::kFloat32: return DType::kFloat32;
    case torch::kFloat64: return DType::kFloat64;
    case torch::kFloat16: return DType::kFloat16;
    case torch::kBFloat16: return DType::kBFloat16;
    case torch::kInt64: return DType::kInt64;
    case torch::kInt32: return DType::kInt32;
    case torch::kInt8: return DType::kInt8;
    case torch::kUInt8: return DType::kUInt8;
    case torch::kBool: return DType::kBool;
    default:
      return InvalidArgumentError("tensor '" + name + "' has dtype " +
                                  std::string(c10::toString(t)) +
                                  ", which a model state cannot hold");
  }
}

c10::ScalarType ToScalarType(DType t) {
  switch (t) {
    case DType::kFloat32: return torch::kFloat32;
    case DType::kFloat64: return torch::kFloat64;
    case DType::kFloat16: return torch::kFloat16;
    case DType::kBFloat16: return torch::kBFloat16;
    case DType::kInt64: return torch::kInt64;
    case DType::kInt32: return torch::kInt32;
    case DType::kInt8: return torch::kInt8;
    case DType::kUInt8: return torch::kUInt8;
    case DType::kBool: return torch::kBool;
  }
  return torch::kFloat32;
}

}  // namespace

StatusOr<ModelState> ToModelState(const torch::nn::Module& module) {
  NamedTensors tensors = StateDictOf(module);
  std::vector<TensorSpec> specs;
  specs.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    TensorSpec spec;
    spec.name = name;
    DF_ASSIGN_OR_RETURN(spec.dtype, ToDType(t.scalar_type(), name));
    spec.shape.assign(t.sizes().begin(), t.sizes().end());
    specs.push_back(std::move(spec));
  }
  DF_ASSIGN_OR_RETURN(ModelState state, ModelState::Create(std::move(specs)));
  DF_RETURN_IF_ERROR(TorchCall("copying module into model state", [&] {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < tensors.size(); ++i) {
      torch::Tensor src = tensors[i].second.detach().to(torch::kCPU).contiguous();
      std::memcpy(state.TensorData(i), src.data_ptr(), state.manifest()[i].nbytes);
    }
  }));
  return state;
}

StatusOr<NamedTensors> ViewTensors(const ModelState& state) {
  NamedTensors out;
  out.reserve(state.num_tensors());
  DF_RETURN_IF_ERROR(TorchCall("viewing model state", [&] {
    for (size_t i = 0; i < state.num_tensors(); ++i) {
      const TensorSpec& spec = state.manifest()[i];
      // from_blob wants a mutable pointer; the views are only read by our callers.
      auto* p = const_cast<uint8_t*>(state.TensorData(i));
      out.emplace_back(spec.name,
                       torch::from_blob(p, spec.shape,
                                        torch::TensorOptions().dtype(ToScalarType(spec.dtype))));
    }
  }));
  return out;
}

Status LoadModelStateInto(const ModelState& state, torch::nn::Module& module) {
  DF_ASSIGN_OR_RETURN(NamedTensors views, ViewTensors(state));
  LoadOptions options;
  options.allow_missing_num_batches_tracked = false;  // our own states are always complete
  return LoadStateDict(module, views, options);
}

}  // namespace dermfed::model
