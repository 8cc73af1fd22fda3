#include "common/crypto/fixed_point.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace dermfed::crypto {
namespace {

constexpr double kTwo31 = 2147483648.0;
constexpr double kInt32Max = 2147483647.0;

// Adding and subtracting 1.5 * 2^52 rounds a double with |q| < 2^51 to the nearest integer,
// ties to even, in the default rounding mode: the same result as std::nearbyint, but it
// vectorizes (nearbyint is a libm call). Needs strict IEEE semantics (no -ffast-math); the
// tests pin the ties.
constexpr double kRoundingMagic = 6755399441055744.0;

bool PositiveFinite(double v) { return std::isfinite(v) && v > 0; }

bool Fits(double scale, int max_sites, double per_site) {
  return max_sites * (per_site * scale + 0.5) < kTwo31;
}

}  // namespace

StatusOr<double> ChooseScale(float clip, int max_sites, double max_weight) {
  if (!PositiveFinite(clip)) {
    return InvalidArgumentError(absl::StrCat("fixed point: clip ", clip, " must be > 0"));
  }
  if (max_sites < 1) {
    return InvalidArgumentError(absl::StrCat("fixed point: max_sites ", max_sites, " must be >= 1"));
  }
  if (!PositiveFinite(max_weight)) {
    return InvalidArgumentError(
        absl::StrCat("fixed point: max_weight ", max_weight, " must be > 0"));
  }
  const double per_site = max_weight * static_cast<double>(clip);
  if (!Fits(1.0, max_sites, per_site)) {
    return InvalidArgumentError(absl::StrCat(
        "fixed point: ", max_sites, " sites x weight ", max_weight, " x clip ", clip,
        " do not fit a signed 32-bit sum even at scale 1"));
  }
  // Start from the power of two just below 2^31 / (max_sites * per_site) and correct for
  // rounding in either direction; multiplying by powers of two is exact.
  int exponent = 0;
  std::frexp(kTwo31 / (max_sites * per_site), &exponent);
  double scale = std::ldexp(1.0, exponent);
  while (!Fits(scale, max_sites, per_site)) scale /= 2;
  while (Fits(scale * 2, max_sites, per_site)) scale *= 2;
  return scale;
}

Status Quantize(const float* x, size_t n, float clip, double scale, uint32_t* out) {
  if (!PositiveFinite(clip) || !PositiveFinite(scale) ||
      static_cast<double>(clip) * scale > kInt32Max) {
    return InvalidArgumentError(absl::StrCat("fixed point: clip ", clip, " and scale ", scale,
                                             " must be > 0 with clip * scale <= 2^31 - 1"));
  }
  const double c = clip;
  bool saw_nan = false;
  for (size_t i = 0; i < n; ++i) {
    const double v = x[i];
    saw_nan |= v != v;
    // NaN becomes 0 here (converting it to an integer is undefined) and is reported below.
    const double clipped = std::min(std::max(v == v ? v : 0.0, -c), c);
    const double rounded = (clipped * scale + kRoundingMagic) - kRoundingMagic;
    out[i] = static_cast<uint32_t>(static_cast<int32_t>(rounded));
  }
  if (saw_nan) {
    const size_t first = std::find_if(x, x + n, [](float v) { return std::isnan(v); }) - x;
    return InvalidArgumentError(
        absl::StrCat("fixed point: value ", first, " of ", n, " is NaN; refusing to encode it"));
  }
  return OkStatus();
}

Status Dequantize(const uint32_t* sum, size_t n, double scale, float* out) {
  if (!PositiveFinite(scale)) {
    return InvalidArgumentError(absl::StrCat("fixed point: scale ", scale, " must be > 0"));
  }
  for (size_t i = 0; i < n; ++i) {
    out[i] = static_cast<float>(static_cast<int32_t>(sum[i]) / scale);
  }
  return OkStatus();
}

void AddMod32(uint32_t* acc, const uint32_t* v, size_t n) {
  for (size_t i = 0; i < n; ++i) acc[i] += v[i];
}

}  // namespace dermfed::crypto
