// Coordinate-wise trimmed mean (Yin et al., ICML 2018): for each coordinate, drop the
// ⌊β·n⌋ largest and ⌊β·n⌋ smallest of the n sites' values and average the rest. β is
// strategy.trim_fraction in [0, 0.5), so at least one value always remains. Unweighted: see
// collecting_aggregator.h.
#include <algorithm>
#include <cmath>
#include <memory>

#include "coordinator/strategies/builtin.h"
#include "coordinator/strategies/collecting_aggregator.h"

namespace dermfed::coordinator {
namespace {

class TrimmedMeanAggregator : public CollectingAggregator {
 public:
  TrimmedMeanAggregator(const ModelState& global, double trim_fraction)
      : CollectingAggregator(global), trim_fraction_(trim_fraction) {}

 protected:
  Status Combine(const std::vector<Update>& updates, ModelState* out) override {
    const size_t n = updates.size();
    // The epsilon keeps a product like 0.3 * 10 = 2.9999999999999996 from losing a value.
    const size_t cut =
        static_cast<size_t>(std::floor(trim_fraction_ * static_cast<double>(n) + 1e-9));
    CombineCoordinateWise(updates, out, [cut](double* values, size_t count) {
      std::sort(values, values + count);
      double sum = 0;
      for (size_t i = cut; i < count - cut; ++i) sum += values[i];
      return sum / static_cast<double>(count - 2 * cut);
    });
    return OkStatus();
  }

 private:
  const double trim_fraction_;
};

class TrimmedMean : public AddDeltaStrategy {
 public:
  explicit TrimmedMean(double trim_fraction) : trim_fraction_(trim_fraction) {}

  std::string name() const override { return "trimmed_mean"; }
  bool IsLinear() const override { return false; }
  std::unique_ptr<Aggregator> NewAggregator(const ModelState& global) const override {
    return std::make_unique<TrimmedMeanAggregator>(global, trim_fraction_);
  }

 private:
  const double trim_fraction_;
};

}  // namespace

StatusOr<std::unique_ptr<Strategy>> MakeTrimmedMean(const StrategyConfig& config) {
  const double beta = config.trim_fraction;
  DF_RETURN_IF_ERROR(CheckParam(beta >= 0 && beta < 0.5, "trim_fraction", "in [0, 0.5)", beta));
  return std::unique_ptr<Strategy>(std::make_unique<TrimmedMean>(beta));
}

}  // namespace dermfed::coordinator
