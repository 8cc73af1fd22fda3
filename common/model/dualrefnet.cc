#include "common/model/dualrefnet.h"

#include <torch/torch.h>

#include <algorithm>

#include "common/model/torch_call.h"

namespace dermfed::model {

namespace F = torch::nn::functional;

Status ValidateOptions(const DualRefNetOptions& o) {
  const auto& names = BackboneNames();
  if (std::find(names.begin(), names.end(), o.backbone) == names.end()) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    return InvalidArgumentError("backbone '" + o.backbone + "' is unknown; choose one of " + list);
  }
  if (o.num_classes < 2) {
    return InvalidArgumentError("num_classes must be at least 2, got " +
                                std::to_string(o.num_classes));
  }
  if (o.metadata_dim < 0) return InvalidArgumentError("metadata_dim must be >= 0");
  if (o.metadata_hidden < 1 || o.fusion_hidden < 1 || o.sr_channels < 1) {
    return InvalidArgumentError("metadata_hidden, fusion_hidden and sr_channels must be >= 1");
  }
  if (o.dropout < 0 || o.dropout >= 1) {
    return InvalidArgumentError("dropout must be in [0, 1), got " + std::to_string(o.dropout));
  }
  if (o.sr_factor < 1 || o.sr_factor > 8) {
    return InvalidArgumentError("sr_factor must be in 1..8, got " + std::to_string(o.sr_factor));
  }
  return OkStatus();
}

SrDecoderImpl::SrDecoderImpl(int64_t in_channels, int64_t channels) {
  reduce_ = register_module("reduce", torch::nn::Conv2d(torch::nn::Conv2dOptions(
                                          in_channels, channels, 1)));
  refine_ = register_module("refine", torch::nn::Conv2d(torch::nn::Conv2dOptions(
                                          channels, channels, 3).padding(1)));
  out_ = register_module("out",
                         torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, 3, 3).padding(1)));
  // Start as "upsample the LR image": the residual branch begins at zero.
  torch::NoGradGuard no_grad;
  out_->weight.zero_();
  out_->bias.zero_();
}

torch::Tensor SrDecoderImpl::forward(const torch::Tensor& features, const torch::Tensor& low_res,
                                     int64_t out_h, int64_t out_w) {
  auto interp = [](const torch::Tensor& x, int64_t h, int64_t w) {
    return F::interpolate(x, F::InterpolateFuncOptions()
                                 .size(std::vector<int64_t>{h, w})
                                 .mode(torch::kBilinear)
                                 .align_corners(false));
  };
  torch::Tensor f = torch::relu(reduce_->forward(features));
  const int64_t mid_h = std::max<int64_t>(f.size(2), out_h / 4);
  const int64_t mid_w = std::max<int64_t>(f.size(3), out_w / 4);
  f = torch::relu(refine_->forward(interp(f, mid_h, mid_w)));
  f = out_->forward(interp(f, out_h, out_w));
  return interp(low_res, out_h, out_w) + f;
}

DualRefNetImpl::DualRefNetImpl(const DualRefNetOptions& options) : options_(options) {
  auto backbone = MakeBackbone(options.backbone, /*include_head=*/false);
  TORCH_CHECK(backbone.ok(), std::string(backbone.status().message()));
  backbone_ = register_module("backbone", *backbone);

  int64_t fused = backbone_->embedding_dim();
  if (options.metadata_dim > 0) {
    const int64_t h = options.metadata_hidden;
    metadata_ = register_module(
        "metadata", torch::nn::Sequential(torch::nn::Linear(options.metadata_dim, h),
                                          torch::nn::ReLU(),
                                          torch::nn::Dropout(options.dropout),
                                          torch::nn::Linear(h, h), torch::nn::ReLU()));
    fused += h;
  }
  fusion_ = register_module(
      "fusion", torch::nn::Sequential(torch::nn::Linear(fused, options.fusion_hidden),
                                      torch::nn::ReLU(), torch::nn::Dropout(options.dropout)));
  classifier_ =
      register_module("classifier", torch::nn::Linear(options.fusion_hidden, options.num_classes));
  if (options.sr_factor > 1) {
    sr_decoder_ = register_module(
        "sr_decoder", SrDecoder(backbone_->feature_channels(), options.sr_channels));
  }
}

DualRefNetOutput DualRefNetImpl::Forward(const torch::Tensor& image,
                                         const torch::Tensor& metadata, bool with_sr) {
  TORCH_CHECK(image.dim() == 4 && image.size(1) == 3,
              "DualRefNet expects images of shape B x 3 x H x W, got ", image.sizes());
  const int64_t f = options_.sr_factor;
  TORCH_CHECK(image.size(2) >= 8 * f && image.size(3) >= 8 * f, "image of ", image.sizes(),
              " is too small for sr_factor ", f);
  torch::Tensor low_res = f > 1 ? F::avg_pool2d(image, F::AvgPool2dFuncOptions(f)) : image;
  torch::Tensor maps = backbone_->Features(low_res);
  torch::Tensor fused = backbone_->Embed(maps);
  if (options_.metadata_dim > 0) {
    TORCH_CHECK(metadata.defined() && metadata.dim() == 2 &&
                    metadata.size(0) == image.size(0) &&
                    metadata.size(1) == options_.metadata_dim,
                "DualRefNet expects metadata of shape ", image.size(0), " x ",
                options_.metadata_dim, ", got ",
                metadata.defined() ? metadata.sizes() : c10::IntArrayRef{});
    fused = torch::cat({fused, metadata_->forward(metadata)}, 1);
  }
  DualRefNetOutput out;
  out.logits = classifier_->forward(fusion_->forward(fused));
  if (with_sr && has_sr_decoder()) {
    out.sr = sr_decoder_->forward(maps, low_res, image.size(2), image.size(3));
  }
  return out;
}

StatusOr<DualRefNet> MakeDualRefNet(const DualRefNetOptions& options) {
  DF_RETURN_IF_ERROR(ValidateOptions(options));
  return TorchCall("building DualRefNet(" + options.backbone + ")",
                   [&] { return DualRefNet(options); });
}

}  // namespace dermfed::model
