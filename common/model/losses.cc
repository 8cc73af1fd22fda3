#include "common/model/losses.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>

namespace dermfed::model {

torch::Tensor ClassWeights(const std::vector<int64_t>& counts) {
  const double n = std::accumulate(counts.begin(), counts.end(), 0.0);
  const double k = static_cast<double>(counts.size());
  std::vector<float> w(counts.size(), 0.0f);
  for (size_t c = 0; c < counts.size(); ++c) {
    if (counts[c] > 0) w[c] = static_cast<float>(n / (k * static_cast<double>(counts[c])));
  }
  return torch::tensor(w, torch::kFloat32);
}

torch::Tensor ClassFrequencyPenalty(const torch::Tensor& classifier_weight,
                                    const std::vector<int64_t>& counts, double lambda) {
  TORCH_CHECK(classifier_weight.dim() == 2 &&
                  classifier_weight.size(0) == static_cast<int64_t>(counts.size()),
              "classifier weight ", classifier_weight.sizes(), " does not match ", counts.size(),
              " class counts");
  const int64_t n_max = counts.empty() ? 0 : *std::max_element(counts.begin(), counts.end());
  std::vector<float> freq(counts.size(), 0.0f);
  if (n_max > 0) {
    for (size_t c = 0; c < counts.size(); ++c) {
      freq[c] = static_cast<float>(static_cast<double>(counts[c]) / static_cast<double>(n_max));
    }
  }
  torch::Tensor f = torch::tensor(freq, classifier_weight.options().requires_grad(false));
  return lambda * (f * classifier_weight.pow(2).sum(1)).sum();
}

StatusOr<DualRefNetLoss> DualRefNetLoss::Create(std::vector<int64_t> counts, LossConfig config) {
  if (counts.size() < 2) return InvalidArgumentError("need class counts for at least 2 classes");
  for (size_t c = 0; c < counts.size(); ++c) {
    if (counts[c] < 0) {
      return InvalidArgumentError("class count " + std::to_string(c) + " is negative");
    }
  }
  if (std::accumulate(counts.begin(), counts.end(), int64_t{0}) == 0) {
    return InvalidArgumentError("all class counts are zero: the site has no training rows");
  }
  if (config.lambda_sr < 0 || config.lambda_cf < 0) {
    return InvalidArgumentError("lambda_sr and lambda_cf must be >= 0");
  }
  return DualRefNetLoss(std::move(counts), config);
}

DualRefNetLoss::DualRefNetLoss(std::vector<int64_t> counts, LossConfig config)
    : counts_(std::move(counts)), config_(config), weights_(ClassWeights(counts_)) {}

LossTerms DualRefNetLoss::operator()(DualRefNetImpl& net, const DualRefNetOutput& out,
                                     const torch::Tensor& labels,
                                     const torch::Tensor& image) const {
  namespace F = torch::nn::functional;
  LossTerms t;
  auto ce_options = F::CrossEntropyFuncOptions();
  if (config_.weighted_ce) ce_options.weight(weights_.to(out.logits.device()));
  t.ce = F::cross_entropy(out.logits, labels, ce_options);
  t.total = t.ce;
  if (config_.lambda_sr > 0 && out.sr.defined()) {
    t.sr = F::l1_loss(out.sr, image);
    t.total = t.total + config_.lambda_sr * t.sr;
  } else {
    t.sr = torch::zeros({}, out.logits.options());
  }
  if (config_.lambda_cf > 0) {
    t.cf = ClassFrequencyPenalty(net.classifier()->weight, counts_, config_.lambda_cf);
    t.total = t.total + t.cf;
  } else {
    t.cf = torch::zeros({}, out.logits.options());
  }
  return t;
}

}  // namespace dermfed::model
