// WeightedMeanAggregator: the streaming aggregator of the linear strategies (FedAvg, FedProx,
// FedAdam/Yogi/Adagrad). It keeps one running sum Σ n_k·Δ_k shaped like the model plus Σ n_k,
// so its memory is O(model) however many sites fold; Finish divides.
//
// float32 and float64 tensors accumulate in their own precision, float16 and bfloat16 ones in
// float32 (in a side buffer); integer and bool tensors are not aggregated and come out of
// Finish as zeros. Each site may fold once per round.
//
// Thread-compatible.
#ifndef DERMFED_COORDINATOR_STRATEGIES_WEIGHTED_MEAN_AGGREGATOR_H_
#define DERMFED_COORDINATOR_STRATEGIES_WEIGHTED_MEAN_AGGREGATOR_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "coordinator/strategy.h"

namespace dermfed::coordinator {

class WeightedMeanAggregator : public Aggregator {
 public:
  // Takes `global`'s layout (not its values). An allocation failure is reported by the
  // first Fold or Finish.
  explicit WeightedMeanAggregator(const ModelState& global);

  Status Fold(const std::string& site, int64_t num_examples, const ModelState& delta) override;
  int num_folded() const override { return static_cast<int>(sites_.size()); }
  StatusOr<ModelState> Finish() override;

  // Σ num_examples over the folded updates.
  int64_t total_examples() const { return total_examples_; }

 private:
  Status init_status_;
  ModelState sum_;                             // the global's layout
  std::vector<std::vector<float>> half_sums_;  // per tensor; sized only for float16/bfloat16
  int64_t total_examples_ = 0;
  std::set<std::string> sites_;
  bool finished_ = false;
};

}  // namespace dermfed::coordinator

#endif  // DERMFED_COORDINATOR_STRATEGIES_WEIGHTED_MEAN_AGGREGATOR_H_
