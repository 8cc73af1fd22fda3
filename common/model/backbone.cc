#include "common/model/backbone.h"

#include <functional>
#include <utility>

#include "common/model/backbones/backbones.h"
#include "common/model/checkpoint.h"
#include "common/model/torch_call.h"

namespace dermfed::model {
namespace {

using Factory = std::function<std::shared_ptr<BackboneImpl>(bool include_head)>;

// The one registry of backbones, in the order BackboneNames() lists them.
const std::vector<std::pair<std::string, Factory>>& Registry() {
  static const auto* registry = new std::vector<std::pair<std::string, Factory>>{
      {"vgg13", backbones::MakeVgg13},
      {"densenet121", backbones::MakeDenseNet121},
      {"resnet50", backbones::MakeResNet50},
      {"efficientnet_b0", backbones::MakeEfficientNetB0},
      {"mobilenet_v2", backbones::MakeMobileNetV2},
      {"tiny", backbones::MakeTiny},
  };
  return *registry;
}

}  // namespace

const std::vector<std::string>& BackboneNames() {
  static const auto* names = [] {
    auto* out = new std::vector<std::string>;
    for (const auto& entry : Registry()) out->push_back(entry.first);
    return out;
  }();
  return *names;
}

StatusOr<std::shared_ptr<BackboneImpl>> MakeBackbone(const std::string& name, bool include_head) {
  for (const auto& [known, factory] : Registry()) {
    if (known == name) {
      return TorchCall("building backbone " + name, [&] { return factory(include_head); });
    }
  }
  std::string valid;
  for (const auto& known : BackboneNames()) valid += (valid.empty() ? "" : ", ") + known;
  return InvalidArgumentError("unknown backbone '" + name + "'; valid names: " + valid);
}

Status LoadTorchvisionWeights(BackboneImpl& backbone, const std::string& path) {
  StatusOr<NamedTensors> state = ReadTorchCheckpoint(path);
  if (!state.ok()) {
    // ReadTorchCheckpoint names the file itself; add it only where it did not.
    const Status& status = state.status();
    if (status.message().find(path) != absl::string_view::npos) return status;
    return Annotate(status, path);
  }
  DF_ASSIGN_OR_RETURN(NamedTensors upgraded, TorchCall(path + ": renaming legacy keys", [&] {
                        return backbone.UpgradeLegacyKeys(*std::move(state));
                      }));
  LoadOptions options;
  if (!backbone.has_head()) options.ignore_prefixes = backbone.HeadPrefixes();
  return Annotate(LoadStateDict(backbone, upgraded, options),
                  path + " (into " + backbone.name() + ")");
}

}  // namespace dermfed::model
