// The one config loader: declared keys only, typed values, flags over file over defaults.
#include "common/config.h"

#include <gtest/gtest.h>

namespace dermfed {
namespace {

const std::vector<ConfigKey> kKeys = {
    {"federation.rounds", ConfigType::kInt, "3", "rounds"},
    {"federation.fraction", ConfigType::kDouble, "1.0", "fraction"},
    {"model.backbone", ConfigType::kString, "tiny", "backbone"},
    {"training.fedbn", ConfigType::kBool, "false", "fedbn"},
};

TEST(ConfigTest, DefaultsApplyWithoutAFile) {
  auto c = Config::Load(kKeys, "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->GetInt("federation.rounds"), 3);
  EXPECT_EQ(c->GetString("model.backbone"), "tiny");
  EXPECT_EQ(c->SourceOf("federation.rounds"), "default");
}

TEST(ConfigTest, FileOverridesDefaultsAndFlagsOverrideTheFile) {
  auto c = Config::FromString(kKeys, "[federation]\nrounds = 7\nfraction = 1\n[model]\nbackbone = \"vgg13\"\n",
                              "coord.toml", {{"federation.rounds", "9"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->GetInt("federation.rounds"), 9);
  EXPECT_EQ(c->SourceOf("federation.rounds"), "command line");
  EXPECT_DOUBLE_EQ(c->GetDouble("federation.fraction"), 1.0) << "an integer is a valid float";
  EXPECT_EQ(c->GetString("model.backbone"), "vgg13");
  EXPECT_EQ(c->SourceOf("model.backbone"), "coord.toml");
}

TEST(ConfigTest, UnknownKeyIsRefusedNamingFileAndKey) {
  auto c = Config::FromString(kKeys, "[federation]\nround = 7\n", "coord.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("coord.toml: unknown key 'federation.round'"),
            std::string::npos)
      << c.status();
}

TEST(ConfigTest, WrongTypeIsRefusedNamingTheKey) {
  auto c = Config::FromString(kKeys, "[training]\nfedbn = \"yes\"\n", "site.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("'training.fedbn' must be a boolean"), std::string::npos)
      << c.status();
  auto f = Config::FromString(kKeys, "", "x", {{"federation.rounds", "many"}});
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("'federation.rounds' must be an integer"), std::string::npos);
}

TEST(ConfigTest, SyntaxErrorNamesLineAndColumn) {
  auto c = Config::FromString(kKeys, "[federation]\nrounds = = 3\n", "bad.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("bad.toml:2:"), std::string::npos) << c.status();
}

TEST(ConfigTest, UnknownFlagIsRefused) {
  auto c = Config::Load(kKeys, "", {{"server.nope", "1"}});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("'server.nope'"), std::string::npos);
}

TEST(ConfigTest, MissingFileIsNotFound) {
  auto c = Config::Load(kKeys, "/nonexistent/coordinator.toml");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace dermfed
