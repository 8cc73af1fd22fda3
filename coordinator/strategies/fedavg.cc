// FedAvg (McMahan et al., AISTATS 2017): x <- x + Σ_k (n_k / n) Δ_k, the example-weighted
// mean of the sites' deltas, folded as they arrive.
#include <memory>

#include "coordinator/strategies/builtin.h"
#include "coordinator/strategies/weighted_mean_aggregator.h"

namespace dermfed::coordinator {
namespace {

class FedAvg : public AddDeltaStrategy {
 public:
  std::string name() const override { return "fedavg"; }
  bool IsLinear() const override { return true; }
  std::unique_ptr<Aggregator> NewAggregator(const ModelState& global) const override {
    return std::make_unique<WeightedMeanAggregator>(global);
  }
};

}  // namespace

StatusOr<std::unique_ptr<Strategy>> MakeFedAvg(const StrategyConfig& config) {
  return std::unique_ptr<Strategy>(std::make_unique<FedAvg>());
}

}  // namespace dermfed::coordinator
