// The per-row image transforms: exact normalization, identity resize, seeded augmentation.
#include "client/image/transforms.h"

#include <gtest/gtest.h>

#include <vector>

namespace dermfed::client {
namespace {

Image Solid(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  Image img;
  img.width = w;
  img.height = h;
  for (int i = 0; i < w * h; ++i) img.rgb.insert(img.rgb.end(), {r, g, b});
  return img;
}

Image Pattern(int w, int h) {
  Image img;
  img.width = w;
  img.height = h;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      img.rgb.insert(img.rgb.end(), {static_cast<uint8_t>(x * 7), static_cast<uint8_t>(y * 5),
                                     static_cast<uint8_t>((x ^ y) * 3)});
  return img;
}

TEST(TransformsTest, EvalTransformNormalizesWithImageNetStatistics) {
  Image img = Solid(40, 30, 255, 0, 128);
  AugmentConfig eval;
  eval.enabled = false;
  Rng rng = RowRng(1, 0, 0);
  std::vector<float> out(3 * 16 * 16);
  TransformToTensor(img, 16, eval, rng, out.data());
  EXPECT_NEAR(out[0], (1.0f - 0.485f) / 0.229f, 1e-5);
  EXPECT_NEAR(out[256], (0.0f - 0.456f) / 0.224f, 1e-5);
  EXPECT_NEAR(out[512 + 100], (128 / 255.0f - 0.406f) / 0.225f, 1e-5);
}

TEST(TransformsTest, ResizeToTheSameSizeIsIdentity) {
  Image img = Pattern(24, 24);
  Image r = ResizeCrop(img, 0, 0, 24, 24, 24);
  EXPECT_EQ(r.rgb, img.rgb);
}

TEST(TransformsTest, AugmentationIsDeterministicPerSeedEpochAndRow) {
  Image img = Pattern(50, 40);
  AugmentConfig train;
  std::vector<float> a(3 * 32 * 32), b(a.size()), c(a.size());
  Rng r1 = RowRng(7, 2, 11), r2 = RowRng(7, 2, 11), r3 = RowRng(7, 3, 11);
  TransformToTensor(img, 32, train, r1, a.data());
  TransformToTensor(img, 32, train, r2, b.data());
  TransformToTensor(img, 32, train, r3, c.data());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c) << "another epoch must draw another augmentation";
}

TEST(TransformsTest, AugmentedValuesStayInTheNormalizedRange) {
  Image img = Pattern(64, 48);
  AugmentConfig train;
  std::vector<float> out(3 * 32 * 32);
  for (uint64_t row = 0; row < 20; ++row) {
    Rng rng = RowRng(1, 1, row);
    TransformToTensor(img, 32, train, rng, out.data());
    for (size_t i = 0; i < out.size(); ++i) {
      const int c = static_cast<int>(i / 1024);
      ASSERT_GE(out[i], (0 - kImageNetMean[c]) / kImageNetStd[c] - 1e-4);
      ASSERT_LE(out[i], (1 - kImageNetMean[c]) / kImageNetStd[c] + 1e-4);
    }
  }
}

}  // namespace
}  // namespace dermfed::client
