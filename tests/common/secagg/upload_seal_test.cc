// The seal on masked uploads: it opens only for the coordinator's round key, the sending
// site's identity, the same round, version and chunk offset.
#include "common/secagg/upload_seal.h"

#include <gtest/gtest.h>

#include "common/crypto/x25519.h"

namespace dermfed::secagg {
namespace {

class UploadSealTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto k = crypto::GenerateKeyPair();
    ASSERT_TRUE(k.ok()) << k.status();
    coordinator_ = std::move(k).value();
    public_.assign(reinterpret_cast<const char*>(coordinator_.public_key.data()),
                   coordinator_.public_key.size());
  }
  StatusOr<std::string> Open(const UploadSealer& s, const std::string& site, int64_t round,
                             int64_t version, uint64_t offset, const std::string& sealed) {
    DF_ASSIGN_OR_RETURN(UploadOpener o, UploadOpener::Create(coordinator_.private_key,
                                                             s.public_key(), site, round, version));
    return o.Open(offset, sealed);
  }
  crypto::KeyPair coordinator_;
  std::string public_;
};

TEST_F(UploadSealTest, OpensOnlyWhereItWasSealedFor) {
  auto sealer = UploadSealer::Create(public_, "site-1", 3, 2);
  ASSERT_TRUE(sealer.ok()) << sealer.status();
  const std::string chunk(4096, 'x');
  auto sealed = sealer->Seal(2097152, chunk);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(sealed->find(chunk.substr(0, 64)), std::string::npos) << "the chunk is in the clear";
  auto good = Open(*sealer, "site-1", 3, 2, 2097152, *sealed);
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(*good, chunk);
  // Redirected (another certificate), replayed into another round or version, moved to
  // another offset, or altered: refused, naming the site, round and offset.
  for (auto [site, round, version, offset] :
       std::vector<std::tuple<std::string, int64_t, int64_t, uint64_t>>{
           {"site-2", 3, 2, 2097152}, {"site-1", 4, 2, 2097152}, {"site-1", 3, 3, 2097152},
           {"site-1", 3, 2, 0}}) {
    auto bad = Open(*sealer, site, round, version, offset, *sealed);
    ASSERT_FALSE(bad.ok()) << site << " " << round << " " << version << " " << offset;
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(bad.status().message().find("site '" + site + "'"), std::string::npos);
    EXPECT_NE(bad.status().message().find("offset " + std::to_string(offset)), std::string::npos);
  }
  std::string altered = *sealed;
  altered[20] ^= 1;
  EXPECT_FALSE(Open(*sealer, "site-1", 3, 2, 2097152, altered).ok());
  // Another round's coordinator key does not open it either.
  auto other = crypto::GenerateKeyPair();
  ASSERT_TRUE(other.ok());
  auto o = UploadOpener::Create(other->private_key, sealer->public_key(), "site-1", 3, 2);
  ASSERT_TRUE(o.ok());
  EXPECT_FALSE(o->Open(2097152, *sealed).ok());
}

TEST_F(UploadSealTest, RefusesMissingKeys) {
  EXPECT_FALSE(UploadSealer::Create("", "site-1", 1, 0).ok());
  EXPECT_FALSE(UploadOpener::Create(coordinator_.private_key, "short", "site-1", 1, 0).ok());
}

}  // namespace
}  // namespace dermfed::secagg
