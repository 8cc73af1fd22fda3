// The site's side: what a Client refuses to accept and refuses to reveal.
#include "common/secagg/client.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "tests/common/secagg/simulated_round.h"

namespace dermfed::secagg::testing {
namespace {

constexpr size_t kLength = 1'000;

bool Mentions(const Status& status, absl::string_view text) {
  return status.message().find(text) != absl::string_view::npos;
}

// A round of 5 sites, threshold 3, through ShareKeys.
class SecAggClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(round_.Advertise().ok());
    ASSERT_TRUE(round_.ShareKeys().ok());
  }
  Client& client(const std::string& site) { return round_.clients.at(site); }
  MaskingRequest RequestFor(const std::string& site) {
    auto request = round_.server->MaskingRequestFor(site);
    EXPECT_TRUE(request.ok()) << request.status();
    return *request;
  }

  SimulatedRound round_{5, 3, kLength};
};

TEST(SecAggClientCreateTest, RefusesBadArguments) {
  EXPECT_EQ(Client::Create("", TestContext(), 3).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Client::Create(std::string(256, 'a'), TestContext(), 3).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Client::Create("site-0", "", 3).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Client::Create("site-0", TestContext(), 1).status().code(),
            absl::StatusCode::kInvalidArgument)
      << "t = 1 would give every site every secret";
  EXPECT_EQ(Client::Create("site-0", TestContext(), 256).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SecAggClientCreateTest, EveryClientMakesFreshKeys) {
  auto a = Client::Create("site-0", TestContext(), 3);
  auto b = Client::Create("site-0", TestContext(), 3);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->advertisement().channel_public_key, b->advertisement().channel_public_key);
  EXPECT_NE(a->advertisement().mask_public_key, b->advertisement().mask_public_key);
  EXPECT_NE(a->advertisement().seed_commitment, b->advertisement().seed_commitment);
  EXPECT_NE(a->advertisement().channel_public_key, a->advertisement().mask_public_key);
}

// U1 checks, on fresh clients (the fixture's have already shared their keys).
class SecAggClientShareKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 4; ++i) {
      auto c = Client::Create(absl::StrCat("site-", i), TestContext(), 3);
      ASSERT_TRUE(c.ok()) << c.status();
      list_.advertisements.push_back(c->advertisement());
      clients_.push_back(*std::move(c));
    }
  }
  std::vector<Client> clients_;
  AdvertisementList list_;
};

TEST_F(SecAggClientShareKeysTest, SharesOneSealedShareWithEveryOtherSite) {
  auto bundle = clients_[1].ShareKeys(list_);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  ASSERT_EQ(bundle->shares.size(), 3u);
  for (const EncryptedShare& share : bundle->shares) {
    EXPECT_EQ(share.from, "site-1");
    EXPECT_NE(share.to, "site-1");
  }
  EXPECT_EQ(clients_[1].ShareKeys(list_).status().code(), absl::StatusCode::kFailedPrecondition)
      << "splitting the same secrets twice must be refused";
}

TEST_F(SecAggClientShareKeysTest, AcceptsUnsortedList) {
  std::reverse(list_.advertisements.begin(), list_.advertisements.end());
  EXPECT_TRUE(clients_[0].ShareKeys(list_).ok());
}

TEST_F(SecAggClientShareKeysTest, RefusesListWithoutThisSite) {
  list_.advertisements.erase(list_.advertisements.begin() + 2);
  const Status status = clients_[2].ShareKeys(list_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Mentions(status, "does not list this site")) << status;
  // The refusal changed nothing: the right list still works.
  list_.advertisements.push_back(clients_[2].advertisement());
  EXPECT_TRUE(clients_[2].ShareKeys(list_).ok());
}

TEST_F(SecAggClientShareKeysTest, RefusesListWithThisSiteUnderOtherKeys) {
  list_.advertisements[0].mask_public_key[5] ^= 1;
  const Status status = clients_[0].ShareKeys(list_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Mentions(status, "not the ones it advertised")) << status;
}

TEST_F(SecAggClientShareKeysTest, RefusesDuplicateSite) {
  Advertisement copy = list_.advertisements[3];
  copy.mask_public_key[0] ^= 1;
  copy.channel_public_key[0] ^= 1;
  list_.advertisements.push_back(copy);
  const Status status = clients_[0].ShareKeys(list_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Mentions(status, "site-3 more than once")) << status;
}

TEST_F(SecAggClientShareKeysTest, RefusesDuplicateKey) {
  list_.advertisements[3].mask_public_key = list_.advertisements[2].channel_public_key;
  const Status status = clients_[0].ShareKeys(list_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Mentions(status, "site-2, site-3")) << status;
}

TEST_F(SecAggClientShareKeysTest, RefusesListSmallerThanThreshold) {
  list_.advertisements.resize(2);
  const Status status = clients_[0].ShareKeys(list_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Mentions(status, "has 2 sites")) << status;
}

TEST_F(SecAggClientShareKeysTest, RefusesSmallOrderPeerKey) {
  list_.advertisements[1].channel_public_key.fill(0);  // the point of order 1 (u = 0)
  const Status status = clients_[0].ShareKeys(list_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Mentions(status, "site-1")) << status;
}

TEST_F(SecAggClientTest, TamperedShareIsDetectedBeforeTheInputIsTouched) {
  MaskingRequest request = RequestFor("site-0");
  ASSERT_EQ(request.shares.size(), 4u);
  request.shares[1].ciphertext[20] ^= 0x01;
  const std::string sender = request.shares[1].from;
  std::vector<uint32_t> x = round_.inputs.at("site-0");
  const Status status = client("site-0").MaskInPlace(absl::MakeSpan(x), request);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_TRUE(Mentions(status, "share from site " + sender)) << status;
  EXPECT_EQ(x, round_.inputs.at("site-0")) << "x must be untouched when a share is refused";
  // The refusal changed nothing: the genuine request still works.
  EXPECT_TRUE(client("site-0").MaskInPlace(absl::MakeSpan(x), RequestFor("site-0")).ok());
}

TEST_F(SecAggClientTest, ShareRelabelledAsFromAnotherSiteIsDetected) {
  MaskingRequest request = RequestFor("site-0");
  std::swap(request.shares[0].ciphertext, request.shares[1].ciphertext);
  std::vector<uint32_t> x(kLength);
  const Status status = client("site-0").MaskInPlace(absl::MakeSpan(x), request);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
}

TEST_F(SecAggClientTest, ShareForAnotherSiteIsRefused) {
  MaskingRequest request = RequestFor("site-0");
  request.shares[0] = RequestFor("site-1").shares[1];
  std::vector<uint32_t> x(kLength);
  const Status status = client("site-0").MaskInPlace(absl::MakeSpan(x), request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Mentions(status, "addressed to site site-1")) << status;
}

TEST_F(SecAggClientTest, MissingShareIsRefusedNamingItsSender) {
  MaskingRequest request = RequestFor("site-0");
  const std::string sender = request.shares[2].from;
  request.shares.erase(request.shares.begin() + 2);
  std::vector<uint32_t> x(kLength);
  const Status status = client("site-0").MaskInPlace(absl::MakeSpan(x), request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Mentions(status, "no share from site(s) " + sender)) << status;
}

TEST_F(SecAggClientTest, U2OutsideU1OrBelowThresholdIsRefused) {
  MaskingRequest request = RequestFor("site-0");
  request.u2.push_back("site-9");
  std::vector<uint32_t> x(kLength);
  Status status = client("site-0").MaskInPlace(absl::MakeSpan(x), request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Mentions(status, "site-9, which is not in U1")) << status;

  request = RequestFor("site-0");
  request.u2 = {"site-0", "site-1"};
  request.shares.resize(1);
  status = client("site-0").MaskInPlace(absl::MakeSpan(x), request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Mentions(status, "fewer than the threshold 3")) << status;
}

TEST_F(SecAggClientTest, MasksOnlyOnce) {
  std::vector<uint32_t> x = round_.inputs.at("site-0");
  ASSERT_TRUE(client("site-0").MaskInPlace(absl::MakeSpan(x), RequestFor("site-0")).ok());
  std::vector<uint32_t> again = round_.inputs.at("site-0");
  EXPECT_EQ(client("site-0").MaskInPlace(absl::MakeSpan(again), RequestFor("site-0")).code(),
            absl::StatusCode::kFailedPrecondition)
      << "two inputs under the same masks would reveal their difference";
  EXPECT_EQ(again, round_.inputs.at("site-0"));
}

// A site whose context differs (here: another round) derives other channel keys from the
// same X25519 agreements, so its peers cannot open its shares.
TEST(SecAggClientContextTest, ShareUnderAnotherContextIsDetected) {
  SimulatedRound round(5, 3, kLength, {{"site-2", RoundContext("test-federation", 8, "model-v3")}});
  ASSERT_TRUE(round.Advertise().ok());
  ASSERT_TRUE(round.ShareKeys().ok());
  const Status status = round.MaskAndSend();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_TRUE(Mentions(status, "share from site site-2")) << status;
}

class SecAggClientUnmaskTest : public SecAggClientTest {
 protected:
  void SetUp() override {
    SecAggClientTest::SetUp();
    ASSERT_TRUE(round_.MaskAndSend({"site-4"}).ok());
  }
};

TEST_F(SecAggClientUnmaskTest, AnswersWithSeedSharesOfSurvivorsAndKeySharesOfDropped) {
  auto response = client("site-1").Unmask(round_.unmask_request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->from, "site-1");
  ASSERT_EQ(response->mask_key_shares.size(), 1u);
  EXPECT_EQ(response->mask_key_shares[0].owner, "site-4");
  ASSERT_EQ(response->seed_shares.size(), 4u);
  EXPECT_EQ(response->seed_shares[1].owner, "site-1") << "its own seed share too";
  // A repeated request (a retried RPC) gets the same answer.
  auto again = client("site-1").Unmask(round_.unmask_request);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->Serialize(), response->Serialize());
}

TEST_F(SecAggClientUnmaskTest, RefusesToRevealBothSharesOfOneSite) {
  UnmaskRequest request = round_.unmask_request;
  request.dropped.push_back("site-2");  // site-2 is also a survivor
  const Status status = client("site-1").Unmask(request).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_TRUE(Mentions(status, "site-2 both as a survivor and as dropped")) << status;
}

TEST_F(SecAggClientUnmaskTest, RefusesARequestThatContradictsAnEarlierAnswer) {
  ASSERT_TRUE(client("site-1").Unmask(round_.unmask_request).ok());
  // Now claim site-4 survived: its seed share plus the key share already given would
  // unmask its input.
  UnmaskRequest request;
  request.survivors = {"site-0", "site-1", "site-2", "site-3", "site-4"};
  Status status = client("site-1").Unmask(request).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_TRUE(Mentions(status, "site-4 as a survivor, but an earlier request")) << status;

  // And the other way round: claim site-3 dropped after revealing its seed share.
  request.survivors = {"site-0", "site-1", "site-2"};
  request.dropped = {"site-3", "site-4"};
  status = client("site-1").Unmask(request).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_TRUE(Mentions(status, "site-3 as dropped, but an earlier request")) << status;
}

TEST_F(SecAggClientUnmaskTest, RefusesFewerSurvivorsThanThreshold) {
  UnmaskRequest request;
  request.survivors = {"site-0", "site-1"};
  request.dropped = {"site-2", "site-3", "site-4"};
  const Status status = client("site-1").Unmask(request).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_TRUE(Mentions(status, "2 survivors, fewer than the threshold 3")) << status;
}

TEST_F(SecAggClientUnmaskTest, RefusesBeingListedAsDropped) {
  UnmaskRequest request;
  request.survivors = {"site-0", "site-2", "site-3"};
  request.dropped = {"site-1", "site-4"};
  const Status status = client("site-1").Unmask(request).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
}

TEST_F(SecAggClientUnmaskTest, RefusesListsThatAreNotAPartitionOfU2) {
  UnmaskRequest request = round_.unmask_request;
  request.survivors.push_back("site-7");
  Status status = client("site-1").Unmask(request).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Mentions(status, "site-7 among the survivors, but it is not in U2")) << status;

  request = round_.unmask_request;
  request.dropped.clear();  // site-4 unaccounted for
  status = client("site-1").Unmask(request).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Mentions(status, "does not account for site(s) site-4")) << status;

  request = round_.unmask_request;
  request.survivors.push_back("site-0");
  status = client("site-1").Unmask(request).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
}

TEST_F(SecAggClientTest, UnmaskBeforeMaskingIsRefused) {
  UnmaskRequest request;
  request.survivors = round_.sites;
  EXPECT_EQ(client("site-0").Unmask(request).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace dermfed::secagg::testing
