// The coordinator's and the site's settings: impossible combinations are refused naming the
// keys, and every key is documented in docs/configuration.md.
#include "coordinator/coordinator_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "client/federation/site_daemon.h"

namespace dermfed::coordinator {
namespace {

TEST(CoordinatorConfigTest, DefaultsAreValid) {
  auto c = LoadCoordinatorConfig("", {});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->strategy.name, "fedavg");
}

TEST(CoordinatorConfigTest, MinSitesAboveExpectedSitesNamesBothKeys) {
  auto c = LoadCoordinatorConfig("", {{"federation.min_sites", "5"}, {"federation.expected_sites", "3"}});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("federation.min_sites (5) exceeds federation.expected_sites (3)"),
            std::string::npos)
      << c.status();
}

TEST(CoordinatorConfigTest, OutOfRangeValuesNameTheKey) {
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"federation.fraction", "1.5"}, {"federation.stragglers", "ignore"},
           {"training.optimizer", "lbfgs"}, {"model.sr_factor", "0"}, {"federation.rounds", "0"}}) {
    auto c = LoadCoordinatorConfig("", {{key, value}});
    ASSERT_FALSE(c.ok()) << key << "=" << value << " was accepted";
    EXPECT_NE(c.status().message().find(key), std::string::npos) << c.status();
  }
}

TEST(CoordinatorConfigTest, EveryKeyIsDocumented) {
  std::ifstream in(DERMFED_SOURCE_DIR "/docs/configuration.md");
  ASSERT_TRUE(in) << "docs/configuration.md is missing";
  std::stringstream doc;
  doc << in.rdbuf();
  for (const auto* keys : {&CoordinatorConfigKeys(), &client::SiteConfigKeys()}) {
    for (const ConfigKey& k : *keys) {
      EXPECT_NE(doc.str().find("`" + k.name + "`"), std::string::npos)
          << k.name << " is not documented in docs/configuration.md";
    }
  }
}

TEST(SiteConfigTest, NameAndDataAreRequired) {
  auto c = client::LoadSiteConfig("", {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("site.name"), std::string::npos);
  auto d = client::LoadSiteConfig("", {{"site.name", "a"}, {"site.data", "/d"}});
  EXPECT_TRUE(d.ok()) << d.status();
}

}  // namespace
}  // namespace dermfed::coordinator
