// The image branch of DualRefNet: a CNN with torchvision's module structure, so that
// torchvision's state dicts (published ImageNet weights) load into it key for key.
//
//   Features(x)  -> feature maps, B x feature_channels() x h x w (input to the SR decoder)
//   Embed(f)     -> B x embedding_dim() vector from the feature maps (the penultimate layer:
//                   torchvision's forward minus its last Linear)
//   Head(e)      -> B x 1000 ImageNet logits; only when built with include_head
//   forward(x)   =  Head(Embed(Features(x))) — equals torchvision's model(x) in eval mode.
//
// DualRefNet builds its backbone without the head; LoadTorchvisionWeights() then ignores the
// head's keys (HeadPrefixes()) and requires every other key.
//
// Not thread-safe (a torch module).
#ifndef DERMFED_COMMON_MODEL_BACKBONE_H_
#define DERMFED_COMMON_MODEL_BACKBONE_H_

#include <torch/nn/module.h>

#include <memory>
#include <string>
#include <vector>

#include "common/model/state_dict.h"
#include "common/status.h"

namespace dermfed::model {

class BackboneImpl : public torch::nn::Module {
 public:
  explicit BackboneImpl(std::string name) : torch::nn::Module(std::move(name)) {}
  ~BackboneImpl() override = default;

  virtual torch::Tensor Features(const torch::Tensor& x) = 0;
  virtual torch::Tensor Embed(const torch::Tensor& features) = 0;
  // REQUIRES: built with include_head.
  virtual torch::Tensor Head(const torch::Tensor& embedding) = 0;
  torch::Tensor forward(const torch::Tensor& x) { return Head(Embed(Features(x))); }

  virtual int64_t feature_channels() const = 0;
  // Total downsampling of Features(): input side / feature-map side (32 for the
  // torchvision backbones, 8 for tiny).
  virtual int64_t feature_stride() const = 0;
  virtual int64_t embedding_dim() const = 0;
  virtual bool has_head() const = 0;
  // State-dict key prefixes of the ImageNet head, e.g. {"classifier.6."} for VGG13.
  virtual std::vector<std::string> HeadPrefixes() const = 0;
  // Renames keys of old published checkpoints to the current names (torchvision does this
  // for DenseNet: "norm.1.weight" -> "norm1.weight"). Default: unchanged.
  virtual NamedTensors UpgradeLegacyKeys(NamedTensors state) const { return state; }
};

// Names accepted by MakeBackbone, in the order the docs list them.
const std::vector<std::string>& BackboneNames();

// Builds a backbone with torchvision's default initialisation scheme. `name` is one of
// BackboneNames(); anything else is an InvalidArgument error listing the valid names.
StatusOr<std::shared_ptr<BackboneImpl>> MakeBackbone(const std::string& name,
                                                     bool include_head);

// Reads a torchvision checkpoint (ReadTorchCheckpoint), upgrades legacy keys and loads it
// into `backbone`. Keys of the ImageNet head are ignored when the backbone has none.
Status LoadTorchvisionWeights(BackboneImpl& backbone, const std::string& path);

}  // namespace dermfed::model

#endif  // DERMFED_COMMON_MODEL_BACKBONE_H_
