#include "common/crypto/prg.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace dermfed::crypto {
namespace {

std::vector<uint8_t> Key(uint8_t first) {
  std::vector<uint8_t> key(kMaskKeyBytes);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(first + i);
  return key;
}

// Pins the wire format: AES-256-CTR(key 00..1f, IV = SHA-256("round=7/pair=a,b")[0..16)) on
// zeros, read as little-endian words. Computed independently with
//   openssl enc -aes-256-ctr -K 0001..1f -iv 32d6a2d863826a558d13c0e12a0f8d91
TEST(PrgTest, ExpandMaskMatchesTheAesCtrKeystream) {
  auto mask = ExpandMask(Key(0), "round=7/pair=a,b", 8);
  ASSERT_TRUE(mask.ok()) << mask.status();
  const std::vector<uint32_t> expected = {0xa52e12d1u, 0xf35ee066u, 0x8e7e1017u, 0x4da9b591u,
                                          0xc267342bu, 0xfb60e992u, 0xae790095u, 0xcb167432u};
  EXPECT_EQ(*mask, expected);
}

TEST(PrgTest, PairwiseMasksCancelExactlyInTheSum) {
  constexpr size_t kCount = 1'000'003;  // not a multiple of the 64 KiB block
  const std::vector<uint8_t> pair_key = Key(9);
  const std::string context = "round=3/model=v12/pairwise/site-a,site-b";
  std::mt19937 rng(1234);
  std::vector<uint32_t> x_a(kCount), x_b(kCount);
  for (size_t i = 0; i < kCount; ++i) {
    x_a[i] = rng();
    x_b[i] = rng();
  }
  std::vector<uint32_t> y_a = x_a, y_b = x_b;
  ASSERT_TRUE(AddMask(absl::MakeSpan(y_a), pair_key, context, MaskSign::kAdd).ok());
  ASSERT_TRUE(AddMask(absl::MakeSpan(y_b), pair_key, context, MaskSign::kSubtract).ok());
  size_t unchanged = 0;
  for (size_t i = 0; i < kCount; ++i) unchanged += y_a[i] == x_a[i];
  EXPECT_LT(unchanged, 10u) << "the mask must change (almost) every word";
  for (size_t i = 0; i < kCount; ++i) {
    ASSERT_EQ(static_cast<uint32_t>(y_a[i] + y_b[i]), static_cast<uint32_t>(x_a[i] + x_b[i]))
        << "masks do not cancel at index " << i;
  }
}

TEST(PrgTest, AddThenSubtractRestoresTheVector) {
  std::vector<uint32_t> v(70'000, 17);
  ASSERT_TRUE(AddMask(absl::MakeSpan(v), Key(1), "ctx", MaskSign::kAdd).ok());
  ASSERT_TRUE(AddMask(absl::MakeSpan(v), Key(1), "ctx", MaskSign::kSubtract).ok());
  EXPECT_EQ(v, std::vector<uint32_t>(70'000, 17));
}

TEST(PrgTest, StreamIsContinuousAcrossBlocks) {
  auto long_mask = ExpandMask(Key(2), "ctx", 50'000);  // spans four 64 KiB blocks
  auto short_mask = ExpandMask(Key(2), "ctx", 100);
  ASSERT_TRUE(long_mask.ok() && short_mask.ok());
  EXPECT_TRUE(std::equal(short_mask->begin(), short_mask->end(), long_mask->begin()));
  // Words either side of the first block boundary (16,384 words) differ from the start.
  EXPECT_NE((*long_mask)[16384], (*long_mask)[0]);
}

TEST(PrgTest, DifferentContextsOrKeysGiveDifferentMasks) {
  auto round3 = ExpandMask(Key(0), "round=3", 1024);
  auto round4 = ExpandMask(Key(0), "round=4", 1024);
  auto other_key = ExpandMask(Key(1), "round=3", 1024);
  ASSERT_TRUE(round3.ok() && round4.ok() && other_key.ok());
  size_t same_context = 0, same_key = 0;
  for (size_t i = 0; i < 1024; ++i) {
    same_context += (*round3)[i] == (*round4)[i];
    same_key += (*round3)[i] == (*other_key)[i];
  }
  EXPECT_LT(same_context, 3u);
  EXPECT_LT(same_key, 3u);
}

TEST(PrgTest, RefusesBadKeysAndEmptyContext) {
  std::vector<uint32_t> v(4);
  std::vector<uint8_t> short_key(16, 1);
  Status s = AddMask(absl::MakeSpan(v), short_key, "ctx", MaskSign::kAdd);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("16 bytes"), absl::string_view::npos) << s;
  EXPECT_EQ(AddMask(absl::MakeSpan(v), Key(0), "", MaskSign::kAdd).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(v, std::vector<uint32_t>(4, 0)) << "a refused call must not touch the vector";
}

TEST(PrgTest, EmptyVectorIsFine) {
  auto mask = ExpandMask(Key(0), "ctx", 0);
  ASSERT_TRUE(mask.ok()) << mask.status();
  EXPECT_TRUE(mask->empty());
}

}  // namespace
}  // namespace dermfed::crypto
