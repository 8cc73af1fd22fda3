#include "common/model/state_dict.h"

#include <torch/torch.h>

#include <map>
#include <sstream>
#include <unordered_map>

#include "common/model/torch_call.h"

namespace dermfed::model {
namespace {

void Collect(const torch::nn::Module& module, const std::string& prefix, NamedTensors& out) {
  for (const auto& p : module.named_parameters(/*recurse=*/false)) {
    if (p.value().defined()) out.emplace_back(prefix + p.key(), p.value());
  }
  for (const auto& b : module.named_buffers(/*recurse=*/false)) {
    if (b.value().defined()) out.emplace_back(prefix + b.key(), b.value());
  }
  for (const auto& child : module.named_children()) {
    Collect(*child.value(), prefix + child.key() + ".", out);
  }
}

bool HasAnyPrefix(const std::string& key, const std::vector<std::string>& prefixes) {
  for (const auto& p : prefixes) {
    if (key.compare(0, p.size(), p) == 0) return true;
  }
  return false;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string ShapeString(c10::IntArrayRef sizes) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < sizes.size(); ++i) os << (i ? ", " : "") << sizes[i];
  os << "]";
  return os.str();
}

}  // namespace

NamedTensors StateDictOf(const torch::nn::Module& module) {
  NamedTensors out;
  Collect(module, "", out);
  return out;
}

Status LoadStateDict(torch::nn::Module& module, const NamedTensors& source,
                     const LoadOptions& options) {
  NamedTensors target = StateDictOf(module);
  std::unordered_map<std::string, const torch::Tensor*> by_name;
  for (const auto& [name, tensor] : source) {
    if (HasAnyPrefix(name, options.ignore_prefixes)) continue;
    if (!by_name.emplace(name, &tensor).second) {
      return InvalidArgumentError("state dict has tensor '" + name + "' twice");
    }
  }
  // Check everything first, so that a failed load leaves the module untouched.
  std::vector<std::pair<torch::Tensor, const torch::Tensor*>> copies;
  std::vector<torch::Tensor> zero_fill;
  for (const auto& [name, dst] : target) {
    if (HasAnyPrefix(name, options.ignore_prefixes)) continue;
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      if (options.allow_missing_num_batches_tracked && EndsWith(name, "num_batches_tracked")) {
        zero_fill.push_back(dst);
        continue;
      }
      return InvalidArgumentError("state dict is missing tensor '" + name + "' (shape " +
                                  ShapeString(dst.sizes()) + ")");
    }
    const torch::Tensor& src = *it->second;
    if (!src.defined()) {
      return InvalidArgumentError("state dict tensor '" + name + "' is undefined");
    }
    if (src.sizes() != dst.sizes()) {
      return InvalidArgumentError("state dict tensor '" + name + "' has shape " +
                                  ShapeString(src.sizes()) + ", the model expects " +
                                  ShapeString(dst.sizes()));
    }
    copies.emplace_back(dst, it->second);
    by_name.erase(it);
  }
  if (!by_name.empty()) {
    // Report the first unexpected key in source order, so the message is deterministic.
    for (const auto& [name, tensor] : source) {
      if (by_name.count(name)) {
        return InvalidArgumentError("state dict has unexpected tensor '" + name + "' (" +
                                    std::to_string(by_name.size()) +
                                    " unexpected in all); the model has no such tensor");
      }
    }
  }
  return TorchCall("loading state dict", [&] {
    torch::NoGradGuard no_grad;
    for (auto& [dst, src] : copies) dst.copy_(*src);
    for (auto& dst : zero_fill) dst.zero_();
  });
}

std::vector<std::string> BatchNormTensorNames(const torch::nn::Module& module) {
  std::vector<std::string> names;
  for (const auto& item : module.named_modules()) {
    const torch::nn::Module& m = *item.value();
    const bool bn = dynamic_cast<const torch::nn::BatchNorm1dImpl*>(&m) ||
                    dynamic_cast<const torch::nn::BatchNorm2dImpl*>(&m) ||
                    dynamic_cast<const torch::nn::BatchNorm3dImpl*>(&m);
    if (!bn) continue;
    const std::string prefix = item.key().empty() ? "" : item.key() + ".";
    for (const auto& p : m.named_parameters(false)) names.push_back(prefix + p.key());
    for (const auto& b : m.named_buffers(false)) names.push_back(prefix + b.key());
  }
  return names;
}

}  // namespace dermfed::model
