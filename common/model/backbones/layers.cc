#include "common/model/backbones/layers.h"

#include <torch/torch.h>

#include <algorithm>

namespace dermfed::model::backbones {

SequentialBlock Conv2dNormActivation(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                                     int64_t stride, int64_t groups, Activation activation) {
  namespace nn = torch::nn;
  SequentialBlock block;
  block->push_back(nn::Conv2d(nn::Conv2dOptions(in_channels, out_channels, kernel_size)
                                  .stride(stride)
                                  .padding((kernel_size - 1) / 2)
                                  .groups(groups)
                                  .bias(false)));
  block->push_back(nn::BatchNorm2d(out_channels));
  switch (activation) {
    case Activation::kNone:
      break;
    case Activation::kReLU:
      block->push_back(nn::ReLU(nn::ReLUOptions(/*inplace=*/true)));
      break;
    case Activation::kReLU6:
      block->push_back(nn::ReLU6(nn::ReLU6Options(/*inplace=*/true)));
      break;
    case Activation::kSiLU:
      block->push_back(nn::SiLU());
      break;
  }
  return block;
}

int64_t MakeDivisible(double value, int64_t divisor) {
  int64_t rounded =
      std::max<int64_t>(divisor, static_cast<int64_t>(value + divisor / 2.0) / divisor * divisor);
  if (rounded < 0.9 * value) rounded += divisor;
  return rounded;
}

StochasticDepthImpl::StochasticDepthImpl(double p) : p_(p) {}

torch::Tensor StochasticDepthImpl::forward(const torch::Tensor& x) {
  if (!is_training() || p_ == 0.0) return x;
  const double survival = 1.0 - p_;
  std::vector<int64_t> shape(x.dim(), 1);
  shape[0] = x.size(0);
  torch::Tensor noise = torch::empty(shape, x.options()).bernoulli_(survival);
  if (survival > 0.0) noise.div_(survival);
  return x * noise;
}

}  // namespace dermfed::model::backbones
