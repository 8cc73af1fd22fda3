// Building blocks shared by several torchvision backbones, with torchvision's child names
// so that the state-dict keys they produce match (torchvision.ops.misc and ops.stochastic_depth,
// models/_utils.py).
//
// Not thread-safe (torch modules).
#ifndef DERMFED_COMMON_MODEL_BACKBONES_LAYERS_H_
#define DERMFED_COMMON_MODEL_BACKBONES_LAYERS_H_

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include <cstdint>
#include <utility>

namespace dermfed::model::backbones {

// An nn::Sequential with a plain forward(Tensor), so that it can be stored inside another
// Sequential (nn::Sequential's templated forward() cannot be held by AnyModule).
class SequentialBlockImpl : public torch::nn::SequentialImpl {
 public:
  using SequentialImpl::SequentialImpl;
  torch::Tensor forward(torch::Tensor x) { return SequentialImpl::forward(std::move(x)); }
};
TORCH_MODULE(SequentialBlock);

enum class Activation { kNone, kReLU, kReLU6, kSiLU };

// torchvision.ops.Conv2dNormActivation with a BatchNorm2d: children "0" (Conv2d without bias,
// padding (kernel - 1) / 2), "1" (BatchNorm2d) and, unless kNone, "2" (the activation).
SequentialBlock Conv2dNormActivation(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                                     int64_t stride, int64_t groups, Activation activation);

// torchvision's _make_divisible: rounds `value` to the nearest multiple of `divisor` (at
// least `divisor`), never going below 90% of `value`.
int64_t MakeDivisible(double value, int64_t divisor);

// torchvision.ops.StochasticDepth in "row" mode: in training, zeroes each sample's residual
// branch with probability p and scales the survivors by 1 / (1 - p); identity in eval.
class StochasticDepthImpl : public torch::nn::Module {
 public:
  explicit StochasticDepthImpl(double p);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  double p_;
};
TORCH_MODULE(StochasticDepth);

// Calls fn(impl) for every descendant of `root` (not `root` itself) whose type is Impl, in
// module order: the C++ counterpart of torchvision's `for m in self.modules(): if
// isinstance(m, ...)` initialisation loops.
template <typename Impl, typename Fn>
void ForEachModule(torch::nn::Module& root, Fn&& fn) {
  // include_self=false: modules() with self needs shared_from_this, unavailable while the
  // root is still being constructed.
  for (const auto& m : root.modules(/*include_self=*/false)) {
    if (auto* impl = m->as<Impl>()) fn(*impl);
  }
}

}  // namespace dermfed::model::backbones

#endif  // DERMFED_COMMON_MODEL_BACKBONES_LAYERS_H_
