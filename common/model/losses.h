// The DualRefNet loss, built from one site's own class counts:
//   L = CE_w(logits, y) + λ_sr · L1(SR, HR) + λ_cf · Σ_c (n_c / n_max) · ‖W_c‖²
// with class weights w_c = N / (K · n_c) (N = Σ n_c, K = number of classes; a class with no
// samples gets weight 0), and W_c the classifier's row for class c. Frequent classes are
// penalised more, so the classifier does not drift towards them; in the federation each site
// uses its own counts ("site-specific class-frequency regularization").
//
// Thread-compatible.
#ifndef DERMFED_COMMON_MODEL_LOSSES_H_
#define DERMFED_COMMON_MODEL_LOSSES_H_

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "common/model/dualrefnet.h"
#include "common/status.h"

namespace dermfed::model {

struct LossConfig {
  double lambda_sr = 0.1;    // 0 switches the super-resolution term off
  double lambda_cf = 1e-3;   // 0 switches the class-frequency regularizer off
  bool weighted_ce = true;   // false: plain cross-entropy
};

// w_c = N / (K · n_c), 0 where n_c == 0. Float32, length K.
torch::Tensor ClassWeights(const std::vector<int64_t>& counts);

// λ · Σ_c (n_c / n_max) · ‖W_c‖², W = classifier weight (K x D). Differentiable in W.
torch::Tensor ClassFrequencyPenalty(const torch::Tensor& classifier_weight,
                                    const std::vector<int64_t>& counts, double lambda);

struct LossTerms {
  torch::Tensor total;
  torch::Tensor ce;  // unscaled
  torch::Tensor sr;  // unscaled L1; zero when not computed
  torch::Tensor cf;  // already multiplied by λ_cf
};

class DualRefNetLoss {
 public:
  // REQUIRES: counts.size() == the model's number of classes, some count > 0.
  static StatusOr<DualRefNetLoss> Create(std::vector<int64_t> class_counts, LossConfig config);

  // `image` is the full-resolution input the SR output is compared to.
  LossTerms operator()(DualRefNetImpl& net, const DualRefNetOutput& out,
                       const torch::Tensor& labels, const torch::Tensor& image) const;

  const std::vector<int64_t>& class_counts() const { return counts_; }
  const LossConfig& config() const { return config_; }

 private:
  DualRefNetLoss(std::vector<int64_t> counts, LossConfig config);
  std::vector<int64_t> counts_;
  LossConfig config_;
  torch::Tensor weights_;
};

}  // namespace dermfed::model

#endif  // DERMFED_COMMON_MODEL_LOSSES_H_
