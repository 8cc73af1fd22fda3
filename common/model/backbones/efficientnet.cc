// EfficientNet-B0 (torchvision.models.efficientnet_b0: width and depth multipliers 1.0,
// dropout 0.2, stochastic depth 0.2, BatchNorm with PyTorch's default eps and momentum).
#include <torch/torch.h>

#include <cmath>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "common/model/backbones/backbones.h"
#include "common/model/backbones/layers.h"

namespace dermfed::model::backbones {
namespace {

namespace nn = torch::nn;

// One row of Table 1 of the EfficientNet paper, as torchvision's MBConvConfig.
struct StageConfig {
  double expand_ratio;
  int64_t kernel;
  int64_t stride;
  int64_t in_channels;
  int64_t out_channels;
  int64_t num_layers;
};
constexpr StageConfig kStages[] = {
    {1, 3, 1, 32, 16, 1},  {6, 3, 2, 16, 24, 2},   {6, 5, 2, 24, 40, 2},  {6, 3, 2, 40, 80, 3},
    {6, 5, 1, 80, 112, 3}, {6, 5, 2, 112, 192, 4}, {6, 3, 1, 192, 320, 1}};
constexpr double kStochasticDepthProb = 0.2;
constexpr double kDropout = 0.2;
constexpr int64_t kLastChannels = 4 * 320;

// torchvision.ops.SqueezeExcitation with SiLU: channel weights from a pooled 1x1-conv
// bottleneck. Children avgpool, fc1, fc2, activation, scale_activation.
class SqueezeExcitationImpl : public nn::Module {
 public:
  SqueezeExcitationImpl(int64_t channels, int64_t squeeze_channels)
      : avgpool_(register_module("avgpool",
                                 nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({1, 1})))),
        fc1_(register_module("fc1", nn::Conv2d(nn::Conv2dOptions(channels, squeeze_channels, 1)))),
        fc2_(register_module("fc2", nn::Conv2d(nn::Conv2dOptions(squeeze_channels, channels, 1)))),
        activation_(register_module("activation", nn::SiLU())),
        scale_activation_(register_module("scale_activation", nn::Sigmoid())) {}

  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor scale = scale_activation_(fc2_(activation_(fc1_(avgpool_(x)))));
    return scale * x;
  }

 private:
  nn::AdaptiveAvgPool2d avgpool_;
  nn::Conv2d fc1_;
  nn::Conv2d fc2_;
  nn::SiLU activation_;
  nn::Sigmoid scale_activation_;
};
TORCH_MODULE(SqueezeExcitation);

// torchvision's MBConv: optional 1x1 expansion, depthwise conv, squeeze-excitation, 1x1
// projection ("block.0".."block.3"), with a stochastic-depth residual when shapes allow.
class MBConvImpl : public nn::Module {
 public:
  MBConvImpl(const StageConfig& config, int64_t in_channels, int64_t stride,
             double stochastic_depth_prob)
      : use_residual_(stride == 1 && in_channels == config.out_channels) {
    const int64_t expanded = MakeDivisible(in_channels * config.expand_ratio, 8);
    SequentialBlock block;
    if (expanded != in_channels) {
      block->push_back(Conv2dNormActivation(in_channels, expanded, 1, 1, 1, Activation::kSiLU));
    }
    block->push_back(Conv2dNormActivation(expanded, expanded, config.kernel, stride, expanded,
                                          Activation::kSiLU));
    block->push_back(SqueezeExcitation(expanded, std::max<int64_t>(1, in_channels / 4)));
    block->push_back(
        Conv2dNormActivation(expanded, config.out_channels, 1, 1, 1, Activation::kNone));
    block_ = register_module("block", block);
    stochastic_depth_ = register_module("stochastic_depth", StochasticDepth(stochastic_depth_prob));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor result = block_->forward(x);
    if (use_residual_) {
      result = stochastic_depth_(result);
      result += x;
    }
    return result;
  }

 private:
  bool use_residual_;
  SequentialBlock block_{nullptr};
  StochasticDepth stochastic_depth_{nullptr};
};
TORCH_MODULE(MBConv);

class EfficientNetB0Impl : public BackboneImpl {
 public:
  explicit EfficientNetB0Impl(bool include_head) : BackboneImpl("efficientnet_b0") {
    features_->push_back(
        Conv2dNormActivation(3, kStages[0].in_channels, 3, 2, 1, Activation::kSiLU));
    int64_t total_blocks = 0;
    for (const auto& stage : kStages) total_blocks += stage.num_layers;
    int64_t block_id = 0;
    for (const auto& stage : kStages) {
      SequentialBlock blocks;
      for (int64_t i = 0; i < stage.num_layers; ++i) {
        // Stochastic depth grows linearly with the block's depth in the network.
        const double p = kStochasticDepthProb * static_cast<double>(block_id) / total_blocks;
        blocks->push_back(MBConv(stage, i == 0 ? stage.in_channels : stage.out_channels,
                                 i == 0 ? stage.stride : 1, p));
        ++block_id;
      }
      features_->push_back(blocks);
    }
    features_->push_back(Conv2dNormActivation(kStages[std::size(kStages) - 1].out_channels,
                                              kLastChannels, 1, 1, 1, Activation::kSiLU));
    classifier_->push_back(nn::Dropout(nn::DropoutOptions(kDropout).inplace(true)));
    if (include_head) {
      head_ = nn::Linear(kLastChannels, 1000);
      classifier_->push_back(head_);
    }
    register_module("features", features_);
    register_module("avgpool", avgpool_);
    register_module("classifier", classifier_);

    ForEachModule<nn::Conv2dImpl>(*this, [](nn::Conv2dImpl& conv) {
      nn::init::kaiming_normal_(conv.weight, 0.0, torch::kFanOut);
      if (conv.bias.defined()) nn::init::zeros_(conv.bias);
    });
    ForEachModule<nn::BatchNorm2dImpl>(*this, [](nn::BatchNorm2dImpl& bn) {
      nn::init::ones_(bn.weight);
      nn::init::zeros_(bn.bias);
    });
    ForEachModule<nn::LinearImpl>(*this, [](nn::LinearImpl& linear) {
      const double range = 1.0 / std::sqrt(static_cast<double>(linear.weight.size(0)));
      nn::init::uniform_(linear.weight, -range, range);
      nn::init::zeros_(linear.bias);
    });
  }

  torch::Tensor Features(const torch::Tensor& x) override { return features_->forward(x); }

  // Pooling plus classifier.0 (dropout): torchvision's forward up to its last Linear.
  torch::Tensor Embed(const torch::Tensor& features) override {
    return classifier_->begin()->forward(avgpool_(features).flatten(1));
  }

  torch::Tensor Head(const torch::Tensor& embedding) override { return head_(embedding); }

  int64_t feature_channels() const override { return kLastChannels; }
  int64_t feature_stride() const override { return 32; }
  int64_t embedding_dim() const override { return kLastChannels; }
  bool has_head() const override { return !head_.is_empty(); }
  std::vector<std::string> HeadPrefixes() const override { return {"classifier.1."}; }

 private:
  nn::Sequential features_;
  nn::AdaptiveAvgPool2d avgpool_{nn::AdaptiveAvgPool2dOptions({1, 1})};
  nn::Sequential classifier_;
  nn::Linear head_{nullptr};  // classifier.1; null without include_head.
};

}  // namespace

std::shared_ptr<BackboneImpl> MakeEfficientNetB0(bool include_head) {
  return std::make_shared<EfficientNetB0Impl>(include_head);
}

}  // namespace dermfed::model::backbones
