// Classification metrics from predicted and true labels (and class probabilities for AUC).
// No LibTorch; used by the site's evaluator and the coordinator's aggregation of
// evaluation results alike.
//
// Thread-compatible.
#ifndef DERMFED_COMMON_METRICS_H_
#define DERMFED_COMMON_METRICS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace dermfed {

// confusion[t][p] = number of rows with true class t predicted as p.
class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int num_classes);

  // Fails naming the row when a label is outside [0, num_classes); then nothing is added.
  Status Add(const std::vector<int64_t>& truth, const std::vector<int64_t>& predicted);
  // Adds `count` rows of true class `truth` predicted as `predicted`, without expanding them
  // (federated evaluation reports counts). Fails when a class is outside [0, num_classes) or
  // the count is negative; then nothing is added.
  Status AddCount(int truth, int predicted, int64_t count);
  // Adds another matrix of the same size (federated evaluation sums sites' matrices).
  Status Merge(const ConfusionMatrix& other);

  int num_classes() const { return k_; }
  int64_t total() const;
  int64_t at(int truth, int predicted) const { return counts_[truth * k_ + predicted]; }

  double Accuracy() const;
  // Recall of class c; NaN when class c has no rows.
  double Sensitivity(int c) const;
  // True-negative rate of class c; NaN when every row is of class c.
  double Specificity(int c) const;
  // NaN when nothing was predicted as c.
  double Precision(int c) const;
  // NaN when precision or sensitivity is NaN; 0 when both are 0.
  double F1(int c) const;
  // Mean sensitivity over the classes that have rows (scikit-learn's balanced accuracy).
  double BalancedAccuracy() const;

 private:
  int k_;
  std::vector<int64_t> counts_;
};

// One-vs-rest ROC AUC of class c from scores (probability of c per row), by the
// Mann-Whitney statistic with ties counted half. NaN when class c has no positive or no
// negative rows.
double OneVsRestAuc(const std::vector<float>& scores, const std::vector<int64_t>& truth, int c);

struct ClassificationReport {
  std::vector<std::string> class_names;
  ConfusionMatrix confusion{2};
  std::vector<double> auc;  // per class; NaN where undefined
  double macro_auc = 0;     // mean over defined per-class AUCs

  // {"accuracy", "balanced_accuracy", "macro_auc", "per_class": {name: {sensitivity,
  // specificity, precision, f1, auc, support}}, "confusion_matrix": [[...]], "num_rows"}.
  // NaN is written as null.
  std::string ToJson() const;
};

// JSON text of a number (null for NaN/Inf) and of a string (quoted, escaped); shared by every
// place that writes metrics as JSON.
std::string JsonNumber(double v);
std::string JsonString(const std::string& s);

// probabilities: rows x K, row-major. Errors name the offending row.
StatusOr<ClassificationReport> Evaluate(const std::vector<std::string>& class_names,
                                        const std::vector<int64_t>& truth,
                                        const std::vector<float>& probabilities);

// A federated evaluation's scores, where the model may have diverged. Rows whose
// probabilities are not all finite cannot be read as a prediction: they are left out of
// `report` and counted in `non_finite_rows`; `loss` is the mean negative log-likelihood of
// the true class over the scored rows (probabilities floored at 1e-12), +Inf when any row
// was left out, NaN when none was scored.
struct ScoredRows {
  ClassificationReport report;
  int64_t scored_rows = 0;
  int64_t non_finite_rows = 0;
  double loss = 0;
};
// probabilities: rows x K, row-major; truth: the rows' classes. Errors (sizes, a class out
// of range) name the offending row.
StatusOr<ScoredRows> ScoreRows(const std::vector<std::string>& class_names,
                               const std::vector<int64_t>& truth,
                               const std::vector<float>& probabilities);

}  // namespace dermfed

#endif  // DERMFED_COMMON_METRICS_H_
