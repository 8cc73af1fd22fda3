#include "coordinator/update_check.h"

#include <cmath>
#include <cstring>

namespace dermfed::coordinator {

Status CheckUpdateValues(const ModelState& delta, double max_norm, const std::string& what) {
  double sum_sq = 0;
  for (size_t i = 0; i < delta.num_tensors(); ++i) {
    const TensorSpec& t = delta.manifest()[i];
    if (t.dtype != DType::kFloat32) continue;
    const float* v = reinterpret_cast<const float*>(delta.TensorData(i));
    const int64_t n = t.numel();
    double s = 0;
    for (int64_t j = 0; j < n; ++j) s += static_cast<double>(v[j]) * v[j];
    if (!std::isfinite(s)) {
      for (int64_t j = 0; j < n; ++j) {
        if (!std::isfinite(v[j])) {
          return InvalidArgumentError(what + ": tensor '" + t.name + "' holds a non-finite value (" +
                                      std::to_string(v[j]) + ") at element " + std::to_string(j));
        }
      }
      return InvalidArgumentError(what + ": tensor '" + t.name + "' overflows the norm");
    }
    sum_sq += s;
  }
  const double norm = std::sqrt(sum_sq);
  if (max_norm > 0 && norm > max_norm) {
    return InvalidArgumentError(what + ": L2 norm " + std::to_string(norm) +
                                " exceeds the bound " + std::to_string(max_norm) +
                                " (security.max_update_norm)");
  }
  return OkStatus();
}

}  // namespace dermfed::coordinator
