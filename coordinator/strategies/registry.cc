// MakeStrategy and StrategyNames: the table of built-in strategies, and the defaults of the
// Strategy interface that stateless strategies inherit.
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "coordinator/strategies/builtin.h"
#include "coordinator/strategy.h"

namespace dermfed::coordinator {
namespace {

struct Entry {
  const char* name;
  StrategyFactory make;
};

constexpr Entry kStrategies[] = {
    {"fedavg", MakeFedAvg},
    {"fedprox", MakeFedProx},
    {"fedadam", MakeFedAdam},
    {"fedyogi", MakeFedYogi},
    {"fedadagrad", MakeFedAdagrad},
    {"fedmedian", MakeFedMedian},
    {"trimmed_mean", MakeTrimmedMean},
    {"krum", MakeKrum},
};

}  // namespace

Status CheckParam(bool ok, const std::string& key, const std::string& requirement, double value) {
  if (ok) return OkStatus();
  char text[64] = "";
  // Prefer the shortest form that reads back the same (0.7, not 0.69999999999999996).
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(text, sizeof text, "%.*g", precision, value);
    if (std::strtod(text, nullptr) == value) break;
  }
  return InvalidArgumentError("strategy." + key + " must be " + requirement + ", got " + text);
}

StatusOr<ModelState> Strategy::SaveState() const { return ModelState::Create({}); }

Status Strategy::RestoreState(const ModelState& state) {
  if (state.num_tensors() == 0) return OkStatus();
  return InvalidArgumentError(
      "strategy " + name() + " keeps no server state, but the saved state has " +
      std::to_string(state.num_tensors()) + " tensors (first '" + state.manifest()[0].name + "')");
}

StatusOr<std::unique_ptr<Strategy>> MakeStrategy(const StrategyConfig& config) {
  for (const Entry& entry : kStrategies) {
    if (config.name == entry.name) return entry.make(config);
  }
  std::string known;
  for (const std::string& name : StrategyNames()) known += (known.empty() ? "" : ", ") + name;
  return InvalidArgumentError("strategy.name '" + config.name +
                              "' is not a strategy; known: " + known);
}

const std::vector<std::string>& StrategyNames() {
  static const std::vector<std::string>* names = [] {
    auto* v = new std::vector<std::string>();
    for (const Entry& entry : kStrategies) v->push_back(entry.name);
    return v;
  }();
  return *names;
}

}  // namespace dermfed::coordinator
