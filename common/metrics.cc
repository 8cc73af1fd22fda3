#include "common/metrics.h"

#include <cmath>
#include <limits>

namespace dermfed {

ConfusionMatrix::ConfusionMatrix(int num_classes)
    : k_(num_classes), counts_(static_cast<size_t>(num_classes) * num_classes, 0) {}

Status ConfusionMatrix::Add(const std::vector<int64_t>& truth,
                            const std::vector<int64_t>& predicted) {
  if (truth.size() != predicted.size()) {
    return InvalidArgumentError("metrics: " + std::to_string(truth.size()) + " labels but " +
                                std::to_string(predicted.size()) + " predictions");
  }
  for (size_t i = 0; i < truth.size(); ++i) {
    if (truth[i] < 0 || truth[i] >= k_ || predicted[i] < 0 || predicted[i] >= k_) {
      return InvalidArgumentError("metrics: row " + std::to_string(i) + " has label " +
                                  std::to_string(truth[i]) + " / prediction " +
                                  std::to_string(predicted[i]) + " outside 0.." +
                                  std::to_string(k_ - 1));
    }
  }
  for (size_t i = 0; i < truth.size(); ++i) ++counts_[truth[i] * k_ + predicted[i]];
  return OkStatus();
}

int64_t ConfusionMatrix::total() const {
  int64_t n = 0;
  for (int64_t c : counts_) n += c;
  return n;
}

double ConfusionMatrix::Accuracy() const {
  const int64_t n = total();
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  int64_t correct = 0;
  for (int c = 0; c < k_; ++c) correct += at(c, c);
  return static_cast<double>(correct) / static_cast<double>(n);
}

double ConfusionMatrix::Sensitivity(int c) const {
  int64_t row = 0;
  for (int p = 0; p < k_; ++p) row += at(c, p);
  if (row == 0) return std::numeric_limits<double>::quiet_NaN();
  return static_cast<double>(at(c, c)) / static_cast<double>(row);
}

double ConfusionMatrix::BalancedAccuracy() const {
  double sum = 0;
  int present = 0;
  for (int c = 0; c < k_; ++c) {
    const double s = Sensitivity(c);
    if (!std::isnan(s)) {
      sum += s;
      ++present;
    }
  }
  return present == 0 ? std::numeric_limits<double>::quiet_NaN() : sum / present;
}

}  // namespace dermfed
