// The coordinator's side: what a Server refuses, and that it never returns a wrong sum.
#include "common/secagg/server.h"

#include <gtest/gtest.h>

#include <vector>

#include "tests/common/secagg/simulated_round.h"

namespace dermfed::secagg::testing {
namespace {

constexpr size_t kLength = 1'000;

bool Mentions(const Status& status, absl::string_view text) {
  return status.message().find(text) != absl::string_view::npos;
}

TEST(SecAggServerCreateTest, RefusesBadArguments) {
  const std::vector<std::string> five = SiteNames(5);
  EXPECT_TRUE(Server::Create(TestContext(), five, 3, kLength).ok());
  EXPECT_EQ(Server::Create("", five, 3, kLength).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Server::Create(TestContext(), five, 1, kLength).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Server::Create(TestContext(), five, 6, kLength).status().code(),
            absl::StatusCode::kInvalidArgument)
      << "t > n";
  EXPECT_EQ(Server::Create(TestContext(), five, 3, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Server::Create(TestContext(), {"a", "b", "a"}, 2, kLength).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Server::Create(TestContext(), SiteNames(256), 3, kLength).status().code(),
            absl::StatusCode::kInvalidArgument)
      << "Shamir over GF(2^8) has 255 share coordinates";
}

class SecAggServerTest : public ::testing::Test {
 protected:
  Server& server() { return *round_.server; }
  const Advertisement& AdOf(const std::string& site) {
    return round_.clients.at(site).advertisement();
  }
  SimulatedRound round_{5, 3, kLength};
};

TEST_F(SecAggServerTest, AdvertisementRefusals) {
  Status status = server().AddAdvertisement("site-9", AdOf("site-0"));
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_TRUE(Mentions(status, "site site-9, which is not a participant")) << status;

  status = server().AddAdvertisement("site-1", AdOf("site-0"));
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_TRUE(Mentions(status, "from site site-1 names site site-0")) << status;

  ASSERT_TRUE(server().AddAdvertisement("site-0", AdOf("site-0")).ok());
  status = server().AddAdvertisement("site-0", AdOf("site-0"));
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists) << status;

  Advertisement copycat = AdOf("site-1");
  copycat.mask_public_key = AdOf("site-0").channel_public_key;
  status = server().AddAdvertisement("site-1", copycat);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Mentions(status, "that site site-0 already advertised")) << status;
}

TEST_F(SecAggServerTest, MessagesOutOfPhaseAreRefused) {
  std::vector<uint32_t> y(kLength);
  Status status = server().AddMaskedInput("site-0", y);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_TRUE(Mentions(status, "arrived in phase 'advertise keys'")) << status;
  EXPECT_EQ(server().AddShares("site-0", {}).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(server().MakeUnmaskRequest().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(server().Finish().status().code(), absl::StatusCode::kFailedPrecondition);

  ASSERT_TRUE(round_.Advertise({"site-4"}).ok());
  status = server().AddAdvertisement("site-4", AdOf("site-4"));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition)
      << "a late advertisement must not change U1: " << status;
}

TEST_F(SecAggServerTest, ShareRefusals) {
  ASSERT_TRUE(round_.Advertise({"site-4"}).ok());
  auto bundle = round_.clients.at("site-0").ShareKeys(round_.u1);
  ASSERT_TRUE(bundle.ok()) << bundle.status();

  Status status = server().AddShares("site-4", *bundle);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_TRUE(Mentions(status, "site site-4: it did not advertise keys")) << status;

  status = server().AddShares("site-1", *bundle);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_TRUE(Mentions(status, "claims to be from site site-0")) << status;

  ShareBundle misaddressed = *bundle;
  misaddressed.shares[2].to = "site-4";
  status = server().AddShares("site-0", misaddressed);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Mentions(status, "addressed to site site-4, which is not another site of U1"))
      << status;

  ShareBundle doubled = *bundle;
  doubled.shares[2].to = doubled.shares[1].to;
  status = server().AddShares("site-0", doubled);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;

  ShareBundle short_bundle = *bundle;
  short_bundle.shares.pop_back();
  status = server().AddShares("site-0", short_bundle);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Mentions(status, "2 shares, expected one for each of the 3")) << status;

  ASSERT_TRUE(server().AddShares("site-0", *bundle).ok());
  EXPECT_EQ(server().AddShares("site-0", *bundle).code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(SecAggServerTest, MaskingRequestCarriesU2AndTheSharesForThatSiteOnly) {
  ASSERT_TRUE(round_.Advertise().ok());
  ASSERT_TRUE(round_.ShareKeys({"site-3"}).ok());
  auto request = server().MaskingRequestFor("site-1");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->u2, (std::vector<std::string>{"site-0", "site-1", "site-2", "site-4"}));
  ASSERT_EQ(request->shares.size(), 3u);
  for (const EncryptedShare& share : request->shares) {
    EXPECT_EQ(share.to, "site-1");
    EXPECT_NE(share.from, "site-3");
  }
  EXPECT_EQ(server().MaskingRequestFor("site-3").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(SecAggServerTest, MaskedInputRefusals) {
  ASSERT_TRUE(round_.Advertise().ok());
  ASSERT_TRUE(round_.ShareKeys({"site-3"}).ok());
  std::vector<uint32_t> y(kLength, 7);

  Status status = server().AddMaskedInput("site-3", y);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_TRUE(Mentions(status, "site site-3: it did not send its shares")) << status;

  std::vector<uint32_t> longer(kLength + 1);
  status = server().AddMaskedInput("site-0", longer);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Mentions(status, "site site-0 has 1001 words, expected 1000")) << status;

  const absl::Span<const uint32_t> all(y);
  status = server().AddMaskedInputChunk("site-1", 10, all.subspan(0, 10));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Mentions(status, "chunk at word 10, expected the next at word 0")) << status;
  ASSERT_TRUE(server().AddMaskedInputChunk("site-1", 0, all.subspan(0, 600)).ok());
  status = server().AddMaskedInputChunk("site-1", 600, y);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Mentions(status, "runs past the vector length 1000")) << status;

  ASSERT_TRUE(server().AddMaskedInput("site-0", y).ok());
  EXPECT_EQ(server().AddMaskedInput("site-0", y).code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(SecAggServerTest, PartialMaskedInputBlocksUnmaskingUntilComplete) {
  ASSERT_TRUE(round_.Advertise().ok());
  ASSERT_TRUE(round_.ShareKeys().ok());
  // Mask every input, send all but site-2's second half.
  for (const std::string& site : round_.sites) {
    auto request = server().MaskingRequestFor(site);
    ASSERT_TRUE(request.ok()) << request.status();
    std::vector<uint32_t>& y = round_.masked[site];
    y = round_.inputs.at(site);
    ASSERT_TRUE(round_.clients.at(site).MaskInPlace(absl::MakeSpan(y), *request).ok());
    const absl::Span<const uint32_t> half = absl::MakeConstSpan(y).subspan(0, kLength / 2);
    ASSERT_TRUE(site == "site-2" ? server().AddMaskedInputChunk(site, 0, half).ok()
                                 : server().AddMaskedInput(site, y).ok());
  }
  auto request = server().MakeUnmaskRequest();
  EXPECT_EQ(request.status().code(), absl::StatusCode::kDataLoss) << request.status();
  EXPECT_TRUE(Mentions(request.status(), "site-2 (500 of 1000 words)")) << request.status();

  const absl::Span<const uint32_t> rest =
      absl::MakeConstSpan(round_.masked["site-2"]).subspan(kLength / 2);
  ASSERT_TRUE(server().AddMaskedInputChunk("site-2", kLength / 2, rest).ok());
  request = server().MakeUnmaskRequest();
  ASSERT_TRUE(request.ok()) << request.status();
  round_.unmask_request = *request;
  ASSERT_TRUE(round_.Unmask().ok());
  auto sum = server().Finish();
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(*sum, round_.PlainSum(round_.sites));
}

TEST_F(SecAggServerTest, LateMaskedInputIsRefusedOnceUnmaskingBegan) {
  ASSERT_TRUE(round_.Advertise().ok());
  ASSERT_TRUE(round_.ShareKeys().ok());
  ASSERT_TRUE(round_.MaskAndSend({"site-2"}).ok());
  const Status status = server().AddMaskedInput("site-2", round_.masked.at("site-2"));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
}

class SecAggServerUnmaskTest : public SecAggServerTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(round_.Advertise().ok());
    ASSERT_TRUE(round_.ShareKeys().ok());
    ASSERT_TRUE(round_.MaskAndSend({"site-4"}).ok());
  }
  UnmaskResponse ResponseOf(const std::string& site) {
    auto response = round_.clients.at(site).Unmask(round_.unmask_request);
    EXPECT_TRUE(response.ok()) << response.status();
    return *response;
  }
};

TEST_F(SecAggServerUnmaskTest, ResponseRefusals) {
  Status status = server().AddUnmaskResponse("site-4", ResponseOf("site-0"));
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;

  UnmaskResponse from_dropped = ResponseOf("site-0");
  from_dropped.from = "site-4";
  status = server().AddUnmaskResponse("site-4", from_dropped);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_TRUE(Mentions(status, "site site-4: it is not a survivor")) << status;

  UnmaskResponse missing = ResponseOf("site-1");
  missing.seed_shares.pop_back();
  status = server().AddUnmaskResponse("site-1", missing);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Mentions(status, "lacks the seed share of site(s) site-3")) << status;

  UnmaskResponse both = ResponseOf("site-1");
  both.mask_key_shares.push_back(KeyShare{"site-0", both.seed_shares[0].share});
  status = server().AddUnmaskResponse("site-1", both);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Mentions(status, "mask key share of site site-0, which was not asked for")) << status;

  ASSERT_TRUE(server().AddUnmaskResponse("site-1", ResponseOf("site-1")).ok());
  EXPECT_EQ(server().AddUnmaskResponse("site-1", ResponseOf("site-1")).code(),
            absl::StatusCode::kAlreadyExists);
}

// With exactly t responses Shamir cannot notice a wrong share; the seed commitment does.
TEST_F(SecAggServerUnmaskTest, WrongSeedShareGivesDataLossNotAWrongSum) {
  UnmaskResponse forged = ResponseOf("site-0");
  forged.seed_shares[2].share[0] ^= 0x80;  // the share of b_site-2
  ASSERT_TRUE(server().AddUnmaskResponse("site-0", forged).ok());
  ASSERT_TRUE(server().AddUnmaskResponse("site-1", ResponseOf("site-1")).ok());
  ASSERT_TRUE(server().AddUnmaskResponse("site-2", ResponseOf("site-2")).ok());
  auto sum = server().Finish();
  EXPECT_EQ(sum.status().code(), absl::StatusCode::kDataLoss) << sum.status();
  EXPECT_TRUE(Mentions(sum.status(),
                       "seed of site site-2 reconstructs to a value that does not "
                       "match its commitment"))
      << sum.status();
}

// And the advertised public key catches a wrong share of a dropped site's key.
TEST_F(SecAggServerUnmaskTest, WrongMaskKeyShareGivesDataLossNotAWrongSum) {
  UnmaskResponse forged = ResponseOf("site-3");
  forged.mask_key_shares[0].share[15] ^= 0x01;  // not a bit X25519 clamping ignores
  ASSERT_TRUE(server().AddUnmaskResponse("site-3", forged).ok());
  ASSERT_TRUE(server().AddUnmaskResponse("site-1", ResponseOf("site-1")).ok());
  ASSERT_TRUE(server().AddUnmaskResponse("site-2", ResponseOf("site-2")).ok());
  auto sum = server().Finish();
  EXPECT_EQ(sum.status().code(), absl::StatusCode::kDataLoss) << sum.status();
  EXPECT_TRUE(Mentions(sum.status(), "mask key of dropped site site-4")) << sum.status();
}

// With more than t responses the extra shares are checked against the polynomial.
TEST_F(SecAggServerUnmaskTest, InconsistentExtraShareGivesDataLoss) {
  for (const std::string site : {"site-0", "site-1", "site-2"}) {
    ASSERT_TRUE(server().AddUnmaskResponse(site, ResponseOf(site)).ok());
  }
  UnmaskResponse forged = ResponseOf("site-3");
  forged.seed_shares[0].share[3] ^= 0x04;
  ASSERT_TRUE(server().AddUnmaskResponse("site-3", forged).ok());
  auto sum = server().Finish();
  EXPECT_EQ(sum.status().code(), absl::StatusCode::kDataLoss) << sum.status();
  EXPECT_TRUE(Mentions(sum.status(), "seed of site site-0 does not reconstruct")) << sum.status();
}

TEST_F(SecAggServerUnmaskTest, FinishesOnceAndThenRefuses) {
  ASSERT_TRUE(round_.Unmask().ok());
  auto sum = server().Finish();
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(*sum, round_.PlainSum(round_.AllBut({"site-4"})));
  EXPECT_EQ(server().Finish().status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace dermfed::secagg::testing
