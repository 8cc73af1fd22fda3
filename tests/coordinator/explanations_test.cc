// The coordinator's combination of the sites' metadata-feature importances: the exact
// row-weighted mean per class, the class-balanced overall value, the order of features, and
// what it ignores.
#include "coordinator/explanations.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dermfed::coordinator {
namespace {

const std::vector<std::string> kClasses = {"MEL", "NEV"};

v1::MetricsReport Report(const std::map<std::string, double>& metrics) {
  v1::MetricsReport r;
  for (const auto& [k, v] : metrics) (*r.mutable_metrics())[k] = v;
  (*r.mutable_metrics())["balanced_accuracy"] = 0.5;  // other metrics are left alone
  return r;
}

nlohmann::json Combine(const std::map<std::string, v1::MetricsReport>& reports) {
  const std::string json = CombinedImportanceJson(reports, kClasses);
  auto j = nlohmann::json::parse(json, nullptr, false);
  EXPECT_TRUE(j.is_object()) << json;
  return j;
}

// importance[class][feature] of the combined JSON, found by the feature's name.
double At(const nlohmann::json& j, int cls, const std::string& feature) {
  for (size_t f = 0; f < j["features"].size(); ++f) {
    if (j["features"][f] == feature) return j["importance"][cls][f].get<double>();
  }
  ADD_FAILURE() << "no feature " << feature << " in " << j.dump();
  return 0;
}

// Site a: 10 MEL rows, 30 NEV rows; site b: 30 and 10.
std::map<std::string, v1::MetricsReport> TwoSites() {
  return {{"a", Report({{"importance_rows/MEL", 10},
                        {"importance_rows/NEV", 30},
                        {"importance/MEL/age", 0.2},
                        {"importance/MEL/region", 0.1},
                        {"importance/NEV/age", 0.0},
                        {"importance/NEV/region", 0.4}})},
          {"b", Report({{"importance_rows/MEL", 30},
                        {"importance_rows/NEV", 10},
                        {"importance/MEL/age", 0.6},
                        {"importance/MEL/region", 0.3},
                        {"importance/NEV/age", 0.4},
                        {"importance/NEV/region", 0.0}})}};
}

TEST(CombinedImportanceTest, RowWeightedMeanPerClassAndClassBalancedOverall) {
  const nlohmann::json j = Combine(TwoSites());
  ASSERT_EQ(j["classes"], nlohmann::json(kClasses));
  // MEL: age (10·0.2 + 30·0.6)/40 = 0.5, region (10·0.1 + 30·0.3)/40 = 0.25;
  // NEV: age (30·0 + 10·0.4)/40 = 0.1, region (30·0.4 + 10·0)/40 = 0.3.
  // Overall: age (0.5 + 0.1)/2 = 0.3 > region (0.25 + 0.3)/2 = 0.275, so age comes first.
  ASSERT_EQ(j["features"], nlohmann::json({"age", "region"}));
  EXPECT_DOUBLE_EQ(j["importance"][0][0].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j["importance"][0][1].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(j["importance"][1][0].get<double>(), 0.1);
  EXPECT_DOUBLE_EQ(j["importance"][1][1].get<double>(), 0.3);
  EXPECT_DOUBLE_EQ(j["overall"][0].get<double>(), 0.3);
  EXPECT_DOUBLE_EQ(j["overall"][1].get<double>(), 0.275);
  EXPECT_EQ(j["rows"], nlohmann::json({40, 40}));
  EXPECT_EQ(j["sites"], 2);
  EXPECT_TRUE(j["measure"].is_string());
}

TEST(CombinedImportanceTest, EmptyWhenNoSiteReportedImportance) {
  EXPECT_EQ(CombinedImportanceJson({}, kClasses), "");
  EXPECT_EQ(CombinedImportanceJson({{"a", Report({})}}, kClasses), "");
}

TEST(CombinedImportanceTest, SitesWithoutImportanceAndClassesWithoutRowsAreLeftOut) {
  auto reports = TwoSites();
  reports["c"] = Report({});  // site.explain = false
  reports["d"] = Report({{"importance_rows/MEL", 40},
                         {"importance_rows/NEV", 0},
                         {"importance/MEL/age", 0.1},
                         {"importance/MEL/region", 0.1}});
  const nlohmann::json j = Combine(reports);
  EXPECT_EQ(j["sites"], 3);
  EXPECT_EQ(j["rows"], nlohmann::json({80, 40}));
  // MEL age: (20 + 40·0.1)/80 = 0.3; NEV age unchanged at 0.1.
  EXPECT_DOUBLE_EQ(At(j, 0, "age"), 0.3);
  EXPECT_DOUBLE_EQ(At(j, 1, "age"), 0.1);
}

TEST(CombinedImportanceTest, AClassNobodyScoredIsNullAndDoesNotCountOverall) {
  const nlohmann::json j =
      Combine({{"a", Report({{"importance_rows/MEL", 5}, {"importance/MEL/age", 0.2}})}});
  EXPECT_DOUBLE_EQ(j["importance"][0][0].get<double>(), 0.2);
  EXPECT_TRUE(j["importance"][1][0].is_null());
  EXPECT_DOUBLE_EQ(j["overall"][0].get<double>(), 0.2);
  EXPECT_EQ(j["rows"], nlohmann::json({5, 0}));
}

TEST(CombinedImportanceTest, ASiteCannotOutweighItsOwnEvaluation) {
  auto reports = TwoSites();
  // Site b claims 30 MEL rows but its confusion matrix holds only 10 MEL rows.
  for (int64_t v : {6, 4, 1, 9}) reports["b"].add_confusion(v);  // rows: MEL 10, NEV 10
  const nlohmann::json j = Combine(reports);
  // MEL age: (10·0.2 + 10·0.6)/20 = 0.4.
  EXPECT_DOUBLE_EQ(At(j, 0, "age"), 0.4);
  EXPECT_EQ(j["rows"], nlohmann::json({20, 40}));
}

TEST(CombinedImportanceTest, FeatureNamesMayHoldSlashesAndUnknownClassesAreIgnored) {
  const nlohmann::json j = Combine({{"a", Report({{"importance_rows/MEL", 4},
                                                  {"importance/MEL/size/mm", 0.5},
                                                  {"importance/XYZ/age", 9.0},
                                                  {"importance_rows/XYZ", 100}})}});
  EXPECT_EQ(j["features"], nlohmann::json({"size/mm"}));
  EXPECT_EQ(j["rows"], nlohmann::json({4, 0}));
}

}  // namespace
}  // namespace dermfed::coordinator
