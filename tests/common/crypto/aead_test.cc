#include "common/crypto/aead.h"

#include <gtest/gtest.h>

#include <vector>

namespace dermfed::crypto {
namespace {

std::vector<uint8_t> Key(uint8_t fill) { return std::vector<uint8_t>(kAeadKeyBytes, fill); }

std::vector<uint8_t> Plaintext() {
  std::vector<uint8_t> p(32);
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<uint8_t>(3 * i + 1);
  return p;
}

std::vector<uint8_t> Bytes(const SecretBytes& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

TEST(AeadTest, SealThenOpenRoundTrips) {
  const auto aad = BindingAad("hospital-b", 7, "v12", "shamir-shares");
  auto sealed = Seal(Key(1), aad, Plaintext());
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(sealed->size(), Plaintext().size() + kAeadOverheadBytes);
  auto opened = Open(Key(1), aad, *sealed);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(Bytes(*opened), Plaintext());
}

TEST(AeadTest, EmptyPlaintextRoundTrips) {
  auto sealed = Seal(Key(1), {}, {});
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(sealed->size(), kAeadOverheadBytes);
  auto opened = Open(Key(1), {}, *sealed);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_TRUE(opened->empty());
}

TEST(AeadTest, SealingTwiceUsesFreshNonces) {
  auto first = Seal(Key(1), {}, Plaintext());
  auto second = Seal(Key(1), {}, Plaintext());
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(*first, *second);
}

TEST(AeadTest, OpenRefusesTheWrongKey) {
  auto sealed = Seal(Key(1), {}, Plaintext());
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  auto opened = Open(Key(2), {}, *sealed);
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss) << opened.status();
  EXPECT_NE(opened.status().message().find("authentication failed"), absl::string_view::npos)
      << opened.status();
}

TEST(AeadTest, OpenRefusesEveryFlippedBit) {
  const auto aad = BindingAad("hospital-b", 7, "v12", "shamir-shares");
  auto sealed = Seal(Key(1), aad, Plaintext());
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  for (size_t bit = 0; bit < sealed->size() * 8; ++bit) {
    std::vector<uint8_t> tampered = *sealed;
    tampered[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    auto opened = Open(Key(1), aad, tampered);
    ASSERT_EQ(opened.status().code(), absl::StatusCode::kDataLoss)
        << "flipping bit " << bit << " was not detected";
  }
}

TEST(AeadTest, OpenRefusesTruncatedInput) {
  auto sealed = Seal(Key(1), {}, Plaintext());
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  for (size_t len = 0; len < sealed->size(); ++len) {
    std::vector<uint8_t> truncated(sealed->begin(), sealed->begin() + len);
    auto opened = Open(Key(1), {}, truncated);
    ASSERT_EQ(opened.status().code(), absl::StatusCode::kDataLoss) << "length " << len;
  }
  auto too_short = Open(Key(1), {}, std::vector<uint8_t>(5));
  EXPECT_NE(too_short.status().message().find("5 bytes"), absl::string_view::npos)
      << too_short.status();
}

TEST(AeadTest, OpenRefusesAMessageReplayedIntoAnotherRound) {
  auto sealed = Seal(Key(1), BindingAad("hospital-b", 7, "v12", "shamir-shares"), Plaintext());
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  for (const auto& aad : {BindingAad("hospital-b", 8, "v12", "shamir-shares"),
                          BindingAad("hospital-c", 7, "v12", "shamir-shares"),
                          BindingAad("hospital-b", 7, "v13", "shamir-shares"),
                          BindingAad("hospital-b", 7, "v12", "unmasking")}) {
    EXPECT_EQ(Open(Key(1), aad, *sealed).status().code(), absl::StatusCode::kDataLoss);
  }
}

TEST(AeadTest, BindingAadIsUnambiguous) {
  EXPECT_NE(BindingAad("ab", 1, "c", "p"), BindingAad("a", 1, "bc", "p"));
  EXPECT_NE(BindingAad("a", 1, "", "p"), BindingAad("", 1, "a", "p"));
  EXPECT_NE(BindingAad("s", 1, "v", "p"), BindingAad("s", 256, "v", "p"));
  EXPECT_EQ(BindingAad("s", 1, "v", "p"), BindingAad("s", 1, "v", "p"));
}

TEST(AeadTest, RefusesKeysOfTheWrongLength) {
  std::vector<uint8_t> short_key(16, 1);
  EXPECT_EQ(Seal(short_key, {}, Plaintext()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Open(short_key, {}, std::vector<uint8_t>(64)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dermfed::crypto
