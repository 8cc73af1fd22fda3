// The built-in strategies, as the registry (registry.cc) sees them: one factory per
// algorithm, each validating the StrategyConfig keys it reads, and the helpers they share.
// Internal to coordinator/strategies; everyone else goes through MakeStrategy.
#ifndef DERMFED_COORDINATOR_STRATEGIES_BUILTIN_H_
#define DERMFED_COORDINATOR_STRATEGIES_BUILTIN_H_

#include <memory>
#include <string>

#include "coordinator/strategies/tensor_ops.h"
#include "coordinator/strategy.h"

namespace dermfed::coordinator {

using StrategyFactory = StatusOr<std::unique_ptr<Strategy>> (*)(const StrategyConfig&);

StatusOr<std::unique_ptr<Strategy>> MakeFedAvg(const StrategyConfig& config);
StatusOr<std::unique_ptr<Strategy>> MakeFedProx(const StrategyConfig& config);
StatusOr<std::unique_ptr<Strategy>> MakeFedAdam(const StrategyConfig& config);
StatusOr<std::unique_ptr<Strategy>> MakeFedYogi(const StrategyConfig& config);
StatusOr<std::unique_ptr<Strategy>> MakeFedAdagrad(const StrategyConfig& config);
StatusOr<std::unique_ptr<Strategy>> MakeFedMedian(const StrategyConfig& config);
StatusOr<std::unique_ptr<Strategy>> MakeTrimmedMean(const StrategyConfig& config);
StatusOr<std::unique_ptr<Strategy>> MakeKrum(const StrategyConfig& config);

// OK when `ok`, else InvalidArgument "strategy.<key> must be <requirement>, got <value>".
// Write `ok` so that NaN fails it (v >= 0 && v < 1, not !(v < 0)).
Status CheckParam(bool ok, const std::string& key, const std::string& requirement, double value);

// A strategy whose server step is x <- x + Δ: FedAvg's, FedProx's and the robust
// aggregators'. Integer and local (FedBN) tensors keep their global values.
class AddDeltaStrategy : public Strategy {
 public:
  Status Apply(const ModelState& aggregate_delta, ModelState* global) override {
    return AddDelta(aggregate_delta, local_tensors_, global);
  }
};

}  // namespace dermfed::coordinator

#endif  // DERMFED_COORDINATOR_STRATEGIES_BUILTIN_H_
