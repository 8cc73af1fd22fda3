#include "coordinator/strategies/weighted_mean_aggregator.h"

#include <limits>
#include <utility>

#include "coordinator/strategies/tensor_ops.h"

namespace dermfed::coordinator {

WeightedMeanAggregator::WeightedMeanAggregator(const ModelState& global) {
  StatusOr<ModelState> sum = ModelState::Create(global.manifest());
  if (!sum.ok()) {
    init_status_ = Annotate(sum.status(), "weighted-mean aggregator");
    return;
  }
  sum_ = std::move(sum).value();
  half_sums_.resize(sum_.num_tensors());
  for (size_t t = 0; t < sum_.num_tensors(); ++t) {
    const TensorSpec& spec = sum_.manifest()[t];
    if (spec.dtype == DType::kFloat16 || spec.dtype == DType::kBFloat16) {
      half_sums_[t].assign(static_cast<size_t>(spec.numel()), 0.0f);
    }
  }
}

Status WeightedMeanAggregator::Fold(const std::string& site, int64_t num_examples,
                                    const ModelState& delta) {
  DF_RETURN_IF_ERROR(init_status_);
  if (finished_) return FailedPreconditionError("site " + site + ": round already finished");
  if (sites_.count(site) != 0) {
    return InvalidArgumentError("site " + site + ": already folded an update this round");
  }
  // Every check comes before the first write, so a refused update leaves no trace.
  DF_RETURN_IF_ERROR(ValidateUpdate(sum_, site, num_examples, delta));
  if (num_examples > std::numeric_limits<int64_t>::max() - total_examples_) {
    return InvalidArgumentError("site " + site + ": num_examples " + std::to_string(num_examples) +
                                " overflows the round's total");
  }

  const float wf = static_cast<float>(num_examples);
  const double wd = static_cast<double>(num_examples);
  for (size_t t = 0; t < sum_.num_tensors(); ++t) {
    const TensorSpec& spec = sum_.manifest()[t];
    const size_t n = static_cast<size_t>(spec.numel());
    uint8_t* acc = sum_.TensorData(t);
    const uint8_t* x = delta.TensorData(t);
    switch (spec.dtype) {
      case DType::kFloat32:
        AxpyFloat(reinterpret_cast<float*>(acc), reinterpret_cast<const float*>(x), wf, n);
        break;
      case DType::kFloat64:
        AxpyDouble(reinterpret_cast<double*>(acc), reinterpret_cast<const double*>(x), wd, n);
        break;
      case DType::kFloat16:
        AxpyHalf(half_sums_[t].data(), reinterpret_cast<const uint16_t*>(x), wf, n);
        break;
      case DType::kBFloat16:
        AxpyBFloat16(half_sums_[t].data(), reinterpret_cast<const uint16_t*>(x), wf, n);
        break;
      default:  // integer and bool tensors are not aggregated
        break;
    }
  }
  total_examples_ += num_examples;
  sites_.insert(site);
  return OkStatus();
}

StatusOr<ModelState> WeightedMeanAggregator::Finish() {
  DF_RETURN_IF_ERROR(init_status_);
  if (finished_) return FailedPreconditionError("Finish was already called for this round");
  if (sites_.empty()) return FailedPreconditionError("no update was folded this round");
  finished_ = true;

  const double inv = 1.0 / static_cast<double>(total_examples_);
  for (size_t t = 0; t < sum_.num_tensors(); ++t) {
    const TensorSpec& spec = sum_.manifest()[t];
    const size_t n = static_cast<size_t>(spec.numel());
    uint8_t* acc = sum_.TensorData(t);
    switch (spec.dtype) {
      case DType::kFloat32:
        ScaleFloat(reinterpret_cast<float*>(acc), static_cast<float>(inv), n);
        break;
      case DType::kFloat64:
        ScaleDouble(reinterpret_cast<double*>(acc), inv, n);
        break;
      case DType::kFloat16:
      case DType::kBFloat16:
        for (size_t i = 0; i < n; ++i) StoreFromDouble(half_sums_[t][i] * inv, spec.dtype, i, acc);
        half_sums_[t] = {};
        break;
      default:  // never written: zeros
        break;
    }
  }
  return std::move(sum_);
}

}  // namespace dermfed::coordinator
