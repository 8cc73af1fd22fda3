// FedMedian: the coordinate-wise median of the sites' deltas (Yin et al., "Byzantine-Robust
// Distributed Learning: Towards Optimal Statistical Rates", ICML 2018). With an even number
// of updates the median is the mean of the two middle values. Unweighted: see
// collecting_aggregator.h.
#include <algorithm>
#include <memory>

#include "coordinator/strategies/builtin.h"
#include "coordinator/strategies/collecting_aggregator.h"

namespace dermfed::coordinator {
namespace {

double Median(double* values, size_t n) {
  double* mid = values + n / 2;
  std::nth_element(values, mid, values + n);
  if (n % 2 == 1) return *mid;
  const double below = *std::max_element(values, mid);  // the largest of the lower half
  return 0.5 * (below + *mid);
}

class MedianAggregator : public CollectingAggregator {
 public:
  using CollectingAggregator::CollectingAggregator;

 protected:
  Status Combine(const std::vector<Update>& updates, ModelState* out) override {
    CombineCoordinateWise(updates, out, Median);
    return OkStatus();
  }
};

class FedMedian : public AddDeltaStrategy {
 public:
  std::string name() const override { return "fedmedian"; }
  bool IsLinear() const override { return false; }
  std::unique_ptr<Aggregator> NewAggregator(const ModelState& global) const override {
    return std::make_unique<MedianAggregator>(global);
  }
};

}  // namespace

StatusOr<std::unique_ptr<Strategy>> MakeFedMedian(const StrategyConfig& config) {
  return std::unique_ptr<Strategy>(std::make_unique<FedMedian>());
}

}  // namespace dermfed::coordinator
