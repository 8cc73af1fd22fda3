#include "coordinator/strategies/collecting_aggregator.h"

#include <cstring>
#include <utility>

namespace dermfed::coordinator {

CollectingAggregator::CollectingAggregator(const ModelState& global) {
  StatusOr<ModelState> out = ModelState::Create(global.manifest());
  if (!out.ok()) {
    init_status_ = Annotate(out.status(), "collecting aggregator");
    return;
  }
  out_ = std::move(out).value();
}

Status CollectingAggregator::Fold(const std::string& site, int64_t num_examples,
                                  const ModelState& delta) {
  DF_RETURN_IF_ERROR(init_status_);
  if (finished_) return FailedPreconditionError("site " + site + ": round already finished");
  for (const Update& u : updates_) {
    if (u.site == site) {
      return InvalidArgumentError("site " + site + ": already folded an update this round");
    }
  }
  DF_RETURN_IF_ERROR(ValidateUpdate(out_, site, num_examples, delta));
  updates_.push_back(Update{site, num_examples, delta.Clone()});
  return OkStatus();
}

StatusOr<ModelState> CollectingAggregator::Finish() {
  DF_RETURN_IF_ERROR(init_status_);
  if (finished_) return FailedPreconditionError("Finish was already called for this round");
  if (updates_.empty()) return FailedPreconditionError("no update was folded this round");
  finished_ = true;
  Status combined = Combine(updates_, &out_);
  updates_.clear();
  updates_.shrink_to_fit();
  DF_RETURN_IF_ERROR(combined);
  return std::move(out_);
}

void LoadBlockAsDouble(const uint8_t* data, DType dtype, int64_t start, int64_t count,
                       double* out) {
  switch (dtype) {
    case DType::kFloat32: {
      const auto* p = reinterpret_cast<const float*>(data) + start;
      for (int64_t i = 0; i < count; ++i) out[i] = p[i];
      return;
    }
    case DType::kFloat64:
      std::memcpy(out, data + start * 8, static_cast<size_t>(count) * 8);
      return;
    default:
      for (int64_t i = 0; i < count; ++i) out[i] = LoadAsDouble(data, dtype, start + i);
      return;
  }
}

}  // namespace dermfed::coordinator
