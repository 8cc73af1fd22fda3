// The dashboard's JSON views and the Prometheus exposition: exact numbers from known input.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "coordinator/api_json.h"
#include "coordinator/server_metrics.h"

namespace dermfed::coordinator {
namespace {

using nlohmann::json;

// Two classes: 8 of A right, 2 A called B; 1 B called A, 9 B right.
constexpr char kMetrics[] =
    R"({"round": 2, "balanced_accuracy": 0.85, "macro_auc": null, "loss": 0.4,)"
    R"( "confusion_matrix": [[8, 2], [1, 9]], "sites": {"s1": {"balanced_accuracy": 0.8}}})";

TEST(MetricsObjectTest, AddsPerClassSensitivityAndSpecificity) {
  const json m = MetricsObject(kMetrics, {"A", "B"});
  ASSERT_TRUE(m.is_object());
  EXPECT_EQ(m["balanced_accuracy"], 0.85);
  EXPECT_TRUE(m["macro_auc"].is_null());
  ASSERT_EQ(m["per_class"].size(), 2u);
  EXPECT_EQ(m["per_class"][0]["class"], "A");
  EXPECT_DOUBLE_EQ(m["per_class"][0]["sensitivity"].get<double>(), 0.8);   // 8 / 10
  EXPECT_DOUBLE_EQ(m["per_class"][0]["specificity"].get<double>(), 0.9);   // 9 / (9 + 1)
  EXPECT_EQ(m["per_class"][0]["support"], 10);
  EXPECT_DOUBLE_EQ(m["per_class"][1]["sensitivity"].get<double>(), 0.9);
  EXPECT_DOUBLE_EQ(m["per_class"][1]["specificity"].get<double>(), 0.8);
  EXPECT_EQ(m["sites"]["s1"]["balanced_accuracy"], 0.8);
}

TEST(MetricsObjectTest, AClassWithNoRowsHasNullSensitivity) {
  const json m = MetricsObject(R"({"confusion_matrix": [[5, 0], [0, 0]]})", {"A", "B"});
  EXPECT_TRUE(m["per_class"][1]["sensitivity"].is_null());
  EXPECT_DOUBLE_EQ(m["per_class"][1]["specificity"].get<double>(), 1.0);
}

TEST(MetricsObjectTest, EmptyOrBrokenIsNullAndRaggedMatrixIsLeftAlone) {
  EXPECT_TRUE(MetricsObject("", {"A"}).is_null());
  EXPECT_TRUE(MetricsObject("{not json", {"A"}).is_null());
  EXPECT_TRUE(MetricsObject("[1, 2]", {"A"}).is_null());
  const json ragged = MetricsObject(R"({"confusion_matrix": [[1, 2], [3]]})", {"A", "B"});
  EXPECT_FALSE(ragged.contains("per_class"));
  EXPECT_EQ(ragged["confusion_matrix"][1].size(), 1u);
}

TEST(ApiJsonTest, StatusNamesTheStateInLowerCaseAndShowsDpOnlyWhenOn) {
  v1::FederationStatus s;
  s.set_state(v1::FederationStatus::TRAINING);
  s.set_round(3);
  s.set_rounds_total(10);
  s.mutable_spec()->add_class_names("A");
  s.mutable_spec()->add_class_names("B");
  s.set_latest_metrics_json(R"({"confusion_matrix": [[1, 0], [0, 1]], "dp_epsilon": 2.5})");
  CoordinatorConfig config;
  json j = StatusJson(s, config, "researcher:r1", 42);
  EXPECT_EQ(j["state"], "training");
  EXPECT_EQ(j["round"], 3);
  EXPECT_EQ(j["rounds_total"], 10);
  EXPECT_EQ(j["class_names"], json({"A", "B"}));
  EXPECT_TRUE(j["dp"].is_null());
  EXPECT_EQ(j["caller"], "researcher:r1");
  EXPECT_EQ(j["latest_metrics"]["per_class"].size(), 2u);
  config.dp_mode = "central";
  j = StatusJson(s, config, "token", 42);
  EXPECT_EQ(j["dp"]["mode"], "central");
  EXPECT_EQ(j["dp"]["epsilon"], 2.5);
}

TEST(ApiJsonTest, EventsUseLowerCaseKindsAndNullForNaN) {
  v1::Event e;
  e.set_seq(7);
  e.set_kind(v1::Event::ROUND_EVALUATED);
  e.set_round(2);
  (*e.mutable_metrics())["macro_auc"] = NAN;
  (*e.mutable_metrics())["loss"] = 0.5;
  const json j = EventsJson({e}, 7, false);
  EXPECT_EQ(j["events"][0]["kind"], "round_evaluated");
  EXPECT_TRUE(j["events"][0]["metrics"]["macro_auc"].is_null());
  EXPECT_EQ(j["events"][0]["metrics"]["loss"], 0.5);
  EXPECT_EQ(j["last_seq"], 7);
  // The body must be valid JSON for a browser (no NaN token).
  EXPECT_EQ(j.dump().find("NaN"), std::string::npos);
}

TEST(ApiJsonTest, ModelsSayWhichVersionsCanStillBeDownloaded) {
  v1::ListRoundsResponse rounds;
  for (int v = 0; v < 3; ++v) {
    auto* r = rounds.add_rounds();
    r->set_round(v);
    r->set_model_version(v);
    r->set_model_sha256_hex(std::string(64, static_cast<char>('a' + v)));
  }
  const json j = ModelsJson(rounds, [](int64_t v) { return v >= 1; });
  ASSERT_EQ(j["models"].size(), 3u);
  EXPECT_EQ(j["models"][0]["available"], false);
  EXPECT_EQ(j["models"][2]["available"], true);
  EXPECT_EQ(j["models"][2]["sha256"], std::string(64, 'c'));
}

// Parses "name{labels} value" lines into a map for exact checks.
std::map<std::string, std::string> Samples(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    out[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

std::string Get(const std::map<std::string, std::string>& samples, const std::string& key) {
  auto it = samples.find(key);
  return it == samples.end() ? "<no sample " + key + ">" : it->second;
}

TEST(ServerMetricsTest, RendersCountersHistogramsAndGauges) {
  ServerMetrics m;
  m.RoundCompleted(3.0);
  m.RoundCompleted(40.0);
  m.Aggregated(0.05);
  m.UpdateReceived();
  m.UpdateRejected(RejectReason(static_cast<int>(absl::StatusCode::kFailedPrecondition)));
  m.UpdateRejected(RejectReason(static_cast<int>(absl::StatusCode::kAlreadyExists)));
  m.BytesIn("update", 1000);
  m.BytesOut("model", 2000);
  m.BytesOut("model", 500);
  m.SiteTrainingLoss("site \"1\"", 0.25);
  v1::FederationStatus status;
  status.set_round(2);
  status.set_model_version(2);
  v1::SiteInfo a, b;
  a.set_status("uploaded");
  b.set_status("disconnected");
  const std::string text = m.Render(status, {a, b});
  const auto s = Samples(text);
  EXPECT_EQ(Get(s, "dermfed_rounds_completed_total"), "2");
  EXPECT_EQ(Get(s, "dermfed_round_duration_seconds_bucket{le=\"2\"}"), "0");
  EXPECT_EQ(Get(s, "dermfed_round_duration_seconds_bucket{le=\"5\"}"), "1");
  EXPECT_EQ(Get(s, "dermfed_round_duration_seconds_bucket{le=\"60\"}"), "2");
  EXPECT_EQ(Get(s, "dermfed_round_duration_seconds_bucket{le=\"+Inf\"}"), "2");
  EXPECT_EQ(Get(s, "dermfed_round_duration_seconds_sum"), "43");
  EXPECT_EQ(Get(s, "dermfed_round_duration_seconds_count"), "2");
  EXPECT_EQ(Get(s, "dermfed_aggregation_seconds_bucket{le=\"0.05\"}"), "1");  // le is inclusive
  EXPECT_EQ(Get(s, "dermfed_aggregation_seconds_bucket{le=\"0.01\"}"), "0");
  EXPECT_EQ(Get(s, "dermfed_updates_received_total"), "1");
  EXPECT_EQ(Get(s, "dermfed_updates_rejected_total{reason=\"stale\"}"), "1");
  EXPECT_EQ(Get(s, "dermfed_updates_rejected_total{reason=\"duplicate\"}"), "1");
  EXPECT_EQ(Get(s, "dermfed_updates_rejected_total{reason=\"invalid\"}"), "0");  // exists at 0
  EXPECT_EQ(Get(s, "dermfed_bytes_received_total{kind=\"update\"}"), "1000");
  EXPECT_EQ(Get(s, "dermfed_bytes_sent_total{kind=\"model\"}"), "2500");
  EXPECT_EQ(Get(s, "dermfed_bytes_sent_total{kind=\"download\"}"), "0");
  EXPECT_EQ(Get(s, "dermfed_site_training_loss{site=\"site \\\"1\\\"\"}"), "0.25");
  EXPECT_EQ(Get(s, "dermfed_sites_connected"), "1");
  EXPECT_EQ(Get(s, "dermfed_sites_known"), "2");
  EXPECT_EQ(Get(s, "dermfed_current_round"), "2");
  // Every family is declared once, before its samples.
  EXPECT_NE(text.find("# TYPE dermfed_round_duration_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE dermfed_updates_rejected_total counter\n"), std::string::npos);
}

TEST(ServerMetricsTest, RejectReasonsFollowTheEngineStatusCodes) {
  EXPECT_EQ(RejectReason(static_cast<int>(absl::StatusCode::kPermissionDenied)), "not_selected");
  EXPECT_EQ(RejectReason(static_cast<int>(absl::StatusCode::kInvalidArgument)), "invalid");
  EXPECT_EQ(RejectReason(static_cast<int>(absl::StatusCode::kInternal)), "other");
}

}  // namespace
}  // namespace dermfed::coordinator
