#include "common/crypto/shamir.h"

#include <gtest/gtest.h>

#include <openssl/rand.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace dermfed::crypto {
namespace {

std::vector<uint8_t> RandomSecret(size_t n) {
  std::vector<uint8_t> s(n);
  EXPECT_EQ(RAND_bytes(s.data(), static_cast<int>(n)), 1);
  return s;
}

std::vector<uint8_t> Bytes(const SecretBytes& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

TEST(ShamirTest, EveryThreeOfFiveSharesReconstructTheSecret) {
  const std::vector<uint8_t> secret = RandomSecret(32);
  auto shares = Split(secret, 3, 5);
  ASSERT_TRUE(shares.ok()) << shares.status();
  ASSERT_EQ(shares->size(), 5u);
  int subsets = 0;
  for (int a = 0; a < 5; ++a) {
    for (int b = a + 1; b < 5; ++b) {
      for (int c = b + 1; c < 5; ++c) {
        // In a scrambled order, as they might arrive off the network.
        std::vector<Share> subset = {(*shares)[c], (*shares)[a], (*shares)[b]};
        auto combined = Combine(subset, 3);
        ASSERT_TRUE(combined.ok()) << "shares {" << a << "," << b << "," << c
                                   << "}: " << combined.status();
        EXPECT_EQ(Bytes(*combined), secret) << "shares {" << a << "," << b << "," << c << "}";
        ++subsets;
      }
    }
  }
  EXPECT_EQ(subsets, 10);
}

TEST(ShamirTest, AllSharesTogetherReconstructAndAreCheckedForConsistency) {
  const std::vector<uint8_t> secret = RandomSecret(32);
  auto shares = Split(secret, 3, 5);
  ASSERT_TRUE(shares.ok()) << shares.status();
  auto combined = Combine(*shares, 3);
  ASSERT_TRUE(combined.ok()) << combined.status();
  EXPECT_EQ(Bytes(*combined), secret);

  std::vector<Share> tampered = *shares;
  tampered[4].y[7] ^= 0x01;
  auto refused = Combine(tampered, 3);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss) << refused.status();
  EXPECT_NE(refused.status().message().find("x = 5"), absl::string_view::npos)
      << refused.status();
}

TEST(ShamirTest, FewerThanThresholdSharesRevealNothingUseful) {
  const std::vector<uint8_t> secret = RandomSecret(32);
  auto shares = Split(secret, 3, 5);
  ASSERT_TRUE(shares.ok()) << shares.status();
  // Interpolating two shares as if t were 2 lands on some other value: equal to the secret
  // with probability 2^-256.
  auto guess = Combine({(*shares)[0], (*shares)[3]}, 2);
  ASSERT_TRUE(guess.ok()) << guess.status();
  EXPECT_NE(Bytes(*guess), secret);
  for (const Share& share : *shares) {
    EXPECT_NE(Bytes(share.y), secret) << "share x = " << int{share.x} << " equals the secret";
  }
}

// With t = 2, share x = 1 of a fixed one-byte secret is a + s for a uniform a: uniformly
// distributed over 256 values whatever s is. A chi-square test over 25,600 splits (255
// degrees of freedom, mean 255, sd 22.6) stays far below 400 unless the shares are biased.
TEST(ShamirTest, SingleShareIsUniformlyDistributed) {
  constexpr int kSplits = 25'600;
  for (uint8_t secret_byte : {uint8_t{0x00}, uint8_t{0xA7}}) {
    std::vector<int> counts(256, 0);
    const std::vector<uint8_t> secret = {secret_byte};
    for (int i = 0; i < kSplits; ++i) {
      auto shares = Split(secret, 2, 3);
      ASSERT_TRUE(shares.ok()) << shares.status();
      ++counts[(*shares)[0].y[0]];
    }
    const double expected = kSplits / 256.0;
    double chi2 = 0;
    for (int c : counts) chi2 += (c - expected) * (c - expected) / expected;
    EXPECT_LT(chi2, 400.0) << "secret byte " << int{secret_byte};
  }
}

TEST(ShamirTest, SplitRefusesBadParameters) {
  const std::vector<uint8_t> secret = RandomSecret(32);
  EXPECT_EQ(Split(secret, 1, 5).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Split(secret, 6, 5).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Split(secret, 2, 256).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Split({}, 2, 3).status().code(), absl::StatusCode::kInvalidArgument);
  auto max = Split(secret, 200, 255);
  ASSERT_TRUE(max.ok()) << max.status();
  EXPECT_EQ(max->back().x, 255);
  std::vector<Share> last(max->end() - 200, max->end());
  auto combined = Combine(last, 200);
  ASSERT_TRUE(combined.ok()) << combined.status();
  EXPECT_EQ(Bytes(*combined), secret);
}

class ShamirRefusalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto split = Split(RandomSecret(32), 3, 5);
    ASSERT_TRUE(split.ok()) << split.status();
    shares_ = *split;
  }
  void ExpectRefused(const std::vector<Share>& shares, absl::string_view phrase) {
    auto combined = Combine(shares, 3);
    EXPECT_EQ(combined.status().code(), absl::StatusCode::kInvalidArgument) << combined.status();
    EXPECT_NE(combined.status().message().find(phrase), absl::string_view::npos)
        << "expected '" << phrase << "' in: " << combined.status();
  }
  std::vector<Share> shares_;
};

TEST_F(ShamirRefusalTest, TooFewShares) {
  ExpectRefused({shares_[0], shares_[1]}, "3 shares are needed");
}

TEST_F(ShamirRefusalTest, DuplicateX) {
  ExpectRefused({shares_[0], shares_[1], shares_[1]}, "x = 2 appears in more than one");
}

TEST_F(ShamirRefusalTest, XZero) {
  std::vector<Share> s = {shares_[0], shares_[1], shares_[2]};
  s[2].x = 0;
  ExpectRefused(s, "x = 0");
}

TEST_F(ShamirRefusalTest, MismatchedLengths) {
  std::vector<Share> s = {shares_[0], shares_[1], shares_[2]};
  s[1].y.pop_back();
  ExpectRefused(s, "has 31 bytes");
}

TEST_F(ShamirRefusalTest, EmptyShare) {
  std::vector<Share> s = {shares_[0], shares_[1], shares_[2]};
  s[0].y.clear();
  ExpectRefused(s, "is empty");
}

TEST_F(ShamirRefusalTest, ThresholdBelowTwo) {
  EXPECT_EQ(Combine(shares_, 1).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dermfed::crypto
