#include "common/crypto/hkdf.h"

#include <gtest/gtest.h>

#include "tests/common/crypto/hex.h"

namespace dermfed::crypto {
namespace {

using testing::FromHex;
using testing::ToVector;

TEST(HkdfSha256Test, MatchesRfc5869TestCase1) {
  const std::vector<uint8_t> ikm(22, 0x0b);
  auto okm = HkdfSha256(ikm, FromHex("000102030405060708090a0b0c"),
                        FromHex("f0f1f2f3f4f5f6f7f8f9"), 42);
  ASSERT_TRUE(okm.ok()) << okm.status();
  EXPECT_EQ(ToVector(*okm), FromHex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4"
                                    "c5bf34007208d5b887185865"));
}

TEST(HkdfSha256Test, MatchesRfc5869TestCase3WithEmptySaltAndInfo) {
  const std::vector<uint8_t> ikm(22, 0x0b);
  auto okm = HkdfSha256(ikm, {}, {}, 42);
  ASSERT_TRUE(okm.ok()) << okm.status();
  EXPECT_EQ(ToVector(*okm), FromHex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c73"
                                    "8d2d9d201395faa4b61a96c8"));
}

TEST(HkdfSha256Test, DifferentInfoGivesIndependentKeys) {
  const std::vector<uint8_t> ikm(32, 0x42);
  auto mask = HkdfSha256(ikm, {}, AsBytes("mask"), 32);
  auto channel = HkdfSha256(ikm, {}, AsBytes("channel"), 32);
  ASSERT_TRUE(mask.ok() && channel.ok());
  EXPECT_NE(*mask, *channel);
}

TEST(HkdfSha256Test, RefusesEmptyInputAndOutOfRangeLengths) {
  const std::vector<uint8_t> ikm(32, 1);
  EXPECT_EQ(HkdfSha256({}, {}, {}, 32).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HkdfSha256(ikm, {}, {}, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HkdfSha256(ikm, {}, {}, kHkdfSha256MaxOutput + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(HkdfSha256(ikm, {}, {}, kHkdfSha256MaxOutput).ok());
}

}  // namespace
}  // namespace dermfed::crypto
