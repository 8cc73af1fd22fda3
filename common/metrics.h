// Classification metrics from predicted and true labels. No LibTorch; used by the site's
// evaluator and the coordinator's aggregation of evaluation results alike.
//
// Thread-compatible.
#ifndef DERMFED_COMMON_METRICS_H_
#define DERMFED_COMMON_METRICS_H_

#include <cstdint>
#include <vector>

#include "common/status.h"

namespace dermfed {

// confusion[t][p] = number of rows with true class t predicted as p.
class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int num_classes);

  // Fails naming the row when a label is outside [0, num_classes).
  Status Add(const std::vector<int64_t>& truth, const std::vector<int64_t>& predicted);

  int num_classes() const { return k_; }
  int64_t total() const;
  int64_t at(int truth, int predicted) const { return counts_[truth * k_ + predicted]; }

  double Accuracy() const;
  // Recall of class c; NaN when class c has no rows.
  double Sensitivity(int c) const;
  // Mean sensitivity over the classes that have rows (scikit-learn's balanced accuracy).
  double BalancedAccuracy() const;

 private:
  int k_;
  std::vector<int64_t> counts_;
};

}  // namespace dermfed

#endif  // DERMFED_COMMON_METRICS_H_
