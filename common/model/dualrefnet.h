// DualRefNet: a multimodal skin-lesion classifier with two refinement stages.
//
//   image (B x 3 x H x W) --avgpool/f--> LR --backbone.Features--> maps --Embed--> e
//   metadata (B x M) --metadata MLP--> m                     (absent when M == 0)
//   [e, m] --fusion (Linear, ReLU, Dropout)--> h --classifier--> logits (B x K)
//   stage 1: maps + LR --sr_decoder--> SR (B x 3 x H x W), trained with L1 against the image;
//            computed in training only, skipped at inference.
//   stage 2: the classifier's rows carry the class-frequency regularizer (losses.h).
//
// The backbone sees the image downscaled by sr_factor in training and at inference alike,
// so the two see the same distribution. sr_factor == 1 switches stage 1 off entirely (no
// downscaling, no decoder weights).
//
// Submodule names (state-dict prefixes): backbone., metadata., fusion., classifier.,
// sr_decoder. — the backbone's own names are torchvision's.
//
// Not thread-safe (a torch module).
#ifndef DERMFED_COMMON_MODEL_DUALREFNET_H_
#define DERMFED_COMMON_MODEL_DUALREFNET_H_

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <string>

#include "common/model/backbone.h"
#include "common/status.h"

namespace dermfed::model {

struct DualRefNetOptions {
  std::string backbone = "tiny";
  int64_t num_classes = 6;
  int64_t metadata_dim = 0;  // width of the encoded metadata vector; 0 = image only
  int64_t metadata_hidden = 64;
  int64_t fusion_hidden = 256;
  double dropout = 0.3;
  int64_t sr_factor = 2;  // 1 disables the super-resolution stage
  int64_t sr_channels = 32;
};

// Checks the options (known backbone, positive sizes, sr_factor in 1..8); the error names
// the offending option.
Status ValidateOptions(const DualRefNetOptions& options);

struct DualRefNetOutput {
  torch::Tensor logits;  // B x num_classes
  torch::Tensor sr;      // B x 3 x H x W, or undefined when not computed
};

// The stage-1 decoder: feature maps -> a residual added to the bilinearly upsampled
// low-resolution image. Two bilinear upsamplings keep its cost small next to the backbone.
class SrDecoderImpl : public torch::nn::Module {
 public:
  SrDecoderImpl(int64_t in_channels, int64_t channels);
  torch::Tensor forward(const torch::Tensor& features, const torch::Tensor& low_res,
                        int64_t out_h, int64_t out_w);

 private:
  torch::nn::Conv2d reduce_{nullptr}, refine_{nullptr}, out_{nullptr};
};
TORCH_MODULE(SrDecoder);

class DualRefNetImpl : public torch::nn::Module {
 public:
  // REQUIRES: ValidateOptions(options).ok(); use MakeDualRefNet for a Status instead.
  explicit DualRefNetImpl(const DualRefNetOptions& options);

  // SR is computed when `with_sr` and the stage is on. `metadata` may be undefined only
  // when metadata_dim == 0.
  DualRefNetOutput Forward(const torch::Tensor& image, const torch::Tensor& metadata,
                           bool with_sr);
  // Forward with SR exactly when in training mode.
  DualRefNetOutput forward(const torch::Tensor& image, const torch::Tensor& metadata) {
    return Forward(image, metadata, is_training());
  }

  const DualRefNetOptions& options() const { return options_; }
  BackboneImpl& backbone() { return *backbone_; }
  torch::nn::Linear& classifier() { return classifier_; }
  bool has_sr_decoder() const { return !sr_decoder_.is_empty(); }

 private:
  DualRefNetOptions options_;
  std::shared_ptr<BackboneImpl> backbone_;
  torch::nn::Sequential metadata_{nullptr};
  torch::nn::Sequential fusion_{nullptr};
  torch::nn::Linear classifier_{nullptr};
  SrDecoder sr_decoder_{nullptr};
};
TORCH_MODULE(DualRefNet);

StatusOr<DualRefNet> MakeDualRefNet(const DualRefNetOptions& options);

}  // namespace dermfed::model

#endif  // DERMFED_COMMON_MODEL_DUALREFNET_H_
