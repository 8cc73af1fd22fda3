#include "common/dp/noise.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "tests/common/dp/secure_rng_test_peer.h"

namespace dermfed::dp {
namespace {

// Production code cannot pick the key: only Create() (RAND_priv_bytes) makes a stream.
static_assert(!std::is_default_constructible_v<SecureRng>);
static_assert(!std::is_constructible_v<SecureRng, const uint8_t*>);
static_assert(!std::is_copy_constructible_v<SecureRng>);

std::vector<uint8_t> FromHex(const std::string& hex) {
  std::vector<uint8_t> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) out[i] = std::stoi(hex.substr(2 * i, 2), nullptr, 16);
  return out;
}

std::array<uint8_t, SecureRng::kKeyBytes> Key(const std::string& hex) {
  std::array<uint8_t, SecureRng::kKeyBytes> key{};
  const std::vector<uint8_t> bytes = FromHex(hex);
  std::memcpy(key.data(), bytes.data(), key.size());
  return key;
}

std::vector<uint8_t> Bytes(SecureRng& rng, size_t n) {
  std::vector<uint8_t> out(n);
  EXPECT_TRUE(rng.Fill(out.data(), n).ok());
  return out;
}

const std::string kZeroKey(64, '0');

TEST(SecureRngTest, StreamIsChaCha20WithFastKeyErasure) {
  // RFC 8439 Appendix A.1, test vector #1 (key 0, nonce 0, counter 0), keystream bytes
  // 0..31 = 76b8e0ad...8b770dc7 and 32..63 = da41597c...b2ee6586. The first 32 bytes become
  // the next key, so the stream starts at byte 32.
  SecureRng rng = SecureRngTestPeer::WithKey(Key(kZeroKey));
  EXPECT_EQ(Bytes(rng, 32),
            FromHex("da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"));
  // After kRefillBytes the key is keystream bytes 0..31; the next output is ChaCha20 under
  // that key from byte 32 (computed with `openssl enc -chacha20 -K 76b8...0dc7 -iv 0...0`).
  Bytes(rng, SecureRng::kRefillBytes - 32);
  EXPECT_EQ(Bytes(rng, 32),
            FromHex("afbdad2845b93cdbb2fe6463d2fe162adae0f6e676f0494218f5ce0596e79f5c"));
}

TEST(SecureRngTest, SameTestKeyGivesTheSameStream) {
  SecureRng a = SecureRngTestPeer::WithKey(Key(std::string(62, '0') + "2a"));
  SecureRng b = SecureRngTestPeer::WithKey(Key(std::string(62, '0') + "2a"));
  SecureRng c = SecureRngTestPeer::WithKey(Key(std::string(62, '0') + "2b"));
  const std::vector<uint8_t> from_a = Bytes(a, 40000);  // crosses two refills
  EXPECT_EQ(from_a, Bytes(b, 40000));
  EXPECT_NE(from_a, Bytes(c, 40000));
}

TEST(SecureRngTest, CreatedStreamsDiffer) {
  auto a = SecureRng::Create();
  auto b = SecureRng::Create();
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE(Bytes(*a, 64), Bytes(*b, 64));
}

TEST(SecureRngTest, UniformsAreInTheHalfOpenUnitInterval) {
  auto rng = SecureRng::Create();
  ASSERT_TRUE(rng.ok());
  double sum = 0;
  constexpr int kCount = 100000;
  for (int i = 0; i < kCount; ++i) {
    auto u = rng->NextUniform();
    ASSERT_TRUE(u.ok());
    ASSERT_GT(*u, 0.0);
    ASSERT_LE(*u, 1.0);
    sum += *u;
  }
  // Mean 1/2, standard error sqrt(1/12 / n).
  EXPECT_NEAR(sum / kCount, 0.5, 5 * std::sqrt(1.0 / 12 / kCount));
}

TEST(NoiseTest, L2NormOfKnownVectors) {
  const float v[] = {3, 4};
  EXPECT_DOUBLE_EQ(L2Norm(v, 2), 5.0);
  EXPECT_DOUBLE_EQ(L2Norm(v, 0), 0.0);
  std::vector<float> ones(1000003, 1.0f);  // not a multiple of the 8-way unrolling
  EXPECT_DOUBLE_EQ(L2Norm(ones.data(), ones.size()), std::sqrt(1000003.0));
}

TEST(NoiseTest, ClipLeavesSmallUpdatesAlone) {
  std::vector<float> x = {0.3f, -0.4f};
  auto norm = ClipToNorm(x.data(), x.size(), 1.0);
  ASSERT_TRUE(norm.ok());
  EXPECT_NEAR(*norm, 0.5, 1e-7);
  EXPECT_EQ(x, (std::vector<float>{0.3f, -0.4f}));
}

TEST(NoiseTest, ClipScalesLargeUpdatesToJustUnderTheBound) {
  std::vector<float> x(10007);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(std::sin(0.1 * i) * 3.7);
  const std::vector<float> before = x;
  const double clip = 2.5;
  auto norm = ClipToNorm(x.data(), x.size(), clip);
  ASSERT_TRUE(norm.ok());
  EXPECT_DOUBLE_EQ(*norm, L2Norm(before.data(), before.size())) << "returns the original norm";
  const double after = L2Norm(x.data(), x.size());
  EXPECT_LE(after, clip) << "a clipped update must never exceed the sensitivity bound";
  EXPECT_GT(after, clip * (1 - 1e-6));
  const double scale = after / *norm;  // direction is kept: one common factor
  for (size_t i = 0; i < x.size(); i += 997) EXPECT_NEAR(x[i], before[i] * scale, 1e-6);
}

TEST(NoiseTest, ClipRejectsBadBoundsAndNonFiniteUpdates) {
  std::vector<float> x = {1, 2, 3};
  for (double clip : {0.0, -1.0, static_cast<double>(INFINITY), static_cast<double>(NAN)}) {
    EXPECT_EQ(ClipToNorm(x.data(), x.size(), clip).status().code(),
              absl::StatusCode::kInvalidArgument)
        << "clip=" << clip;
  }
  std::vector<float> bad = {1, NAN, 3};
  EXPECT_FALSE(ClipToNorm(bad.data(), bad.size(), 1.0).ok());
  EXPECT_EQ(bad[0], 1.0f) << "a rejected update is left untouched";
  bad[1] = INFINITY;
  EXPECT_FALSE(ClipToNorm(bad.data(), bad.size(), 1.0).ok());
}

TEST(NoiseTest, NoiseHasTheRequestedMeanAndVariance) {
  // 10^6 draws of N(0, s²); every bound is 5 standard errors.
  constexpr size_t kN = 1'000'000;
  const double s = 2.5;
  auto rng = SecureRng::Create();
  ASSERT_TRUE(rng.ok());
  std::vector<float> x(kN, 0.0f);
  ASSERT_TRUE(AddGaussianNoise(x.data(), kN, s, *rng).ok());
  double sum = 0, sum_sq = 0, lag1 = 0;
  size_t beyond_one_sigma = 0;
  for (size_t i = 0; i < kN; ++i) {
    sum += x[i];
    sum_sq += static_cast<double>(x[i]) * x[i];
    if (i > 0) lag1 += static_cast<double>(x[i]) * x[i - 1];
    beyond_one_sigma += std::fabs(x[i]) > s;
  }
  const double mean = sum / kN;
  const double var = sum_sq / kN - mean * mean;
  EXPECT_NEAR(mean, 0.0, 5 * s / std::sqrt(kN));
  EXPECT_NEAR(var, s * s, 5 * s * s * std::sqrt(2.0 / (kN - 1)));
  // P(|X| > σ) = erfc(1/√2) = 0.31731: the shape, not just two moments.
  const double p = std::erfc(1 / std::sqrt(2.0));
  EXPECT_NEAR(static_cast<double>(beyond_one_sigma) / kN, p, 5 * std::sqrt(p * (1 - p) / kN));
  // Box–Muller's pairs must be uncorrelated.
  EXPECT_NEAR(lag1 / kN / (s * s), 0.0, 5 / std::sqrt(static_cast<double>(kN)));
}

TEST(NoiseTest, NoiseIsAddedToTheExistingValues) {
  std::vector<float> x(4096, 100.0f);
  SecureRng rng = SecureRngTestPeer::WithKey(Key(kZeroKey));
  ASSERT_TRUE(AddGaussianNoise(x.data(), x.size(), 1e-3, rng).ok());
  double sum = 0;
  for (float v : x) {
    EXPECT_NEAR(v, 100.0f, 0.01);
    sum += v;
  }
  EXPECT_NE(sum, 100.0 * x.size());
}

TEST(NoiseTest, NoiseRejectsAMissingStddev) {
  std::vector<float> x(8, 1.0f);
  SecureRng rng = SecureRngTestPeer::WithKey(Key(kZeroKey));
  for (double s : {0.0, -1.0, static_cast<double>(NAN), static_cast<double>(INFINITY)}) {
    EXPECT_EQ(AddGaussianNoise(x.data(), x.size(), s, rng).code(),
              absl::StatusCode::kInvalidArgument)
        << "stddev=" << s;
  }
  EXPECT_EQ(x, std::vector<float>(8, 1.0f));
}

TEST(NoiseTest, OddCountsAreFilled) {
  SecureRng a = SecureRngTestPeer::WithKey(Key(kZeroKey));
  SecureRng b = SecureRngTestPeer::WithKey(Key(kZeroKey));
  double three[3] = {NAN, NAN, NAN};
  double four[4];
  ASSERT_TRUE(a.FillStandardNormal(three, 3).ok());
  ASSERT_TRUE(b.FillStandardNormal(four, 4).ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(three[i], four[i]) << i;
}

StatusOr<ModelState> TestState() {
  std::vector<TensorSpec> specs(3);
  specs[0].name = "conv.weight";
  specs[0].shape = {2, 3};
  specs[1].name = "bn.num_batches_tracked";
  specs[1].dtype = DType::kInt64;
  specs[1].shape = {};
  specs[2].name = "fc.bias";
  specs[2].shape = {2};
  DF_ASSIGN_OR_RETURN(ModelState state, ModelState::Create(std::move(specs)));
  float* w = reinterpret_cast<float*>(state.TensorData(0));
  for (int i = 0; i < 6; ++i) w[i] = 2.0f;  // norm² 24
  *reinterpret_cast<int64_t*>(state.TensorData(1)) = 1234;
  float* b = reinterpret_cast<float*>(state.TensorData(2));
  b[0] = 3.0f;  // norm² 9 + 16 - total 49
  b[1] = 4.0f;
  return state;
}

TEST(NoiseTest, ModelStateClipUsesOneNormOverAllFloatTensors) {
  auto state = TestState();
  ASSERT_TRUE(state.ok()) << state.status();
  auto norm = L2Norm(*state);
  ASSERT_TRUE(norm.ok());
  EXPECT_DOUBLE_EQ(*norm, 7.0);
  auto before = ClipToNorm(&*state, 3.5);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_DOUBLE_EQ(*before, 7.0);
  EXPECT_LE(*L2Norm(*state), 3.5);
  EXPECT_NEAR(reinterpret_cast<float*>(state->TensorData(0))[0], 1.0f, 1e-5);
  EXPECT_NEAR(reinterpret_cast<float*>(state->TensorData(2))[1], 2.0f, 1e-5);
  EXPECT_EQ(*reinterpret_cast<int64_t*>(state->TensorData(1)), 1234) << "integers untouched";
}

TEST(NoiseTest, ModelStateNoiseTouchesFloatTensorsOnly) {
  auto state = TestState();
  ASSERT_TRUE(state.ok());
  SecureRng rng = SecureRngTestPeer::WithKey(Key(kZeroKey));
  ASSERT_TRUE(AddGaussianNoise(&*state, 0.5, rng).ok());
  EXPECT_EQ(*reinterpret_cast<int64_t*>(state->TensorData(1)), 1234);
  int changed = 0;
  const float* w = reinterpret_cast<const float*>(state->TensorData(0));
  for (int i = 0; i < 6; ++i) changed += w[i] != 2.0f;
  const float* b = reinterpret_cast<const float*>(state->TensorData(2));
  changed += b[0] != 3.0f;
  changed += b[1] != 4.0f;
  EXPECT_EQ(changed, 8);
}

TEST(NoiseTest, ModelStateWithFloat64IsRefusedNamingTheTensor) {
  std::vector<TensorSpec> specs(2);
  specs[0].name = "a";
  specs[0].shape = {4};
  specs[1].name = "running_var64";
  specs[1].dtype = DType::kFloat64;
  specs[1].shape = {4};
  auto state = ModelState::Create(std::move(specs));
  ASSERT_TRUE(state.ok());
  SecureRng rng = SecureRngTestPeer::WithKey(Key(kZeroKey));
  Status status = AddGaussianNoise(&*state, 1.0, rng);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("running_var64"), std::string::npos) << status;
  const float* a = reinterpret_cast<const float*>(state->TensorData(0));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(a[i], 0.0f) << "nothing is noised when refused";
  EXPECT_FALSE(ClipToNorm(&*state, 1.0).ok());
}

TEST(NoiseTest, ModelStateClipNamesTheTensorWithANaN) {
  auto state = TestState();
  ASSERT_TRUE(state.ok());
  reinterpret_cast<float*>(state->TensorData(2))[0] = NAN;
  auto norm = ClipToNorm(&*state, 1.0);
  ASSERT_FALSE(norm.ok());
  EXPECT_NE(norm.status().message().find("fc.bias"), std::string::npos) << norm.status();
}

TEST(NoiseTest, CentralAndDistributedStddevs) {
  EXPECT_DOUBLE_EQ(*CentralNoiseStddev(1.1, 2.0), 2.2);
  EXPECT_DOUBLE_EQ(*DistributedNoiseStddev(1.1, 2.0, 4), 1.1);
  EXPECT_FALSE(CentralNoiseStddev(0, 1).ok());
  EXPECT_FALSE(CentralNoiseStddev(1, 0).ok());
  EXPECT_FALSE(DistributedNoiseStddev(1, 1, 0).ok());
}

TEST(NoiseTest, DistributedSharesSumToTheCentralVariance) {
  // m = 4 sites each add N(0, (zC)²/m); their sum must have variance (zC)².
  constexpr int kSites = 4;
  constexpr size_t kN = 250'000;
  const double central = *CentralNoiseStddev(1.2, 1.5);
  const double share = *DistributedNoiseStddev(1.2, 1.5, kSites);
  std::vector<double> sum(kN, 0.0);
  for (int site = 0; site < kSites; ++site) {
    auto rng = SecureRng::Create();  // every site has its own stream
    ASSERT_TRUE(rng.ok());
    std::vector<float> update(kN, 0.0f);
    ASSERT_TRUE(AddGaussianNoise(update.data(), kN, share, *rng).ok());
    for (size_t i = 0; i < kN; ++i) sum[i] += update[i];
  }
  double sum_sq = 0;
  for (double v : sum) sum_sq += v * v;
  const double var = sum_sq / kN;
  EXPECT_NEAR(var, central * central, 5 * central * central * std::sqrt(2.0 / kN));
}

}  // namespace
}  // namespace dermfed::dp
