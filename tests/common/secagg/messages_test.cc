// The wire format: every message survives Serialize/Parse, and Parse refuses anything that
// is truncated, oversized, of another kind or version, or followed by trailing bytes.
#include "common/secagg/messages.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace dermfed::secagg {
namespace {

PublicKey Key(uint8_t fill) {
  PublicKey k;
  k.fill(fill);
  k[0] = 0xA5;
  return k;
}

crypto::SecretBytes ShareBytes(uint8_t fill) { return crypto::SecretBytes(kKeyBytes, fill); }

Advertisement SampleAdvertisement(const std::string& site, uint8_t fill) {
  return Advertisement{site, Key(fill), Key(fill + 1), Key(fill + 2)};
}

EncryptedShare SampleShare(const std::string& from, const std::string& to) {
  std::vector<uint8_t> ciphertext(120);
  for (size_t i = 0; i < ciphertext.size(); ++i) ciphertext[i] = static_cast<uint8_t>(i * 7);
  return EncryptedShare{from, to, ciphertext};
}

UnmaskResponse SampleResponse() {
  UnmaskResponse r;
  r.from = "hospital-b";
  r.mask_key_shares.push_back(KeyShare{"hospital-d", ShareBytes(4)});
  r.seed_shares.push_back(KeyShare{"hospital-a", ShareBytes(1)});
  r.seed_shares.push_back(KeyShare{"hospital-b", ShareBytes(2)});
  return r;
}

void ExpectSameAdvertisement(const Advertisement& a, const Advertisement& b) {
  EXPECT_EQ(a.site, b.site);
  EXPECT_EQ(a.channel_public_key, b.channel_public_key);
  EXPECT_EQ(a.mask_public_key, b.mask_public_key);
  EXPECT_EQ(a.seed_commitment, b.seed_commitment);
}

void ExpectSameShare(const EncryptedShare& a, const EncryptedShare& b) {
  EXPECT_EQ(a.from, b.from);
  EXPECT_EQ(a.to, b.to);
  EXPECT_EQ(a.ciphertext, b.ciphertext);
}

// Every proper prefix of a valid encoding, and the encoding plus one byte, are refused.
template <typename Message>
void ExpectTruncationsAndTrailingBytesRefused(const std::string& bytes) {
  ASSERT_TRUE(Message::Parse(bytes).ok()) << Message::Parse(bytes).status();
  for (size_t len = 0; len < bytes.size(); ++len) {
    auto parsed = Message::Parse(bytes.substr(0, len));
    ASSERT_FALSE(parsed.ok()) << "a " << len << "-byte prefix of " << bytes.size() << " parsed";
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << parsed.status();
  }
  auto trailing = Message::Parse(bytes + '\0');
  EXPECT_EQ(trailing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(trailing.status().message().find("1 trailing bytes"), absl::string_view::npos)
      << trailing.status();
}

TEST(SecAggMessagesTest, AdvertisementRoundTrips) {
  const Advertisement ad = SampleAdvertisement("hospital-a", 3);
  auto parsed = Advertisement::Parse(ad.Serialize());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ExpectSameAdvertisement(*parsed, ad);
  // header 2 + name 4 + 10 + three keys.
  EXPECT_EQ(ad.Serialize().size(), 2u + 4 + 10 + 3 * 32);
  ExpectTruncationsAndTrailingBytesRefused<Advertisement>(ad.Serialize());
}

TEST(SecAggMessagesTest, AdvertisementListRoundTrips) {
  AdvertisementList list;
  for (int i = 0; i < 5; ++i) {
    list.advertisements.push_back(SampleAdvertisement("site-" + std::to_string(i), 10 * i));
  }
  auto parsed = AdvertisementList::Parse(list.Serialize());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->advertisements.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    ExpectSameAdvertisement(parsed->advertisements[i], list.advertisements[i]);
  }
  ExpectTruncationsAndTrailingBytesRefused<AdvertisementList>(list.Serialize());
  auto empty = AdvertisementList::Parse(AdvertisementList{}.Serialize());
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->advertisements.empty());
}

TEST(SecAggMessagesTest, EncryptedShareAndShareBundleRoundTrip) {
  const EncryptedShare share = SampleShare("hospital-a", "hospital-c");
  auto parsed = EncryptedShare::Parse(share.Serialize());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ExpectSameShare(*parsed, share);
  ExpectTruncationsAndTrailingBytesRefused<EncryptedShare>(share.Serialize());

  ShareBundle bundle{{share, SampleShare("hospital-a", "hospital-d")}};
  auto parsed_bundle = ShareBundle::Parse(bundle.Serialize());
  ASSERT_TRUE(parsed_bundle.ok()) << parsed_bundle.status();
  ASSERT_EQ(parsed_bundle->shares.size(), 2u);
  ExpectSameShare(parsed_bundle->shares[1], bundle.shares[1]);
  ExpectTruncationsAndTrailingBytesRefused<ShareBundle>(bundle.Serialize());
}

TEST(SecAggMessagesTest, MaskingRequestRoundTrips) {
  MaskingRequest request;
  request.u2 = {"hospital-a", "hospital-b", "hospital-c"};
  request.shares = {SampleShare("hospital-a", "hospital-b"),
                    SampleShare("hospital-c", "hospital-b")};
  auto parsed = MaskingRequest::Parse(request.Serialize());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->u2, request.u2);
  ASSERT_EQ(parsed->shares.size(), 2u);
  ExpectSameShare(parsed->shares[0], request.shares[0]);
  ExpectTruncationsAndTrailingBytesRefused<MaskingRequest>(request.Serialize());
}

TEST(SecAggMessagesTest, UnmaskRequestRoundTrips) {
  UnmaskRequest request{{"hospital-a", "hospital-b", "hospital-c"}, {"hospital-d"}};
  auto parsed = UnmaskRequest::Parse(request.Serialize());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->survivors, request.survivors);
  EXPECT_EQ(parsed->dropped, request.dropped);
  ExpectTruncationsAndTrailingBytesRefused<UnmaskRequest>(request.Serialize());
}

TEST(SecAggMessagesTest, UnmaskResponseRoundTrips) {
  const UnmaskResponse response = SampleResponse();
  auto parsed = UnmaskResponse::Parse(response.Serialize());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->from, "hospital-b");
  ASSERT_EQ(parsed->mask_key_shares.size(), 1u);
  EXPECT_EQ(parsed->mask_key_shares[0].owner, "hospital-d");
  EXPECT_EQ(parsed->mask_key_shares[0].share, ShareBytes(4));
  ASSERT_EQ(parsed->seed_shares.size(), 2u);
  EXPECT_EQ(parsed->seed_shares[1].owner, "hospital-b");
  EXPECT_EQ(parsed->seed_shares[1].share, ShareBytes(2));
  ExpectTruncationsAndTrailingBytesRefused<UnmaskResponse>(response.Serialize());
}

TEST(SecAggMessagesTest, WrongKindOrVersionIsRefused) {
  const std::string ad = SampleAdvertisement("hospital-a", 3).Serialize();
  auto as_share = EncryptedShare::Parse(ad);
  EXPECT_EQ(as_share.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(as_share.status().message().find("message kind 1, expected 3"), absl::string_view::npos)
      << as_share.status();
  std::string future = ad;
  future[1] = 2;
  auto parsed = Advertisement::Parse(future);
  EXPECT_NE(parsed.status().message().find("wire version 2, expected 1"), absl::string_view::npos)
      << parsed.status();
}

// Hand-built encodings with hostile lengths and counts.
std::string Header(uint8_t kind) { return std::string{static_cast<char>(kind), 1}; }
std::string U32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}
std::string Field(const std::string& s) { return U32(static_cast<uint32_t>(s.size())) + s; }

TEST(SecAggMessagesTest, OversizedLengthsAndCountsAreRefused) {
  const std::string keys(3 * kKeyBytes, 'k');
  // A site name of 256 bytes (the maximum is 255), then an empty one.
  for (const std::string& name : {std::string(256, 'n'), std::string()}) {
    auto parsed = Advertisement::Parse(Header(1) + Field(name) + keys);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << name.size();
    EXPECT_NE(parsed.status().message().find("site at byte 2"), absl::string_view::npos)
        << parsed.status();
  }
  // A length far beyond the buffer must be refused before anything is allocated.
  auto huge = Advertisement::Parse(Header(1) + U32(0xFFFFFFFF) + keys);
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kInvalidArgument);
  auto past_end = Advertisement::Parse(Header(1) + U32(200) + keys);
  EXPECT_NE(past_end.status().message().find("runs past the end"), absl::string_view::npos)
      << past_end.status();

  // 256 list entries (the maximum is 255 sites), and a plausible count with no room for it.
  auto too_many = UnmaskRequest::Parse(Header(6) + U32(256));
  EXPECT_NE(too_many.status().message().find("count 256 exceeds the maximum 255"),
            absl::string_view::npos)
      << too_many.status();
  auto no_room = AdvertisementList::Parse(Header(2) + U32(200) + Field("a") + keys);
  EXPECT_NE(no_room.status().message().find("runs past the end"), absl::string_view::npos)
      << no_room.status();
  auto huge_count = ShareBundle::Parse(Header(4) + U32(0xFFFFFFFF));
  EXPECT_EQ(huge_count.status().code(), absl::StatusCode::kInvalidArgument);

  // A ciphertext above kMaxShareCiphertextBytes.
  const std::string big(kMaxShareCiphertextBytes + 1, 'c');
  auto big_share = EncryptedShare::Parse(Header(3) + Field("a") + Field("b") + Field(big));
  EXPECT_NE(big_share.status().message().find("ciphertext"), absl::string_view::npos)
      << big_share.status();
  const std::string max(kMaxShareCiphertextBytes, 'c');
  EXPECT_TRUE(EncryptedShare::Parse(Header(3) + Field("a") + Field("b") + Field(max)).ok());
}

// Random bytes and random corruptions of valid messages must parse or be refused, never crash
// or over-read (run under ASan to make that bite).
TEST(SecAggMessagesTest, GarbageNeverCrashesTheParsers) {
  std::mt19937 rng(3);
  const std::vector<std::string> valid = {
      SampleAdvertisement("hospital-a", 3).Serialize(),
      AdvertisementList{{SampleAdvertisement("a", 1), SampleAdvertisement("b", 5)}}.Serialize(),
      ShareBundle{{SampleShare("a", "b")}}.Serialize(),
      MaskingRequest{{"a", "b"}, {SampleShare("a", "b")}}.Serialize(),
      UnmaskRequest{{"a", "b"}, {"c"}}.Serialize(),
      SampleResponse().Serialize()};
  int parsed = 0;
  for (int trial = 0; trial < 20'000; ++trial) {
    std::string bytes = valid[trial % valid.size()];
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    parsed += Advertisement::Parse(bytes).ok() + AdvertisementList::Parse(bytes).ok() +
              EncryptedShare::Parse(bytes).ok() + ShareBundle::Parse(bytes).ok() +
              MaskingRequest::Parse(bytes).ok() + UnmaskRequest::Parse(bytes).ok() +
              UnmaskResponse::Parse(bytes).ok();
  }
  // Most corruptions land in names, keys or ciphertext and still parse; that is fine — the
  // protocol layer checks meaning and AES-GCM checks the ciphertext.
  EXPECT_GT(parsed, 0);
}

}  // namespace
}  // namespace dermfed::secagg
