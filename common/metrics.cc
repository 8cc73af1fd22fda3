#include "common/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>

namespace dermfed {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// At least two classes and K probabilities per row.
Status CheckShape(size_t k, size_t rows, size_t probabilities) {
  if (k < 2) return InvalidArgumentError("metrics: need at least 2 classes");
  if (probabilities != rows * k) {
    return InvalidArgumentError("metrics: " + std::to_string(probabilities) +
                                " probabilities for " + std::to_string(rows) + " rows of " +
                                std::to_string(k) + " classes");
  }
  return OkStatus();
}

double Ratio(int64_t num, int64_t den) {
  return den == 0 ? kNaN : static_cast<double>(num) / static_cast<double>(den);
}

}  // namespace

std::string JsonNumber(double v) {
  if (std::isnan(v) || std::isinf(v)) return "null";
  std::ostringstream os;
  os.precision(10);
  os << v;
  return os.str();
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

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

Status ConfusionMatrix::AddCount(int truth, int predicted, int64_t count) {
  if (truth < 0 || truth >= k_ || predicted < 0 || predicted >= k_ || count < 0) {
    return InvalidArgumentError("metrics: " + std::to_string(count) + " rows of label " +
                                std::to_string(truth) + " / prediction " +
                                std::to_string(predicted) + ": outside 0.." +
                                std::to_string(k_ - 1) + " or negative");
  }
  counts_[truth * k_ + predicted] += count;
  return OkStatus();
}

Status ConfusionMatrix::Merge(const ConfusionMatrix& other) {
  if (other.k_ != k_) {
    return InvalidArgumentError("metrics: cannot merge a " + std::to_string(other.k_) +
                                "-class confusion matrix into a " + std::to_string(k_) +
                                "-class one");
  }
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  return OkStatus();
}

int64_t ConfusionMatrix::total() const {
  return std::accumulate(counts_.begin(), counts_.end(), int64_t{0});
}

double ConfusionMatrix::Accuracy() const {
  int64_t correct = 0;
  for (int c = 0; c < k_; ++c) correct += at(c, c);
  return Ratio(correct, total());
}

double ConfusionMatrix::Sensitivity(int c) const {
  int64_t row = 0;
  for (int p = 0; p < k_; ++p) row += at(c, p);
  return Ratio(at(c, c), row);
}

double ConfusionMatrix::Specificity(int c) const {
  int64_t negatives = 0, true_negatives = 0;
  for (int t = 0; t < k_; ++t) {
    if (t == c) continue;
    for (int p = 0; p < k_; ++p) {
      negatives += at(t, p);
      if (p != c) true_negatives += at(t, p);
    }
  }
  return Ratio(true_negatives, negatives);
}

double ConfusionMatrix::Precision(int c) const {
  int64_t col = 0;
  for (int t = 0; t < k_; ++t) col += at(t, c);
  return Ratio(at(c, c), col);
}

double ConfusionMatrix::F1(int c) const {
  const double p = Precision(c), r = Sensitivity(c);
  if (std::isnan(p) || std::isnan(r)) return kNaN;
  return p + r == 0 ? 0.0 : 2 * p * r / (p + r);
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
  return present == 0 ? kNaN : sum / present;
}

double OneVsRestAuc(const std::vector<float>& scores, const std::vector<int64_t>& truth, int c) {
  // Rank-sum (Mann-Whitney U) with average ranks for ties: AUC = (R_pos - P(P+1)/2) / (P N).
  const size_t n = scores.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double rank_sum = 0;
  int64_t pos = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && scores[order[j]] == scores[order[i]]) ++j;
    const double avg_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
    for (size_t k = i; k < j; ++k) {
      if (truth[order[k]] == c) {
        rank_sum += avg_rank;
        ++pos;
      }
    }
    i = j;
  }
  const int64_t neg = static_cast<int64_t>(n) - pos;
  if (pos == 0 || neg == 0) return kNaN;
  return (rank_sum - static_cast<double>(pos) * (pos + 1) / 2.0) /
         (static_cast<double>(pos) * static_cast<double>(neg));
}

StatusOr<ClassificationReport> Evaluate(const std::vector<std::string>& class_names,
                                        const std::vector<int64_t>& truth,
                                        const std::vector<float>& probabilities) {
  const size_t k = class_names.size();
  DF_RETURN_IF_ERROR(CheckShape(k, truth.size(), probabilities.size()));
  std::vector<int64_t> predicted(truth.size());
  for (size_t i = 0; i < truth.size(); ++i) {
    const float* row = &probabilities[i * k];
    for (size_t c = 0; c < k; ++c) {
      if (!std::isfinite(row[c])) {
        return InvalidArgumentError("metrics: row " + std::to_string(i) +
                                    " has a non-finite probability for class " + class_names[c]);
      }
    }
    predicted[i] = std::max_element(row, row + k) - row;
  }
  ClassificationReport report;
  report.class_names = class_names;
  report.confusion = ConfusionMatrix(static_cast<int>(k));
  DF_RETURN_IF_ERROR(report.confusion.Add(truth, predicted));
  std::vector<float> scores(truth.size());
  double sum = 0;
  int defined = 0;
  for (size_t c = 0; c < k; ++c) {
    for (size_t i = 0; i < truth.size(); ++i) scores[i] = probabilities[i * k + c];
    const double auc = OneVsRestAuc(scores, truth, static_cast<int>(c));
    report.auc.push_back(auc);
    if (!std::isnan(auc)) {
      sum += auc;
      ++defined;
    }
  }
  report.macro_auc = defined == 0 ? kNaN : sum / defined;
  return report;
}

std::string ClassificationReport::ToJson() const {
  const ConfusionMatrix& m = confusion;
  std::ostringstream os;
  os << "{\n  \"num_rows\": " << m.total() << ",\n  \"accuracy\": " << JsonNumber(m.Accuracy())
     << ",\n  \"balanced_accuracy\": " << JsonNumber(m.BalancedAccuracy())
     << ",\n  \"macro_auc\": " << JsonNumber(macro_auc) << ",\n  \"per_class\": {";
  for (int c = 0; c < m.num_classes(); ++c) {
    int64_t support = 0;
    for (int p = 0; p < m.num_classes(); ++p) support += m.at(c, p);
    os << (c ? "," : "") << "\n    " << JsonString(class_names[c])
       << ": {\"sensitivity\": " << JsonNumber(m.Sensitivity(c))
       << ", \"specificity\": " << JsonNumber(m.Specificity(c))
       << ", \"precision\": " << JsonNumber(m.Precision(c)) << ", \"f1\": " << JsonNumber(m.F1(c))
       << ", \"auc\": " << JsonNumber(auc[c]) << ", \"support\": " << support << "}";
  }
  os << "\n  },\n  \"class_names\": [";
  for (int c = 0; c < m.num_classes(); ++c) os << (c ? ", " : "") << JsonString(class_names[c]);
  os << "],\n  \"confusion_matrix\": [";
  for (int t = 0; t < m.num_classes(); ++t) {
    os << (t ? ", " : "") << "[";
    for (int p = 0; p < m.num_classes(); ++p) os << (p ? ", " : "") << m.at(t, p);
    os << "]";
  }
  os << "]\n}\n";
  return os.str();
}

StatusOr<ScoredRows> ScoreRows(const std::vector<std::string>& class_names,
                               const std::vector<int64_t>& truth,
                               const std::vector<float>& probabilities) {
  const size_t k = class_names.size();
  DF_RETURN_IF_ERROR(CheckShape(k, truth.size(), probabilities.size()));
  ScoredRows out;
  std::vector<int64_t> kept_truth;
  std::vector<float> kept;
  kept.reserve(probabilities.size());
  double nll = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    const float* row = &probabilities[i * k];
    if (!std::all_of(row, row + k, [](float p) { return std::isfinite(p); })) {
      ++out.non_finite_rows;
      continue;
    }
    if (truth[i] < 0 || truth[i] >= static_cast<int64_t>(k)) {
      return InvalidArgumentError("metrics: row " + std::to_string(i) + " has class " +
                                  std::to_string(truth[i]) + ", outside 0.." +
                                  std::to_string(k - 1));
    }
    kept_truth.push_back(truth[i]);
    kept.insert(kept.end(), row, row + k);
    nll -= std::log(std::max(row[truth[i]], 1e-12f));
  }
  DF_ASSIGN_OR_RETURN(out.report, Evaluate(class_names, kept_truth, kept));
  out.scored_rows = static_cast<int64_t>(kept_truth.size());
  out.loss = out.non_finite_rows > 0 ? INFINITY
             : out.scored_rows > 0   ? nll / static_cast<double>(out.scored_rows)
                                     : NAN;
  return out;
}

}  // namespace dermfed
