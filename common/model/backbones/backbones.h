// Constructors of the concrete backbones, one per file in this directory; MakeBackbone()
// (common/model/backbone.cc) is the public way in. Each builds torchvision 0.14's module tree
// (same child names and order) and applies torchvision's initialisation.
#ifndef DERMFED_COMMON_MODEL_BACKBONES_BACKBONES_H_
#define DERMFED_COMMON_MODEL_BACKBONES_BACKBONES_H_

#include <memory>

#include "common/model/backbone.h"

namespace dermfed::model::backbones {

std::shared_ptr<BackboneImpl> MakeVgg13(bool include_head);
std::shared_ptr<BackboneImpl> MakeDenseNet121(bool include_head);
std::shared_ptr<BackboneImpl> MakeResNet50(bool include_head);
std::shared_ptr<BackboneImpl> MakeEfficientNetB0(bool include_head);
std::shared_ptr<BackboneImpl> MakeMobileNetV2(bool include_head);
std::shared_ptr<BackboneImpl> MakeTiny(bool include_head);

}  // namespace dermfed::model::backbones

#endif  // DERMFED_COMMON_MODEL_BACKBONES_BACKBONES_H_
