// Krum and Multi-Krum (Blanchard et al., "Machine Learning with Adversaries: Byzantine
// Tolerant Gradient Descent", NeurIPS 2017). With n updates of which up to f may be
// Byzantine, each update i gets score_i = Σ ‖Δ_i − Δ_j‖² over its n − f − 2 nearest
// neighbours j; Krum returns the update of lowest score, Multi-Krum (m > 1) the mean of the
// m lowest. The rule needs n > 2f + 2 (else Finish is a FailedPrecondition). Ties go to the
// update folded first.
//
// Distances cover every floating tensor except the site-local ones (FedBN): those are meant
// to differ between sites and would make honest sites look like outliers. Unweighted: see
// collecting_aggregator.h.
#include <algorithm>
#include <memory>
#include <numeric>

#include "coordinator/strategies/builtin.h"
#include "coordinator/strategies/collecting_aggregator.h"

namespace dermfed::coordinator {
namespace {

class KrumAggregator : public CollectingAggregator {
 public:
  KrumAggregator(const ModelState& global, int byzantine, int select,
                 std::set<std::string> local_tensors)
      : CollectingAggregator(global),
        byzantine_(byzantine),
        select_(select),
        local_tensors_(std::move(local_tensors)) {}

 protected:
  Status Combine(const std::vector<Update>& updates, ModelState* out) override {
    const int n = static_cast<int>(updates.size());
    const int64_t needed = 2 * static_cast<int64_t>(byzantine_) + 2;
    if (n <= needed) {
      return FailedPreconditionError(
          "krum with strategy.krum_byzantine = " + std::to_string(byzantine_) +
          " needs more than 2f + 2 = " + std::to_string(needed) + " updates, got " +
          std::to_string(n));
    }
    if (select_ > n) {
      return FailedPreconditionError("krum: strategy.krum_select = " + std::to_string(select_) +
                                     " exceeds the " + std::to_string(n) + " updates received");
    }
    const std::vector<double> dist = PairwiseSquaredDistances(updates, *out);
    const int neighbours = n - byzantine_ - 2;
    std::vector<double> score(n), row(n - 1);
    for (int i = 0; i < n; ++i) {
      int k = 0;
      for (int j = 0; j < n; ++j) {
        if (j != i) row[k++] = dist[i * n + j];
      }
      std::partial_sort(row.begin(), row.begin() + neighbours, row.end());
      score[i] = std::accumulate(row.begin(), row.begin() + neighbours, 0.0);
    }
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return score[a] < score[b]; });

    const double inv = 1.0 / select_;
    for (size_t t = 0; t < out->num_tensors(); ++t) {
      const TensorSpec& spec = out->manifest()[t];
      if (!IsFloating(spec.dtype)) continue;
      const int64_t numel = spec.numel();
      std::vector<double> sum(numel, 0.0), block(numel);
      for (int s = 0; s < select_; ++s) {
        LoadBlockAsDouble(updates[order[s]].delta.TensorData(t), spec.dtype, 0, numel,
                          block.data());
        for (int64_t i = 0; i < numel; ++i) sum[i] += block[i];
      }
      for (int64_t i = 0; i < numel; ++i) {
        StoreFromDouble(sum[i] * inv, spec.dtype, i, out->TensorData(t));
      }
    }
    return OkStatus();
  }

 private:
  // dist[i * n + j] = ‖Δ_i − Δ_j‖² over the floating, non-local tensors, in double.
  std::vector<double> PairwiseSquaredDistances(const std::vector<Update>& updates,
                                               const ModelState& layout) const {
    constexpr int64_t kBlock = 1024;
    const size_t n = updates.size();
    std::vector<double> dist(n * n, 0.0), block(n * kBlock);
    for (size_t t = 0; t < layout.num_tensors(); ++t) {
      const TensorSpec& spec = layout.manifest()[t];
      if (!IsAggregated(spec, local_tensors_)) continue;
      const int64_t numel = spec.numel();
      for (int64_t start = 0; start < numel; start += kBlock) {
        const int64_t count = std::min(kBlock, numel - start);
        for (size_t s = 0; s < n; ++s) {
          LoadBlockAsDouble(updates[s].delta.TensorData(t), spec.dtype, start, count,
                            &block[s * kBlock]);
        }
        for (size_t i = 0; i < n; ++i) {
          for (size_t j = i + 1; j < n; ++j) {
            const double* a = &block[i * kBlock];
            const double* b = &block[j * kBlock];
            double sq = 0;
            for (int64_t k = 0; k < count; ++k) sq += (a[k] - b[k]) * (a[k] - b[k]);
            dist[i * n + j] += sq;
            dist[j * n + i] += sq;
          }
        }
      }
    }
    return dist;
  }

  const int byzantine_;
  const int select_;
  const std::set<std::string> local_tensors_;
};

class Krum : public AddDeltaStrategy {
 public:
  Krum(int byzantine, int select) : byzantine_(byzantine), select_(select) {}

  std::string name() const override { return "krum"; }
  bool IsLinear() const override { return false; }
  std::unique_ptr<Aggregator> NewAggregator(const ModelState& global) const override {
    return std::make_unique<KrumAggregator>(global, byzantine_, select_, local_tensors_);
  }

 private:
  const int byzantine_;
  const int select_;
};

}  // namespace

StatusOr<std::unique_ptr<Strategy>> MakeKrum(const StrategyConfig& config) {
  DF_RETURN_IF_ERROR(CheckParam(config.krum_byzantine >= 0, "krum_byzantine", "an integer >= 0",
                                config.krum_byzantine));
  DF_RETURN_IF_ERROR(
      CheckParam(config.krum_select >= 1, "krum_select", "an integer >= 1", config.krum_select));
  return std::unique_ptr<Strategy>(
      std::make_unique<Krum>(config.krum_byzantine, config.krum_select));
}

}  // namespace dermfed::coordinator
