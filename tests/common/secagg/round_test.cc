// End-to-end rounds of secure aggregation: n = 5 sites, threshold t = 3, random inputs,
// dropouts at each step. The coordinator's result must be exactly the mod-2^32 sum of the
// surviving inputs, or a clean failure — never a wrong sum.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "common/crypto/fixed_point.h"
#include "tests/common/secagg/simulated_round.h"

namespace dermfed::secagg::testing {
namespace {

constexpr int kSites = 5;
constexpr int kThreshold = 3;
constexpr size_t kLength = 10'007;

// The index of the first difference, or -1; gtest's vector diff is unreadable at this size.
long FirstDifference(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
  if (a.size() != b.size()) return 0;
  auto [ia, ib] = std::mismatch(a.begin(), a.end(), b.begin());
  return ia == a.end() ? -1 : static_cast<long>(ia - a.begin());
}

TEST(SecAggRoundTest, SumsEveryInputWhenNoSiteDropsOut) {
  SimulatedRound round(kSites, kThreshold, kLength);
  auto sum = round.Run();
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(FirstDifference(*sum, round.PlainSum(round.sites)), -1);
  EXPECT_EQ(round.server->u3().size(), 5u);
}

TEST(SecAggRoundTest, SumsAMillionWordVectorExactly) {
  SimulatedRound round(kSites, kThreshold, 1'000'003);
  auto sum = round.Run({}, {}, {"site-2"});
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(FirstDifference(*sum, round.PlainSum(round.AllBut({"site-2"}))), -1);
}

TEST(SecAggRoundTest, SmallestRoundOfTwoSitesWithThresholdTwo) {
  SimulatedRound round(2, 2, kLength);
  auto sum = round.Run();
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(FirstDifference(*sum, round.PlainSum(round.sites)), -1);
}

TEST(SecAggRoundTest, SiteThatMaskedButNeverSentItsInputIsLeftOutOfTheSum) {
  SimulatedRound round(kSites, kThreshold, kLength);
  auto sum = round.Run({}, {}, {"site-3"});
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(round.unmask_request.dropped, std::vector<std::string>{"site-3"});
  EXPECT_EQ(FirstDifference(*sum, round.PlainSum(round.AllBut({"site-3"}))), -1)
      << "the sum over the four survivors";
}

TEST(SecAggRoundTest, NMinusTDropoutsAfterMaskingStillUnmask) {
  SimulatedRound round(kSites, kThreshold, kLength);
  // The first and the last site: one sorts before every survivor, one after, so both
  // signs of pairwise mask removal are exercised.
  const SimulatedRound::Sites dropped = {"site-0", "site-4"};
  auto sum = round.Run({}, {}, dropped);
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(FirstDifference(*sum, round.PlainSum(round.AllBut(dropped))), -1);
}

TEST(SecAggRoundTest, MoreThanNMinusTDropoutsAfterMaskingFailCleanly) {
  SimulatedRound round(kSites, kThreshold, kLength);
  ASSERT_TRUE(round.Advertise().ok());
  ASSERT_TRUE(round.ShareKeys().ok());
  const Status status = round.MaskAndSend({"site-0", "site-2", "site-4"});
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find("only 2 of 5"), absl::string_view::npos) << status;
  EXPECT_NE(status.message().find("threshold 3"), absl::string_view::npos) << status;
  EXPECT_EQ(round.server->Finish().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(SecAggRoundTest, SiteThatNeverSentItsSharesIsExcludedCleanly) {
  SimulatedRound round(kSites, kThreshold, kLength);
  auto sum = round.Run({}, {"site-1"});
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(round.server->u1().size(), 5u);
  EXPECT_EQ(round.server->u2(), round.AllBut({"site-1"}));
  EXPECT_TRUE(round.unmask_request.dropped.empty())
      << "a site outside U2 never masked, so it is not a dropout to unmask";
  EXPECT_EQ(FirstDifference(*sum, round.PlainSum(round.AllBut({"site-1"}))), -1);
}

TEST(SecAggRoundTest, SiteThatNeverAdvertisedIsExcludedCleanly) {
  SimulatedRound round(kSites, kThreshold, kLength);
  auto sum = round.Run({"site-4"});
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(FirstDifference(*sum, round.PlainSum(round.AllBut({"site-4"}))), -1);
}

TEST(SecAggRoundTest, DropoutsAtEveryStepTogether) {
  SimulatedRound round(7, kThreshold, kLength);
  // site-6 never advertises, site-0 never shares, site-3 never sends its masked input and
  // site-1 never answers the unmask request: U3 = {1, 2, 4, 5}, of which 3 answer.
  auto sum = round.Run({"site-6"}, {"site-0"}, {"site-3"}, {"site-1"});
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(FirstDifference(*sum, round.PlainSum({"site-1", "site-2", "site-4", "site-5"})), -1);
}

TEST(SecAggRoundTest, FewerThanThresholdUnmaskResponsesFailCleanlyUntilMoreArrive) {
  SimulatedRound round(kSites, kThreshold, kLength);
  ASSERT_TRUE(round.Advertise().ok());
  ASSERT_TRUE(round.ShareKeys().ok());
  ASSERT_TRUE(round.MaskAndSend({"site-4"}).ok());
  ASSERT_TRUE(round.Unmask({"site-0", "site-1"}).ok());  // only site-2 and site-3 answer
  auto early = round.Finish();
  EXPECT_EQ(early.status().code(), absl::StatusCode::kFailedPrecondition) << early.status();
  EXPECT_NE(early.status().message().find("2 of 4 survivors"), absl::string_view::npos)
      << early.status();

  // The failure changed nothing: a third response makes the sum computable.
  auto response = round.clients.at("site-0").Unmask(round.unmask_request);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_TRUE(round.server->AddUnmaskResponse("site-0", *response).ok());
  auto sum = round.Finish();
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(FirstDifference(*sum, round.PlainSum(round.AllBut({"site-4"}))), -1);
}

TEST(SecAggRoundTest, FewerThanThresholdAdvertisementsFailCleanly) {
  SimulatedRound round(kSites, kThreshold, kLength);
  const Status status = round.Advertise({"site-0", "site-1", "site-2"});
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find("only 2 of 5 sites advertised"), absl::string_view::npos)
      << status;
}

TEST(SecAggRoundTest, FewerThanThresholdShareBundlesFailCleanly) {
  SimulatedRound round(kSites, kThreshold, kLength);
  ASSERT_TRUE(round.Advertise().ok());
  const Status status = round.ShareKeys({"site-0", "site-1", "site-2"});
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find("only 2 of 5"), absl::string_view::npos) << status;
}

// Pearson's chi-square statistic of the byte histogram of `words`, against uniform.
double ByteChiSquare(const std::vector<uint32_t>& words) {
  std::vector<double> counts(256, 0.0);
  const auto* bytes = reinterpret_cast<const uint8_t*>(words.data());
  const size_t n = words.size() * sizeof(uint32_t);
  for (size_t i = 0; i < n; ++i) counts[bytes[i]] += 1;
  const double expected = static_cast<double>(n) / 256;
  double chi2 = 0;
  for (double c : counts) chi2 += (c - expected) * (c - expected) / expected;
  return chi2;
}

// What the coordinator sees of one site is y_u; it must look like uniform noise whatever x_u
// is. With 255 degrees of freedom the statistic of truly uniform bytes exceeds 363 with
// probability 1e-6, so this does not flake; a small quantized update is far off.
TEST(SecAggRoundTest, MaskedInputIsIndistinguishableFromUniformBytes) {
  constexpr size_t kWords = size_t{1} << 20;
  constexpr double kCriticalValueP1e6Dof255 = 363.0;
  SimulatedRound round(kSites, kThreshold, kWords);
  // A realistic update: small values, quantized (mostly 0x00 and 0xFF high bytes).
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 0.01f);
  std::vector<float> update(kWords);
  for (float& v : update) v = dist(rng);
  auto scale = crypto::ChooseScale(1.0f, kSites, 1.0);
  ASSERT_TRUE(scale.ok()) << scale.status();
  std::vector<uint32_t>& x = round.inputs.at("site-1");
  ASSERT_TRUE(crypto::Quantize(update.data(), kWords, 1.0f, *scale, x.data()).ok());

  auto sum = round.Run();
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(FirstDifference(*sum, round.PlainSum(round.sites)), -1);

  const double input_chi2 = ByteChiSquare(x);
  const double masked_chi2 = ByteChiSquare(round.masked.at("site-1"));
  EXPECT_GT(input_chi2, kCriticalValueP1e6Dof255) << "the test input should be far from uniform";
  EXPECT_LT(masked_chi2, kCriticalValueP1e6Dof255)
      << "the masked input's bytes are not uniform (input statistic " << input_chi2 << ")";
}

// The lead's use: sites quantize float updates with one scale, the coordinator dequantizes
// the unmasked sum. fixed_point.h bounds the error by n * 0.5 / scale plus the float
// rounding of the result.
TEST(SecAggRoundTest, QuantizedFloatUpdatesSumWithinTheFixedPointBound) {
  constexpr float kClip = 0.5f;
  auto scale = crypto::ChooseScale(kClip, kSites, 1.0);
  ASSERT_TRUE(scale.ok()) << scale.status();
  SimulatedRound round(kSites, kThreshold, kLength);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-0.6f, 0.6f);  // some values get clipped
  std::vector<double> expected(kLength, 0.0);
  std::vector<float> update(kLength);
  for (const std::string& site : round.sites) {
    for (size_t i = 0; i < kLength; ++i) {
      update[i] = dist(rng);
      expected[i] += std::clamp(update[i], -kClip, kClip);
    }
    ASSERT_TRUE(
        crypto::Quantize(update.data(), kLength, kClip, *scale, round.inputs.at(site).data()).ok());
  }
  auto sum = round.Run();
  ASSERT_TRUE(sum.ok()) << sum.status();
  std::vector<float> result(kLength);
  ASSERT_TRUE(crypto::Dequantize(sum->data(), kLength, *scale, result.data()).ok());
  const double rounding_bound = kSites * 0.5 / *scale;
  for (size_t i = 0; i < kLength; ++i) {
    const double bound = rounding_bound + std::abs(expected[i]) * std::ldexp(1.0, -24);
    ASSERT_LE(std::abs(result[i] - expected[i]), bound) << "coordinate " << i;
  }
}

}  // namespace
}  // namespace dermfed::secagg::testing
