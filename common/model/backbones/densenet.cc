// DenseNet-121 (torchvision.models.densenet121: growth rate 32, blocks 6-12-24-16, 64 initial
// features, bottleneck size 4, no dropout).
#include <torch/torch.h>

#include <iterator>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "common/model/backbones/backbones.h"
#include "common/model/backbones/layers.h"

namespace dermfed::model::backbones {
namespace {

namespace nn = torch::nn;

constexpr int64_t kGrowthRate = 32;
constexpr int64_t kBlockConfig[] = {6, 12, 24, 16};
constexpr int64_t kInitFeatures = 64;
constexpr int64_t kBottleneckSize = 4;

nn::ReLU InplaceReLU() { return nn::ReLU(nn::ReLUOptions(/*inplace=*/true)); }

nn::Conv2d Conv(int64_t in, int64_t out, int64_t kernel, int64_t padding) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).padding(padding).bias(false));
}

// torchvision's _DenseLayer: BN-ReLU-Conv1x1 bottleneck, then BN-ReLU-Conv3x3 to
// `growth_rate` new channels, computed from the concatenation of all earlier outputs.
class DenseLayerImpl : public nn::Module {
 public:
  DenseLayerImpl(int64_t in_channels, int64_t growth_rate, int64_t bottleneck_size)
      : norm1_(register_module("norm1", nn::BatchNorm2d(in_channels))),
        relu1_(register_module("relu1", InplaceReLU())),
        conv1_(register_module("conv1", Conv(in_channels, bottleneck_size * growth_rate, 1, 0))),
        norm2_(register_module("norm2", nn::BatchNorm2d(bottleneck_size * growth_rate))),
        relu2_(register_module("relu2", InplaceReLU())),
        conv2_(register_module("conv2", Conv(bottleneck_size * growth_rate, growth_rate, 3, 1))) {}

  torch::Tensor forward(const std::vector<torch::Tensor>& previous) {
    torch::Tensor bottleneck = conv1_(relu1_(norm1_(torch::cat(previous, 1))));
    return conv2_(relu2_(norm2_(bottleneck)));
  }

 private:
  nn::BatchNorm2d norm1_;
  nn::ReLU relu1_;
  nn::Conv2d conv1_;
  nn::BatchNorm2d norm2_;
  nn::ReLU relu2_;
  nn::Conv2d conv2_;
};
TORCH_MODULE(DenseLayer);

// torchvision's _DenseBlock: layers "denselayer1".."denselayerN"; the output concatenates
// the input and every layer's output.
class DenseBlockImpl : public nn::Module {
 public:
  DenseBlockImpl(int64_t num_layers, int64_t in_channels) {
    for (int64_t i = 0; i < num_layers; ++i) {
      layers_.push_back(
          register_module("denselayer" + std::to_string(i + 1),
                          DenseLayer(in_channels + i * kGrowthRate, kGrowthRate, kBottleneckSize)));
    }
  }

  torch::Tensor forward(const torch::Tensor& x) {
    std::vector<torch::Tensor> features{x};
    for (auto& layer : layers_) features.push_back(layer(features));
    return torch::cat(features, 1);
  }

 private:
  std::vector<DenseLayer> layers_;
};
TORCH_MODULE(DenseBlock);

// torchvision's _Transition: BN-ReLU-Conv1x1 halving the channels, then 2x2 average pool.
class TransitionImpl : public nn::Module {
 public:
  TransitionImpl(int64_t in_channels, int64_t out_channels)
      : norm_(register_module("norm", nn::BatchNorm2d(in_channels))),
        relu_(register_module("relu", InplaceReLU())),
        conv_(register_module("conv", Conv(in_channels, out_channels, 1, 0))),
        pool_(register_module("pool", nn::AvgPool2d(nn::AvgPool2dOptions(2).stride(2)))) {}

  torch::Tensor forward(const torch::Tensor& x) { return pool_(conv_(relu_(norm_(x)))); }

 private:
  nn::BatchNorm2d norm_;
  nn::ReLU relu_;
  nn::Conv2d conv_;
  nn::AvgPool2d pool_;
};
TORCH_MODULE(Transition);

class DenseNet121Impl : public BackboneImpl {
 public:
  explicit DenseNet121Impl(bool include_head) : BackboneImpl("densenet121") {
    features_->push_back(
        "conv0",
        nn::Conv2d(nn::Conv2dOptions(3, kInitFeatures, 7).stride(2).padding(3).bias(false)));
    features_->push_back("norm0", nn::BatchNorm2d(kInitFeatures));
    features_->push_back("relu0", InplaceReLU());
    features_->push_back("pool0", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1)));
    int64_t channels = kInitFeatures;
    const int num_blocks = static_cast<int>(std::size(kBlockConfig));
    for (int i = 0; i < num_blocks; ++i) {
      const std::string index = std::to_string(i + 1);
      features_->push_back("denseblock" + index, DenseBlock(kBlockConfig[i], channels));
      channels += kBlockConfig[i] * kGrowthRate;
      if (i != num_blocks - 1) {
        features_->push_back("transition" + index, Transition(channels, channels / 2));
        channels /= 2;
      }
    }
    features_->push_back("norm5", nn::BatchNorm2d(channels));
    register_module("features", features_);
    if (include_head) classifier_ = register_module("classifier", nn::Linear(channels, 1000));

    ForEachModule<nn::Conv2dImpl>(*this, [](nn::Conv2dImpl& conv) {
      nn::init::kaiming_normal_(conv.weight);  // fan_in, gain sqrt(2), as torchvision.
    });
    ForEachModule<nn::BatchNorm2dImpl>(*this, [](nn::BatchNorm2dImpl& bn) {
      nn::init::ones_(bn.weight);
      nn::init::zeros_(bn.bias);
    });
    // The Linear keeps its default weight init; torchvision zeroes only the bias.
    ForEachModule<nn::LinearImpl>(*this,
                                  [](nn::LinearImpl& linear) { nn::init::zeros_(linear.bias); });
  }

  // torchvision applies the final ReLU in forward(), outside `features`.
  torch::Tensor Features(const torch::Tensor& x) override {
    return torch::relu(features_->forward(x));
  }

  torch::Tensor Embed(const torch::Tensor& features) override {
    return torch::adaptive_avg_pool2d(features, {1, 1}).flatten(1);
  }

  torch::Tensor Head(const torch::Tensor& embedding) override { return classifier_(embedding); }

  int64_t feature_channels() const override { return 1024; }
  int64_t feature_stride() const override { return 32; }
  int64_t embedding_dim() const override { return 1024; }
  bool has_head() const override { return !classifier_.is_empty(); }
  std::vector<std::string> HeadPrefixes() const override { return {"classifier."}; }

  // Published DenseNet checkpoints predate the ban on '.' in module names and call the
  // layers "norm.1", "conv.2", ...; torchvision's _load_state_dict renames them with this
  // very pattern.
  NamedTensors UpgradeLegacyKeys(NamedTensors state) const override {
    static const std::regex kLegacy(
        R"(^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$)");
    std::smatch match;
    for (auto& [key, tensor] : state) {
      if (std::regex_match(key, match, kLegacy)) key = match.str(1) + match.str(2);
    }
    return state;
  }

 private:
  nn::Sequential features_;
  nn::Linear classifier_{nullptr};  // Null without include_head.
};

}  // namespace

std::shared_ptr<BackboneImpl> MakeDenseNet121(bool include_head) {
  return std::make_shared<DenseNet121Impl>(include_head);
}

}  // namespace dermfed::model::backbones
