// "tiny": not a torchvision model. A three-stage CNN small enough to train in unit tests
// and CPU demos, with the same interface (and the same head naming as ResNet) so that
// everything downstream of MakeBackbone can be exercised without the big networks.
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "common/model/backbones/backbones.h"
#include "common/model/backbones/layers.h"

namespace dermfed::model::backbones {
namespace {

namespace nn = torch::nn;

// Output channels of the three stride-2 conv-BN-ReLU stages.
constexpr int64_t kStageChannels[] = {16, 32, 64};
constexpr int64_t kChannels = 64;

class TinyImpl : public BackboneImpl {
 public:
  explicit TinyImpl(bool include_head) : BackboneImpl("tiny") {
    int64_t in_channels = 3;
    for (int64_t out_channels : kStageChannels) {
      features_->push_back(
          Conv2dNormActivation(in_channels, out_channels, 3, 2, 1, Activation::kReLU));
      in_channels = out_channels;
    }
    register_module("features", features_);
    if (include_head) fc_ = register_module("fc", nn::Linear(kChannels, 1000));

    // ResNet's scheme: He init for the ReLU convolutions, identity BatchNorm.
    ForEachModule<nn::Conv2dImpl>(*this, [](nn::Conv2dImpl& conv) {
      nn::init::kaiming_normal_(conv.weight, 0.0, torch::kFanOut, torch::kReLU);
    });
    ForEachModule<nn::BatchNorm2dImpl>(*this, [](nn::BatchNorm2dImpl& bn) {
      nn::init::ones_(bn.weight);
      nn::init::zeros_(bn.bias);
    });
  }

  torch::Tensor Features(const torch::Tensor& x) override { return features_->forward(x); }

  torch::Tensor Embed(const torch::Tensor& features) override {
    return torch::adaptive_avg_pool2d(features, {1, 1}).flatten(1);
  }

  torch::Tensor Head(const torch::Tensor& embedding) override { return fc_(embedding); }

  int64_t feature_channels() const override { return kChannels; }
  int64_t feature_stride() const override { return 8; }
  int64_t embedding_dim() const override { return kChannels; }
  bool has_head() const override { return !fc_.is_empty(); }
  std::vector<std::string> HeadPrefixes() const override { return {"fc."}; }

 private:
  nn::Sequential features_;
  nn::Linear fc_{nullptr};  // Null without include_head.
};

}  // namespace

std::shared_ptr<BackboneImpl> MakeTiny(bool include_head) {
  return std::make_shared<TinyImpl>(include_head);
}

}  // namespace dermfed::model::backbones
