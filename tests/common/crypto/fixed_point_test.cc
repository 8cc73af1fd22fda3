#include "common/crypto/fixed_point.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace dermfed::crypto {
namespace {

TEST(FixedPointTest, ChooseScaleIsTheLargestPowerOfTwoThatCannotOverflow) {
  // 10 sites x clip 1: 2^31 / 10 = 214,748,364.8, so 2^27 (2^28 * 10 > 2^31).
  auto scale = ChooseScale(1.0f, 10, 1.0);
  ASSERT_TRUE(scale.ok()) << scale.status();
  EXPECT_EQ(*scale, std::ldexp(1.0, 27));
  // One site, clip 1: 2^31 itself would overflow, so 2^30.
  scale = ChooseScale(1.0f, 1, 1.0);
  ASSERT_TRUE(scale.ok()) << scale.status();
  EXPECT_EQ(*scale, std::ldexp(1.0, 30));
  // Weights count like extra sites.
  scale = ChooseScale(0.5f, 4, 8.0);
  ASSERT_TRUE(scale.ok()) << scale.status();
  EXPECT_EQ(*scale, std::ldexp(1.0, 26));
}

TEST(FixedPointTest, ChooseScaleRefusesBadArguments) {
  EXPECT_FALSE(ChooseScale(0.0f, 10, 1.0).ok());
  EXPECT_FALSE(ChooseScale(-1.0f, 10, 1.0).ok());
  EXPECT_FALSE(ChooseScale(std::numeric_limits<float>::infinity(), 10, 1.0).ok());
  EXPECT_FALSE(ChooseScale(1.0f, 0, 1.0).ok());
  EXPECT_FALSE(ChooseScale(1.0f, 10, 0.0).ok());
  EXPECT_FALSE(ChooseScale(1e9f, 10, 1.0).ok()) << "not even scale 1 fits";
}

TEST(FixedPointTest, SumOfTenSitesDequantizesWithinTheRoundingBound) {
  constexpr int kSites = 10;
  constexpr size_t kCount = 100'000;
  constexpr float kClip = 0.25f;
  auto scale = ChooseScale(kClip, kSites, 1.0);
  ASSERT_TRUE(scale.ok()) << scale.status();
  std::mt19937 rng(7);
  // Mostly inside the clip range, some outside it so clipping is exercised too.
  std::uniform_real_distribution<float> dist(-0.3f, 0.3f);
  std::vector<uint32_t> acc(kCount, 0), encoded(kCount);
  std::vector<double> expected(kCount, 0.0);
  std::vector<float> x(kCount);
  for (int site = 0; site < kSites; ++site) {
    for (size_t i = 0; i < kCount; ++i) {
      x[i] = dist(rng);
      expected[i] += std::clamp(x[i], -kClip, kClip);
    }
    ASSERT_TRUE(Quantize(x.data(), kCount, kClip, *scale, encoded.data()).ok());
    AddMod32(acc.data(), encoded.data(), kCount);
  }
  std::vector<float> sum(kCount);
  ASSERT_TRUE(Dequantize(acc.data(), kCount, *scale, sum.data()).ok());
  const double bound = kSites * 0.5 / *scale;
  for (size_t i = 0; i < kCount; ++i) {
    const double tolerance =
        bound + std::abs(expected[i]) * std::numeric_limits<float>::epsilon();
    ASSERT_NEAR(sum[i], expected[i], tolerance) << "coordinate " << i;
  }
}

TEST(FixedPointTest, NegativeValuesAreTwosComplement) {
  const float x[] = {-1.0f, -0.5f, 0.0f, 0.5f};
  uint32_t out[4];
  ASSERT_TRUE(Quantize(x, 4, 1.0f, 4.0, out).ok());
  EXPECT_EQ(out[0], 0xFFFFFFFCu);  // -4
  EXPECT_EQ(out[1], 0xFFFFFFFEu);  // -2
  EXPECT_EQ(out[2], 0u);
  EXPECT_EQ(out[3], 2u);
  float back[4];
  ASSERT_TRUE(Dequantize(out, 4, 4.0, back).ok());
  EXPECT_EQ(back[0], -1.0f);
  EXPECT_EQ(back[1], -0.5f);
  EXPECT_EQ(back[3], 0.5f);
}

TEST(FixedPointTest, ValuesBeyondTheClipSaturate) {
  const float inf = std::numeric_limits<float>::infinity();
  const float x[] = {5.0f, -5.0f, inf, -inf};
  uint32_t out[4];
  ASSERT_TRUE(Quantize(x, 4, 1.0f, 1024.0, out).ok());
  EXPECT_EQ(static_cast<int32_t>(out[0]), 1024);
  EXPECT_EQ(static_cast<int32_t>(out[1]), -1024);
  EXPECT_EQ(static_cast<int32_t>(out[2]), 1024);
  EXPECT_EQ(static_cast<int32_t>(out[3]), -1024);
}

TEST(FixedPointTest, RoundsToNearestWithTiesToEven) {
  const float x[] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 0.49f, 0.51f, -0.51f};
  uint32_t out[8];
  ASSERT_TRUE(Quantize(x, 8, 4.0f, 1.0, out).ok());
  const int32_t expected[] = {0, 2, 2, 0, -2, 0, 1, -1};
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(static_cast<int32_t>(out[i]), expected[i]) << "x = " << x[i];
  }
}

TEST(FixedPointTest, SumsWrapAroundModTwoToThe32) {
  uint32_t acc[2] = {0xFFFFFFFFu, 5u};
  const uint32_t v[2] = {2u, 0xFFFFFFFBu};  // +2, -5
  AddMod32(acc, v, 2);
  EXPECT_EQ(acc[0], 1u);
  EXPECT_EQ(acc[1], 0u);
}

TEST(FixedPointTest, QuantizeRefusesNaNAndBadParameters) {
  const float x[] = {0.1f, std::numeric_limits<float>::quiet_NaN(), 0.2f};
  uint32_t out[3];
  Status s = Quantize(x, 3, 1.0f, 1024.0, out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("value 1 of 3 is NaN"), absl::string_view::npos) << s;
  EXPECT_FALSE(Quantize(x, 1, 0.0f, 1024.0, out).ok());
  EXPECT_FALSE(Quantize(x, 1, 1.0f, -1.0, out).ok());
  EXPECT_FALSE(Quantize(x, 1, 1.0f, std::ldexp(1.0, 31), out).ok()) << "clip * scale = 2^31";
  EXPECT_FALSE(Dequantize(out, 1, 0.0, nullptr).ok());
}

}  // namespace
}  // namespace dermfed::crypto
