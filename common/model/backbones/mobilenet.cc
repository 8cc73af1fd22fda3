// MobileNetV2 (torchvision.models.mobilenet_v2: width multiplier 1.0, dropout 0.2).
#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "common/model/backbones/backbones.h"
#include "common/model/backbones/layers.h"

namespace dermfed::model::backbones {
namespace {

namespace nn = torch::nn;

// t (expansion), c (output channels), n (repeats), s (first stride), as in torchvision.
struct StageConfig {
  int64_t expand_ratio;
  int64_t out_channels;
  int64_t num_blocks;
  int64_t stride;
};
constexpr StageConfig kStages[] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                   {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
constexpr int64_t kFirstChannels = 32;
constexpr int64_t kLastChannels = 1280;
constexpr double kDropout = 0.2;

// torchvision's InvertedResidual: optional 1x1 expansion (ReLU6), 3x3 depthwise (ReLU6),
// linear 1x1 projection + BN, all in "conv"; residual when stride 1 and shapes match.
class InvertedResidualImpl : public nn::Module {
 public:
  InvertedResidualImpl(int64_t in_channels, int64_t out_channels, int64_t stride,
                       int64_t expand_ratio)
      : use_residual_(stride == 1 && in_channels == out_channels) {
    const int64_t hidden = static_cast<int64_t>(std::round(in_channels * expand_ratio));
    SequentialBlock conv;
    if (expand_ratio != 1) {
      conv->push_back(Conv2dNormActivation(in_channels, hidden, 1, 1, 1, Activation::kReLU6));
    }
    conv->push_back(Conv2dNormActivation(hidden, hidden, 3, stride, hidden, Activation::kReLU6));
    conv->push_back(nn::Conv2d(nn::Conv2dOptions(hidden, out_channels, 1).bias(false)));
    conv->push_back(nn::BatchNorm2d(out_channels));
    conv_ = register_module("conv", conv);
  }

  torch::Tensor forward(const torch::Tensor& x) {
    return use_residual_ ? x + conv_->forward(x) : conv_->forward(x);
  }

 private:
  bool use_residual_;
  SequentialBlock conv_{nullptr};
};
TORCH_MODULE(InvertedResidual);

class MobileNetV2Impl : public BackboneImpl {
 public:
  explicit MobileNetV2Impl(bool include_head) : BackboneImpl("mobilenet_v2") {
    int64_t in_channels = MakeDivisible(kFirstChannels, 8);
    features_->push_back(Conv2dNormActivation(3, in_channels, 3, 2, 1, Activation::kReLU6));
    for (const auto& stage : kStages) {
      const int64_t out_channels = MakeDivisible(stage.out_channels, 8);
      for (int64_t i = 0; i < stage.num_blocks; ++i) {
        features_->push_back(InvertedResidual(in_channels, out_channels, i == 0 ? stage.stride : 1,
                                              stage.expand_ratio));
        in_channels = out_channels;
      }
    }
    features_->push_back(
        Conv2dNormActivation(in_channels, kLastChannels, 1, 1, 1, Activation::kReLU6));
    classifier_->push_back(nn::Dropout(kDropout));
    if (include_head) {
      head_ = nn::Linear(kLastChannels, 1000);
      classifier_->push_back(head_);
    }
    register_module("features", features_);
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
      nn::init::normal_(linear.weight, 0.0, 0.01);
      nn::init::zeros_(linear.bias);
    });
  }

  torch::Tensor Features(const torch::Tensor& x) override { return features_->forward(x); }

  // Pooling plus classifier.0 (dropout): torchvision's forward up to its last Linear.
  torch::Tensor Embed(const torch::Tensor& features) override {
    return classifier_->begin()->forward(torch::adaptive_avg_pool2d(features, {1, 1}).flatten(1));
  }

  torch::Tensor Head(const torch::Tensor& embedding) override { return head_(embedding); }

  int64_t feature_channels() const override { return kLastChannels; }
  int64_t feature_stride() const override { return 32; }
  int64_t embedding_dim() const override { return kLastChannels; }
  bool has_head() const override { return !head_.is_empty(); }
  std::vector<std::string> HeadPrefixes() const override { return {"classifier.1."}; }

 private:
  nn::Sequential features_;
  nn::Sequential classifier_;
  nn::Linear head_{nullptr};  // classifier.1; null without include_head.
};

}  // namespace

std::shared_ptr<BackboneImpl> MakeMobileNetV2(bool include_head) {
  return std::make_shared<MobileNetV2Impl>(include_head);
}

}  // namespace dermfed::model::backbones
