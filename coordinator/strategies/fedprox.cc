// FedProx (Li et al., MLSys 2020): each site minimizes F_k(w) + (μ/2)‖w − w_global‖², so the
// only server-side difference from FedAvg is sending μ with every fit task; aggregation is
// FedAvg's weighted mean.
#include <cmath>
#include <memory>

#include "coordinator/strategies/builtin.h"
#include "coordinator/strategies/weighted_mean_aggregator.h"

namespace dermfed::coordinator {
namespace {

class FedProx : public AddDeltaStrategy {
 public:
  explicit FedProx(double proximal_mu) : proximal_mu_(proximal_mu) {}

  std::string name() const override { return "fedprox"; }
  bool IsLinear() const override { return true; }
  std::map<std::string, double> ConfigureFit(int round) const override {
    return {{"proximal_mu", proximal_mu_}};
  }
  std::unique_ptr<Aggregator> NewAggregator(const ModelState& global) const override {
    return std::make_unique<WeightedMeanAggregator>(global);
  }

 private:
  const double proximal_mu_;
};

}  // namespace

StatusOr<std::unique_ptr<Strategy>> MakeFedProx(const StrategyConfig& config) {
  DF_RETURN_IF_ERROR(CheckParam(std::isfinite(config.proximal_mu) && config.proximal_mu >= 0,
                                "proximal_mu", "a finite number >= 0", config.proximal_mu));
  return std::unique_ptr<Strategy>(std::make_unique<FedProx>(config.proximal_mu));
}

}  // namespace dermfed::coordinator
