#include "client/image/transforms.h"

#include <algorithm>
#include <cmath>

namespace dermfed::client {
namespace {

// Bilinear sample of all three channels at (x, y) in pixel-centre coordinates, clamped to the
// edge. The neighbours and weights are worked out once per pixel, not once per channel.
inline void Sample3(const Image& img, float x, float y, float out[3]) {
  x = std::clamp(x, 0.0f, static_cast<float>(img.width - 1));
  y = std::clamp(y, 0.0f, static_cast<float>(img.height - 1));
  const int x0 = static_cast<int>(x), y0 = static_cast<int>(y);
  const int x1 = std::min(x0 + 1, img.width - 1), y1 = std::min(y0 + 1, img.height - 1);
  const float fx = x - x0, fy = y - y0;
  const size_t row0 = static_cast<size_t>(y0) * img.width, row1 = static_cast<size_t>(y1) * img.width;
  const uint8_t* p00 = &img.rgb[(row0 + x0) * 3];
  const uint8_t* p10 = &img.rgb[(row0 + x1) * 3];
  const uint8_t* p01 = &img.rgb[(row1 + x0) * 3];
  const uint8_t* p11 = &img.rgb[(row1 + x1) * 3];
  for (int c = 0; c < 3; ++c) {
    out[c] = (static_cast<float>(p00[c]) * (1 - fx) + static_cast<float>(p10[c]) * fx) * (1 - fy) +
             (static_cast<float>(p01[c]) * (1 - fx) + static_cast<float>(p11[c]) * fx) * fy;
  }
}

}  // namespace

Rng RowRng(uint64_t seed, uint64_t epoch, uint64_t row) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(epoch), static_cast<uint32_t>(row),
                    static_cast<uint32_t>(row >> 32)};
  return Rng(seq);
}

Image ResizeCrop(const Image& src, double x0, double y0, double cw, double ch, int size) {
  Image out;
  out.width = out.height = size;
  out.rgb.resize(static_cast<size_t>(size) * size * 3);
  const double sx = cw / size, sy = ch / size;
  for (int y = 0; y < size; ++y) {
    const float fy = static_cast<float>(y0 + (y + 0.5) * sy - 0.5);
    for (int x = 0; x < size; ++x) {
      const float fx = static_cast<float>(x0 + (x + 0.5) * sx - 0.5);
      uint8_t* p = &out.rgb[(static_cast<size_t>(y) * size + x) * 3];
      float v[3];
      Sample3(src, fx, fy, v);
      for (int c = 0; c < 3; ++c) {
        p[c] = static_cast<uint8_t>(std::clamp(v[c] + 0.5f, 0.0f, 255.0f));
      }
    }
  }
  return out;
}

void TransformToTensor(const Image& src, int size, const AugmentConfig& config, Rng& rng,
                       float* out) {
  const size_t plane = static_cast<size_t>(size) * size;
  if (!config.enabled) {
    Image r = ResizeCrop(src, 0, 0, src.width, src.height, size);
    for (size_t i = 0; i < plane; ++i) {
      for (int c = 0; c < 3; ++c) {
        out[c * plane + i] = (r.rgb[i * 3 + c] / 255.0f - kImageNetMean[c]) / kImageNetStd[c];
      }
    }
    return;
  }
  std::uniform_real_distribution<double> u(0.0, 1.0);
  // Random resized crop (torchvision's recipe, without its fallback loop).
  const double area = src.width * static_cast<double>(src.height) *
                      (config.min_crop_area + (1 - config.min_crop_area) * u(rng));
  const double log_ratio = std::log(config.max_aspect) * (2 * u(rng) - 1);
  double cw = std::sqrt(area * std::exp(log_ratio));
  double ch = std::sqrt(area / std::exp(log_ratio));
  cw = std::min<double>(cw, src.width);
  ch = std::min<double>(ch, src.height);
  const double x0 = (src.width - cw) * u(rng);
  const double y0 = (src.height - ch) * u(rng);

  const bool hflip = config.horizontal_flip && u(rng) < 0.5;
  const bool vflip = config.vertical_flip && u(rng) < 0.5;
  const double angle = config.max_rotation_deg * (2 * u(rng) - 1) * M_PI / 180.0;
  const float cos_a = static_cast<float>(std::cos(angle)), sin_a = static_cast<float>(std::sin(angle));
  const float brightness = static_cast<float>(1 + config.brightness * (2 * u(rng) - 1));
  const float contrast = static_cast<float>(1 + config.contrast * (2 * u(rng) - 1));
  const float saturation = static_cast<float>(1 + config.saturation * (2 * u(rng) - 1));

  // One pass: output pixel -> rotate/flip about the centre -> crop coordinates -> source.
  const float half = size / 2.0f;
  const float sx = static_cast<float>(cw / size), sy = static_cast<float>(ch / size);
  float mean_grey = 0;
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      float dx = x + 0.5f - half, dy = y + 0.5f - half;
      if (hflip) dx = -dx;
      if (vflip) dy = -dy;
      const float rx = cos_a * dx - sin_a * dy + half, ry = sin_a * dx + cos_a * dy + half;
      const float fx = static_cast<float>(x0) + rx * sx - 0.5f;
      const float fy = static_cast<float>(y0) + ry * sy - 0.5f;
      float rgb[3];
      Sample3(src, fx, fy, rgb);
      for (int c = 0; c < 3; ++c) rgb[c] = rgb[c] / 255.0f * brightness;
      const float grey = 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2];
      mean_grey += grey;
      const size_t i = static_cast<size_t>(y) * size + x;
      for (int c = 0; c < 3; ++c) out[c * plane + i] = grey + (rgb[c] - grey) * saturation;
    }
  }
  mean_grey /= static_cast<float>(plane);
  for (int c = 0; c < 3; ++c) {
    float* p = out + c * plane;
    for (size_t i = 0; i < plane; ++i) {
      const float v = std::clamp(mean_grey + (p[i] - mean_grey) * contrast, 0.0f, 1.0f);
      p[i] = (v - kImageNetMean[c]) / kImageNetStd[c];
    }
  }
}

}  // namespace dermfed::client
