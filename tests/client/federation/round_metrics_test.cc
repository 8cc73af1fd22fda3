#include "client/federation/round_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace dermfed::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::RoundInfo Round(int64_t round, const std::string& metrics_json) {
  v1::RoundInfo r;
  r.set_round(round);
  r.set_model_version(round);
  r.set_model_sha256_hex("ab" + std::to_string(round));
  r.set_sites_selected(3);
  r.set_sites_reported(2);
  r.set_started_unix_s(1700000000.25);
  r.set_finished_unix_s(1700000012.5);
  r.set_metrics_json(metrics_json);
  return r;
}

const char kEvaluated[] =
    R"({"round": 1, "model_version": 1, "num_examples": 40, "accuracy": 0.75,
        "balanced_accuracy": 0.625, "macro_auc": 0.9, "loss": 0.5, "confusion_matrix": [[1]],
        "sites": {"b-site": {"balanced_accuracy": 0.5, "accuracy": 0.6, "num_examples": 20},
                  "a,\"quoted\"": {"balanced_accuracy": 0.75, "accuracy": 0.9,
                                   "num_examples": 20}}})";

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(CsvFieldTest, QuotesOnlyWhatRfc4180Requires) {
  EXPECT_EQ(CsvField("plain"), "plain");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(CsvField("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(CsvField(""), "");
}

TEST(RoundMetricsCsvTest, HeaderThenOneLinePerRoundWithSiteColumnsSortedAndQuoted) {
  const std::string csv = RoundMetricsCsv({Round(1, kEvaluated)});
  EXPECT_THAT(Lines(csv),
              ElementsAre("round,model_version,sha256,sites_selected,sites_reported,started,"
                          "finished,balanced_accuracy,accuracy,macro_auc,loss,num_examples,"
                          "\"site:a,\"\"quoted\"\":balanced_accuracy\","
                          "site:b-site:balanced_accuracy",
                          "1,1,ab1,3,2,2023-11-14T22:13:20.250Z,2023-11-14T22:13:32.500Z,"
                          "0.625,0.75,0.9,0.5,40,0.75,0.5"));
}

TEST(RoundMetricsCsvTest, UnevaluatedRoundHasEmptyMetricFields) {
  const std::string csv = RoundMetricsCsv({Round(1, kEvaluated), Round(2, "")});
  ASSERT_EQ(Lines(csv).size(), 3u) << csv;
  EXPECT_EQ(Lines(csv)[2], "2,2,ab2,3,2,2023-11-14T22:13:20.250Z,2023-11-14T22:13:32.500Z,,,,,,,");
}

TEST(RoundMetricsCsvTest, DpEpsilonColumnOnlyWhenARoundRecordsIt) {
  EXPECT_THAT(Lines(RoundMetricsCsv({Round(1, kEvaluated)}))[0],
              ::testing::Not(HasSubstr("dp_epsilon")));
  const std::string csv =
      RoundMetricsCsv({Round(1, R"({"balanced_accuracy": 0.5, "dp_epsilon": 1.25})"),
                       Round(2, R"({"balanced_accuracy": 0.6})")});
  const auto lines = Lines(csv);
  EXPECT_THAT(lines[0], HasSubstr(",num_examples,dp_epsilon"));
  EXPECT_THAT(lines[1], ::testing::EndsWith(",1.25"));
  EXPECT_THAT(lines[2], ::testing::EndsWith(","));
}

TEST(RoundMetricsCsvTest, NoRoundsIsJustTheHeader) {
  const auto lines = Lines(RoundMetricsCsv({}));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], ::testing::StartsWith("round,model_version,sha256,"));
}

TEST(RoundMetricsJsonTest, OneObjectPerRoundWithNullsAndSites) {
  const auto j =
      nlohmann::json::parse(RoundMetricsJson({Round(1, kEvaluated), Round(2, "not json")}));
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["round"], 1);
  EXPECT_EQ(j[0]["sha256"], "ab1");
  EXPECT_EQ(j[0]["started"], "2023-11-14T22:13:20.250Z");
  EXPECT_EQ(j[0]["balanced_accuracy"], 0.625);
  EXPECT_EQ(j[0]["num_examples"], 40);
  EXPECT_EQ(j[0]["sites"]["b-site"]["balanced_accuracy"], 0.5);
  EXPECT_FALSE(j[0].contains("dp_epsilon"));
  EXPECT_TRUE(j[1]["balanced_accuracy"].is_null());
  EXPECT_FALSE(j[1].contains("sites"));
}

}  // namespace
}  // namespace dermfed::client
