// Fixed-point encoding of model updates in the ring Z_{2^32}, where secure aggregation adds
// masks that wrap around and cancel. Each value is clipped to [-clip, clip], multiplied by
// `scale`, rounded to the nearest integer (ties to even) and stored as a two's complement
// uint32. Summing the encodings mod 2^32 and reading the sum as an int32 gives the integer
// sum exactly, provided the true sum stays inside int32: ChooseScale picks a scale for which
// it always does.
//
// Rounding error: each site's value is off by at most 0.5/scale, so a coordinate of the
// dequantized sum of n_sites encodings is within n_sites * 0.5 / scale of the sum of the
// clipped values (plus the float rounding of the result, |sum| * 2^-24).
//
// Weighted sums: if a site contributes w * x with 0 <= w <= max_weight, it quantizes w * x
// with clip = max_weight * clip, and ChooseScale(clip, max_sites, max_weight) still holds.
//
// Thread-safe: free functions with no shared state.
#ifndef DERMFED_COMMON_CRYPTO_FIXED_POINT_H_
#define DERMFED_COMMON_CRYPTO_FIXED_POINT_H_

#include <cstddef>
#include <cstdint>

#include "common/status.h"

namespace dermfed::crypto {

// The largest power of two `scale` with max_sites * (max_weight * clip * scale + 0.5) < 2^31:
// the sum of max_sites encodings, each at most max_weight * clip in magnitude before scaling
// and rounding, cannot overflow a signed 32-bit integer. InvalidArgument on a non-positive or
// non-finite argument, or when even scale = 1 would not fit.
StatusOr<double> ChooseScale(float clip, int max_sites, double max_weight);

// out[i] = round(clamp(x[i], -clip, clip) * scale) mod 2^32. +-inf clip to +-clip; a NaN is
// refused (InvalidArgument naming its index; `out` is then partly written).
// REQUIRES: clip > 0 and scale > 0, finite, clip * scale <= 2^31 - 1 (else InvalidArgument).
Status Quantize(const float* x, size_t n, float clip, double scale, uint32_t* out);

// out[i] = int32(sum[i]) / scale.
// REQUIRES: scale > 0 and finite (else InvalidArgument).
Status Dequantize(const uint32_t* sum, size_t n, double scale, float* out);

// acc[i] += v[i] mod 2^32. A plain loop the compiler vectorizes.
void AddMod32(uint32_t* acc, const uint32_t* v, size_t n);

}  // namespace dermfed::crypto

#endif  // DERMFED_COMMON_CRYPTO_FIXED_POINT_H_
