// Element-wise kernels and checks the strategies share: which dtypes are aggregated, half and
// bfloat16 conversion, finiteness checks, the fold kernels, and global += delta.
//
// The fold kernels are the coordinator's hot path (one call per tensor per site update):
// plain loops over raw pointers declared non-aliasing so the compiler vectorizes them, with
// no per-element branching. Everything here is stateless and thread-safe.
#ifndef DERMFED_COORDINATOR_STRATEGIES_TENSOR_OPS_H_
#define DERMFED_COORDINATOR_STRATEGIES_TENSOR_OPS_H_

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/model_state.h"
#include "common/status.h"

namespace dermfed::coordinator {

// True for the dtypes strategies aggregate: float32, float64, float16, bfloat16. Integer and
// bool tensors (BatchNorm's num_batches_tracked) are never averaged.
bool IsFloating(DType dtype);

// IEEE binary16 and bfloat16 <-> float32, round to nearest even; NaN stays NaN.
float HalfToFloat(uint16_t bits);
uint16_t FloatToHalf(float value);
float BFloat16ToFloat(uint16_t bits);
uint16_t FloatToBFloat16(float value);

// Index of the first non-finite element of a floating tensor of `numel` elements at `data`,
// or -1 when all are finite (also for non-floating dtypes). Scans in blocks with a
// branch-free inner loop, so it runs at memory speed.
int64_t FirstNonFinite(const uint8_t* data, DType dtype, int64_t numel);

// Element i of a floating tensor, widened to double. Not for hot loops.
double LoadAsDouble(const uint8_t* data, DType dtype, int64_t i);
// Stores `value` as element i of a floating tensor, rounding to its dtype.
void StoreFromDouble(double value, DType dtype, int64_t i, uint8_t* data);

// acc[i] += w * x[i] for i < n. REQUIRES: acc and x do not overlap.
void AxpyFloat(float* __restrict acc, const float* __restrict x, float w, size_t n);
void AxpyDouble(double* __restrict acc, const double* __restrict x, double w, size_t n);
// acc[i] += w * to_float(x[i]) for half and bfloat16 sources.
void AxpyHalf(float* __restrict acc, const uint16_t* __restrict x, float w, size_t n);
void AxpyBFloat16(float* __restrict acc, const uint16_t* __restrict x, float w, size_t n);
// x[i] *= s for i < n.
void ScaleFloat(float* x, float s, size_t n);
void ScaleDouble(double* x, double s, size_t n);

// The checks every Fold makes before touching its accumulator: `delta` has `layout`'s
// names, dtypes and shapes, `num_examples` > 0, and every floating value is finite. Errors
// name the site and, where it applies, the tensor and element.
Status ValidateUpdate(const ModelState& layout, const std::string& site, int64_t num_examples,
                      const ModelState& delta);

// Checks that an aggregate delta fits `global` and that every floating tensor that Apply
// will use is finite; `what` prefixes the error ("aggregate delta").
Status ValidateAggregate(const ModelState& aggregate, const ModelState& global,
                         const std::set<std::string>& local_tensors);

// global <- global + delta for every floating tensor not in `local_tensors`; integer and
// local tensors keep their global values. Validates first, so on error `global` is unchanged.
Status AddDelta(const ModelState& delta, const std::set<std::string>& local_tensors,
                ModelState* global);

// Sets every negative element of the BatchNorm running variances (floating tensors whose
// name ends in "running_var") to 0 and returns how many it set; the names of the tensors it
// changed go to `tensors` when given. Each site's variance is positive, but central or
// distributed DP noise, or a server optimizer's step (FedAdam, FedYogi), can take their
// average below zero, and BatchNorm would then take the square root of a negative number:
// NaN for every prediction. Clamping is post-processing of the noised model, so it costs no
// privacy.
int64_t ClampRunningVariances(ModelState* state, std::vector<std::string>* tensors = nullptr);

// True when tensor `spec` is one a strategy updates: floating and not site-local (FedBN).
inline bool IsAggregated(const TensorSpec& spec, const std::set<std::string>& local_tensors) {
  return IsFloating(spec.dtype) && local_tensors.count(spec.name) == 0;
}

}  // namespace dermfed::coordinator

#endif  // DERMFED_COORDINATOR_STRATEGIES_TENSOR_OPS_H_
