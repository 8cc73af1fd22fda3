// VGG13 (torchvision.models.vgg13, configuration "B", no batch norm).
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "common/model/backbones/backbones.h"
#include "common/model/backbones/layers.h"

namespace dermfed::model::backbones {
namespace {

namespace nn = torch::nn;

// Channel counts of the 3x3 convolutions; 0 marks a 2x2 max pool.
constexpr int64_t kVgg13Config[] = {64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};
// classifier.0-5 (Linear, ReLU, Dropout, Linear, ReLU, Dropout) produce the embedding;
// classifier.6 is the ImageNet head.
constexpr int kEmbeddingLayers = 6;

class Vgg13Impl : public BackboneImpl {
 public:
  explicit Vgg13Impl(bool include_head) : BackboneImpl("vgg13") {
    int64_t in_channels = 3;
    for (int64_t v : kVgg13Config) {
      if (v == 0) {
        features_->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(2)));
      } else {
        features_->push_back(nn::Conv2d(nn::Conv2dOptions(in_channels, v, 3).padding(1)));
        features_->push_back(nn::ReLU(nn::ReLUOptions(/*inplace=*/true)));
        in_channels = v;
      }
    }
    classifier_->push_back(nn::Linear(512 * 7 * 7, 4096));
    classifier_->push_back(nn::ReLU(nn::ReLUOptions(/*inplace=*/true)));
    classifier_->push_back(nn::Dropout(0.5));
    classifier_->push_back(nn::Linear(4096, 4096));
    classifier_->push_back(nn::ReLU(nn::ReLUOptions(/*inplace=*/true)));
    classifier_->push_back(nn::Dropout(0.5));
    if (include_head) {
      head_ = nn::Linear(4096, 1000);
      classifier_->push_back(head_);
    }
    register_module("features", features_);
    register_module("avgpool", avgpool_);
    register_module("classifier", classifier_);

    ForEachModule<nn::Conv2dImpl>(*this, [](nn::Conv2dImpl& conv) {
      nn::init::kaiming_normal_(conv.weight, 0.0, torch::kFanOut, torch::kReLU);
      nn::init::zeros_(conv.bias);
    });
    ForEachModule<nn::LinearImpl>(*this, [](nn::LinearImpl& linear) {
      nn::init::normal_(linear.weight, 0.0, 0.01);
      nn::init::zeros_(linear.bias);
    });
  }

  torch::Tensor Features(const torch::Tensor& x) override { return features_->forward(x); }

  torch::Tensor Embed(const torch::Tensor& features) override {
    torch::Tensor x = avgpool_(features).flatten(1);
    auto layer = classifier_->begin();
    for (int i = 0; i < kEmbeddingLayers; ++i, ++layer) x = layer->forward(x);
    return x;
  }

  torch::Tensor Head(const torch::Tensor& embedding) override { return head_(embedding); }

  int64_t feature_channels() const override { return 512; }
  int64_t feature_stride() const override { return 32; }
  int64_t embedding_dim() const override { return 4096; }
  bool has_head() const override { return !head_.is_empty(); }
  std::vector<std::string> HeadPrefixes() const override { return {"classifier.6."}; }

 private:
  nn::Sequential features_;
  nn::AdaptiveAvgPool2d avgpool_{nn::AdaptiveAvgPool2dOptions({7, 7})};
  nn::Sequential classifier_;
  nn::Linear head_{nullptr};  // classifier.6; null without include_head.
};

}  // namespace

std::shared_ptr<BackboneImpl> MakeVgg13(bool include_head) {
  return std::make_shared<Vgg13Impl>(include_head);
}

}  // namespace dermfed::model::backbones
