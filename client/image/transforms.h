// The image pipeline's per-row work: crop, resize, augment, normalize — into a float CHW
// buffer ready for a batch tensor. Pure C++ (no LibTorch) so loader threads never contend on
// LibTorch's thread pool.
//
// Augmentations are drawn from an Rng seeded per (seed, epoch, row), so an epoch's batches
// are the same whatever the number of threads and their timing.
//
// Thread-safe: functions are pure; an Rng is per call.
#ifndef DERMFED_CLIENT_IMAGE_TRANSFORMS_H_
#define DERMFED_CLIENT_IMAGE_TRANSFORMS_H_

#include <cstdint>
#include <random>

#include "client/image/codec.h"

namespace dermfed::client {

struct AugmentConfig {
  bool enabled = true;        // false: resize only (validation, test, inference)
  double min_crop_area = 0.6; // random resized crop: area fraction in [min, 1]
  double max_aspect = 4.0 / 3.0;
  bool horizontal_flip = true;
  bool vertical_flip = true;   // lesions have no "up"
  double max_rotation_deg = 30;
  double brightness = 0.15;    // colour jitter, each a ± fraction
  double contrast = 0.15;
  double saturation = 0.15;
};

// ImageNet statistics, as torchvision's pretrained backbones expect.
inline constexpr float kImageNetMean[3] = {0.485f, 0.456f, 0.406f};
inline constexpr float kImageNetStd[3] = {0.229f, 0.224f, 0.225f};

using Rng = std::mt19937_64;
Rng RowRng(uint64_t seed, uint64_t epoch, uint64_t row);

// Bilinear resize of `src` (cropped to [x0, x0 + cw) x [y0, y0 + ch)) to size x size.
Image ResizeCrop(const Image& src, double x0, double y0, double cw, double ch, int size);

// Crops/resizes `src` to size x size, augments it when config.enabled, and writes the
// normalized float image (3 x size x size, CHW) to `out`.
void TransformToTensor(const Image& src, int size, const AugmentConfig& config, Rng& rng,
                       float* out);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_IMAGE_TRANSFORMS_H_
