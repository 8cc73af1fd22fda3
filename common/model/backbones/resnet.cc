// ResNet-50 (torchvision.models.resnet50: Bottleneck blocks 3-4-6-3, "V1.5" with the stride
// on the 3x3 convolution).
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "common/model/backbones/backbones.h"
#include "common/model/backbones/layers.h"

namespace dermfed::model::backbones {
namespace {

namespace nn = torch::nn;

constexpr int64_t kExpansion = 4;

nn::Conv2d Conv1x1(int64_t in, int64_t out, int64_t stride = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false));
}

nn::Conv2d Conv3x3(int64_t in, int64_t out, int64_t stride = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}

// torchvision's Bottleneck: 1x1 reduce, 3x3 (strided), 1x1 expand by 4, plus the identity
// or a projection ("downsample": 1x1 conv + BN) when the shape changes.
class BottleneckImpl : public nn::Module {
 public:
  BottleneckImpl(int64_t in_channels, int64_t planes, int64_t stride)
      : conv1_(register_module("conv1", Conv1x1(in_channels, planes))),
        bn1_(register_module("bn1", nn::BatchNorm2d(planes))),
        conv2_(register_module("conv2", Conv3x3(planes, planes, stride))),
        bn2_(register_module("bn2", nn::BatchNorm2d(planes))),
        conv3_(register_module("conv3", Conv1x1(planes, planes * kExpansion))),
        bn3_(register_module("bn3", nn::BatchNorm2d(planes * kExpansion))),
        relu_(register_module("relu", nn::ReLU(nn::ReLUOptions(/*inplace=*/true)))) {
    if (stride != 1 || in_channels != planes * kExpansion) {
      downsample_ = register_module(
          "downsample", nn::Sequential(Conv1x1(in_channels, planes * kExpansion, stride),
                                       nn::BatchNorm2d(planes * kExpansion)));
    }
  }

  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor out = relu_(bn1_(conv1_(x)));
    out = relu_(bn2_(conv2_(out)));
    out = bn3_(conv3_(out));
    out += downsample_.is_empty() ? x : downsample_->forward(x);
    return relu_(out);
  }

 private:
  nn::Conv2d conv1_;
  nn::BatchNorm2d bn1_;
  nn::Conv2d conv2_;
  nn::BatchNorm2d bn2_;
  nn::Conv2d conv3_;
  nn::BatchNorm2d bn3_;
  nn::ReLU relu_;
  nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(Bottleneck);

class ResNet50Impl : public BackboneImpl {
 public:
  explicit ResNet50Impl(bool include_head) : BackboneImpl("resnet50") {
    conv1_ = register_module(
        "conv1", nn::Conv2d(nn::Conv2dOptions(3, 64, 7).stride(2).padding(3).bias(false)));
    bn1_ = register_module("bn1", nn::BatchNorm2d(64));
    relu_ = register_module("relu", nn::ReLU(nn::ReLUOptions(/*inplace=*/true)));
    maxpool_ =
        register_module("maxpool", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1)));
    layer1_ = register_module("layer1", MakeLayer(64, 3, 1));
    layer2_ = register_module("layer2", MakeLayer(128, 4, 2));
    layer3_ = register_module("layer3", MakeLayer(256, 6, 2));
    layer4_ = register_module("layer4", MakeLayer(512, 3, 2));
    avgpool_ =
        register_module("avgpool", nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({1, 1})));
    if (include_head) fc_ = register_module("fc", nn::Linear(512 * kExpansion, 1000));

    ForEachModule<nn::Conv2dImpl>(*this, [](nn::Conv2dImpl& conv) {
      nn::init::kaiming_normal_(conv.weight, 0.0, torch::kFanOut, torch::kReLU);
    });
    ForEachModule<nn::BatchNorm2dImpl>(*this, [](nn::BatchNorm2dImpl& bn) {
      nn::init::ones_(bn.weight);
      nn::init::zeros_(bn.bias);
    });
    // fc keeps nn.Linear's default init, as in torchvision (zero_init_residual=False).
  }

  torch::Tensor Features(const torch::Tensor& x) override {
    torch::Tensor out = maxpool_(relu_(bn1_(conv1_(x))));
    out = layer1_->forward(out);
    out = layer2_->forward(out);
    out = layer3_->forward(out);
    return layer4_->forward(out);
  }

  torch::Tensor Embed(const torch::Tensor& features) override {
    return avgpool_(features).flatten(1);
  }

  torch::Tensor Head(const torch::Tensor& embedding) override { return fc_(embedding); }

  int64_t feature_channels() const override { return 512 * kExpansion; }
  int64_t feature_stride() const override { return 32; }
  int64_t embedding_dim() const override { return 512 * kExpansion; }
  bool has_head() const override { return !fc_.is_empty(); }
  std::vector<std::string> HeadPrefixes() const override { return {"fc."}; }

 private:
  // torchvision's ResNet._make_layer: blocks "0".."n-1", the first one strided.
  nn::Sequential MakeLayer(int64_t planes, int64_t blocks, int64_t stride) {
    nn::Sequential layer;
    layer->push_back(Bottleneck(in_channels_, planes, stride));
    in_channels_ = planes * kExpansion;
    for (int64_t i = 1; i < blocks; ++i) layer->push_back(Bottleneck(in_channels_, planes, 1));
    return layer;
  }

  int64_t in_channels_ = 64;
  nn::Conv2d conv1_{nullptr};
  nn::BatchNorm2d bn1_{nullptr};
  nn::ReLU relu_{nullptr};
  nn::MaxPool2d maxpool_{nullptr};
  nn::Sequential layer1_{nullptr}, layer2_{nullptr}, layer3_{nullptr}, layer4_{nullptr};
  nn::AdaptiveAvgPool2d avgpool_{nullptr};
  nn::Linear fc_{nullptr};  // Null without include_head.
};

}  // namespace

std::shared_ptr<BackboneImpl> MakeResNet50(bool include_head) {
  return std::make_shared<ResNet50Impl>(include_head);
}

}  // namespace dermfed::model::backbones
