#include "common/crypto/x25519.h"

#include <gtest/gtest.h>

#include "tests/common/crypto/hex.h"

namespace dermfed::crypto {
namespace {

using testing::FromHex;
using testing::ToVector;

// RFC 7748 section 6.1.
const char kAlicePrivate[] = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const char kAlicePublic[] = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const char kBobPrivate[] = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
const char kBobPublic[] = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
const char kShared[] = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

TEST(X25519Test, ImportPrivateKeyDerivesTheRfc7748PublicKeys) {
  auto alice = ImportPrivateKey(FromHex(kAlicePrivate));
  auto bob = ImportPrivateKey(FromHex(kBobPrivate));
  ASSERT_TRUE(alice.ok()) << alice.status();
  ASSERT_TRUE(bob.ok()) << bob.status();
  EXPECT_EQ(ToVector(alice->public_key), FromHex(kAlicePublic));
  EXPECT_EQ(ToVector(bob->public_key), FromHex(kBobPublic));
  EXPECT_EQ(ToVector(alice->private_key), FromHex(kAlicePrivate));
}

TEST(X25519Test, AgreeGivesTheRfc7748SharedSecretOnBothSides) {
  auto alice_side = Agree(FromHex(kAlicePrivate), FromHex(kBobPublic));
  auto bob_side = Agree(FromHex(kBobPrivate), FromHex(kAlicePublic));
  ASSERT_TRUE(alice_side.ok()) << alice_side.status();
  ASSERT_TRUE(bob_side.ok()) << bob_side.status();
  EXPECT_EQ(ToVector(*alice_side), FromHex(kShared));
  EXPECT_EQ(ToVector(*bob_side), FromHex(kShared));
}

TEST(X25519Test, GeneratedKeyPairsAgreeSymmetrically) {
  auto a = GenerateKeyPair();
  auto b = GenerateKeyPair();
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE(a->public_key, b->public_key) << "two fresh key pairs must differ";
  ASSERT_EQ(a->private_key.size(), kX25519KeyBytes);
  auto ab = Agree(a->private_key, b->public_key);
  auto ba = Agree(b->private_key, a->public_key);
  ASSERT_TRUE(ab.ok()) << ab.status();
  ASSERT_TRUE(ba.ok()) << ba.status();
  EXPECT_EQ(*ab, *ba) << "A·B must equal B·A";
}

TEST(X25519Test, ImportedKeyReproducesTheGeneratedPublicKey) {
  auto generated = GenerateKeyPair();
  ASSERT_TRUE(generated.ok()) << generated.status();
  auto imported = ImportPrivateKey(generated->private_key);
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->public_key, generated->public_key);
}

TEST(X25519Test, AgreeRefusesSmallOrderPeerKeys) {
  auto own = GenerateKeyPair();
  ASSERT_TRUE(own.ok()) << own.status();
  // u = 0 and u = 1 are points of small order: every private key gives the zero secret.
  std::vector<uint8_t> zero(32, 0);
  std::vector<uint8_t> one(32, 0);
  one[0] = 1;
  for (const auto& peer : {zero, one}) {
    auto shared = Agree(own->private_key, peer);
    EXPECT_EQ(shared.status().code(), absl::StatusCode::kInvalidArgument)
        << "peer key u=" << int{peer[0]} << ": " << shared.status();
  }
}

TEST(X25519Test, AgreeRefusesWrongKeyLengths) {
  auto own = GenerateKeyPair();
  ASSERT_TRUE(own.ok()) << own.status();
  std::vector<uint8_t> short_key(31, 7);
  auto bad_peer = Agree(own->private_key, short_key);
  EXPECT_EQ(bad_peer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_peer.status().message().find("31 bytes"), absl::string_view::npos)
      << bad_peer.status();
  auto bad_own = Agree(short_key, own->public_key);
  EXPECT_EQ(bad_own.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ImportPrivateKey(short_key).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dermfed::crypto
