// The coordinator's and the site's settings: impossible combinations are refused naming the
// keys, and every key is documented in docs/configuration.md.
#include "coordinator/coordinator_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "client/federation/site_daemon.h"

namespace dermfed::coordinator {
namespace {

// No certificates and no explicit insecure flag: refused, naming the keys.
TEST(CoordinatorConfigTest, DefaultsNeedCertificatesOrTheExplicitInsecureFlag) {
  auto c = LoadCoordinatorConfig("", {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("tls.ca, tls.cert and tls.key are required"),
            std::string::npos)
      << c.status();
  auto insecure = LoadCoordinatorConfig("", {{"server.insecure", "true"}});
  ASSERT_TRUE(insecure.ok()) << insecure.status();
  EXPECT_EQ(insecure->strategy.name, "fedavg");
  auto tls = LoadCoordinatorConfig("", {{"tls.ca", "ca.crt"}, {"tls.cert", "c.crt"}, {"tls.key", "c.key"}});
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_FALSE(tls->insecure);
}

TEST(CoordinatorConfigTest, SecureAggregationRefusesStrategiesThatNeedEachUpdate) {
  for (const char* strategy : {"fedmedian", "trimmed_mean", "krum"}) {
    auto c = LoadCoordinatorConfig("", {{"server.insecure", "true"},
                                        {"security.secure_aggregation", "true"},
                                        {"strategy.name", strategy}});
    ASSERT_FALSE(c.ok()) << strategy << " was accepted under secure aggregation";
    EXPECT_NE(c.status().message().find("needs every site's own update"), std::string::npos)
        << c.status();
  }
  auto one = LoadCoordinatorConfig("", {{"server.insecure", "true"},
                                        {"security.secure_aggregation", "true"},
                                        {"federation.min_sites", "1"}});
  ASSERT_FALSE(one.ok());
  EXPECT_NE(one.status().message().find("federation.min_sites >= 2"), std::string::npos);
  auto ok = LoadCoordinatorConfig("", {{"server.insecure", "true"},
                                       {"security.secure_aggregation", "true"},
                                       {"strategy.name", "fedadam"}});
  EXPECT_TRUE(ok.ok()) << ok.status();
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

TEST(CoordinatorConfigTest, CompressionNamesAndFractionAreChecked) {
  const std::map<std::string, std::string> insecure = {{"server.insecure", "true"}};
  for (const char* codec : {"none", "fp16", "int8", "topk"}) {
    auto o = insecure;
    o["federation.compression"] = codec;
    auto c = LoadCoordinatorConfig("", o);
    ASSERT_TRUE(c.ok()) << codec << ": " << c.status();
    EXPECT_EQ(c->compression, codec);
  }
  for (auto [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"federation.compression", "zstd"}, {"federation.topk_fraction", "0"},
           {"federation.topk_fraction", "1.5"}}) {
    auto o = insecure;
    o["federation.compression"] = key == "federation.compression" ? value : "topk";
    o[key] = value;
    auto c = LoadCoordinatorConfig("", o);
    ASSERT_FALSE(c.ok()) << key << "=" << value << " was accepted";
    EXPECT_NE(c.status().message().find(key), std::string::npos) << c.status();
  }
}

TEST(CoordinatorConfigTest, CompressionIsRefusedWithSecureAggregationAndDp) {
  auto secagg = LoadCoordinatorConfig("", {{"server.insecure", "true"},
                                           {"federation.compression", "int8"},
                                           {"security.secure_aggregation", "true"}});
  ASSERT_FALSE(secagg.ok());
  EXPECT_NE(secagg.status().message().find("cannot be combined with security.secure_aggregation"),
            std::string::npos)
      << secagg.status();
  auto dp = LoadCoordinatorConfig("", {{"server.insecure", "true"},
                                       {"federation.compression", "topk"},
                                       {"dp.mode", "central"}});
  ASSERT_FALSE(dp.ok());
  EXPECT_NE(dp.status().message().find("dp.mode = central"), std::string::npos) << dp.status();
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
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("site.ca, site.cert and site.key are required"),
            std::string::npos)
      << d.status();
  auto e = client::LoadSiteConfig("", {{"site.name", "a"}, {"site.data", "/d"},
                                       {"site.insecure", "true"}});
  EXPECT_TRUE(e.ok()) << e.status();
}

}  // namespace
}  // namespace dermfed::coordinator
