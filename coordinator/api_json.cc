#include "coordinator/api_json.h"

#include <cctype>
#include <cmath>
#include <limits>

namespace dermfed::coordinator {
namespace {

using nlohmann::json;

// NaN and infinities are not JSON: null.
json Num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

double Ratio(int64_t num, int64_t den) {
  return den > 0 ? static_cast<double>(num) / static_cast<double>(den)
                 : std::numeric_limits<double>::quiet_NaN();
}

std::vector<std::string> ClassNames(const v1::FederationSpec& spec) {
  return {spec.class_names().begin(), spec.class_names().end()};
}

}  // namespace

std::string LowerName(const std::string& enum_name) {
  std::string out = enum_name;
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

json MetricsObject(const std::string& metrics_json, const std::vector<std::string>& class_names) {
  if (metrics_json.empty()) return nullptr;
  json m = json::parse(metrics_json, nullptr, /*allow_exceptions=*/false);
  if (m.is_discarded() || !m.is_object()) return nullptr;
  const auto cm = m.find("confusion_matrix");
  if (cm == m.end() || !cm->is_array()) return m;
  const size_t k = cm->size();
  std::vector<std::vector<int64_t>> c(k, std::vector<int64_t>(k, 0));
  int64_t total = 0;
  for (size_t t = 0; t < k; ++t) {
    const json& row = (*cm)[t];
    if (!row.is_array() || row.size() != k) return m;  // not square: leave as stored
    for (size_t p = 0; p < k; ++p) {
      if (!row[p].is_number_integer()) return m;
      c[t][p] = row[p].get<int64_t>();
      total += c[t][p];
    }
  }
  json per_class = json::array();
  for (size_t i = 0; i < k; ++i) {
    int64_t row = 0, col = 0;
    for (size_t j = 0; j < k; ++j) {
      row += c[i][j];
      col += c[j][i];
    }
    const int64_t tp = c[i][i], fp = col - tp, tn = total - row - col + tp;
    per_class.push_back({{"class", i < class_names.size() ? class_names[i] : std::to_string(i)},
                         {"sensitivity", Num(Ratio(tp, row))},
                         {"specificity", Num(Ratio(tn, tn + fp))},
                         {"support", row}});
  }
  m["per_class"] = per_class;
  return m;
}

json StatusJson(const v1::FederationStatus& s, const CoordinatorConfig& config,
                const std::string& caller, int64_t server_unix_ms) {
  const std::vector<std::string> classes = ClassNames(s.spec());
  json latest = MetricsObject(s.latest_metrics_json(), classes);
  json dp = nullptr;
  if (config.dp_mode != "off") {
    json epsilon = nullptr;
    if (latest.is_object() && latest.contains("dp_epsilon")) epsilon = latest["dp_epsilon"];
    dp = {{"mode", config.dp_mode},
          {"epsilon", epsilon},
          {"delta", config.dp_delta},
          {"epsilon_budget", config.dp_epsilon_budget},
          {"noise_multiplier", config.dp_noise_multiplier},
          {"clip", config.dp_clip}};
  }
  return {{"state", LowerName(v1::FederationStatus::State_Name(s.state()))},
          {"round", s.round()},
          {"rounds_total", s.rounds_total()},
          {"completed_round", s.completed_round()},
          {"model_version", s.model_version()},
          {"model_sha256", s.model_sha256_hex()},
          {"pause_requested", s.pause_requested()},
          {"sites_known", s.sites_known()},
          {"sites_selected", s.sites_selected()},
          {"sites_reported", s.sites_reported()},
          {"deadline_unix_ms", s.deadline_unix_ms()},
          {"strategy", s.strategy()},
          {"federation", s.spec().federation()},
          {"backbone", s.spec().backbone()},
          {"class_names", classes},
          {"latest_metrics", latest},
          {"last_event_seq", s.last_event_seq()},
          {"server_unix_ms", server_unix_ms},
          {"secure_aggregation", config.secure_aggregation},
          {"dp", dp},
          {"caller", caller}};
}

json RoundsJson(const v1::ListRoundsResponse& rounds, const std::vector<std::string>& class_names) {
  json out = json::array();
  for (const auto& r : rounds.rounds()) {
    out.push_back({{"round", r.round()},
                   {"model_version", r.model_version()},
                   {"model_sha256", r.model_sha256_hex()},
                   {"sites_selected", r.sites_selected()},
                   {"sites_reported", r.sites_reported()},
                   {"started_unix_s", r.started_unix_s()},
                   {"finished_unix_s", r.finished_unix_s()},
                   {"metrics", MetricsObject(r.metrics_json(), class_names)}});
  }
  return {{"rounds", out}};
}

json SitesJson(const std::vector<v1::SiteInfo>& sites) {
  json out = json::array();
  for (const auto& s : sites) {
    out.push_back({{"name", s.name()},
                   {"train_rows", s.train_rows()},
                   {"status", s.status()},
                   {"last_seen_unix_ms", s.last_seen_unix_ms()},
                   {"rounds_contributed", s.rounds_contributed()},
                   {"last_round", s.last_round()}});
  }
  return {{"sites", out}};
}

json EventsJson(const std::vector<v1::Event>& events, int64_t last_seq, bool closed) {
  json out = json::array();
  for (const auto& e : events) {
    json metrics = json::object();
    for (const auto& [k, v] : e.metrics()) metrics[k] = Num(v);
    out.push_back({{"seq", e.seq()},
                   {"unix_ms", e.unix_ms()},
                   {"kind", LowerName(v1::Event::Kind_Name(e.kind()))},
                   {"round", e.round()},
                   {"model_version", e.model_version()},
                   {"site", e.site()},
                   {"message", e.message()},
                   {"metrics", metrics}});
  }
  return {{"events", out}, {"last_seq", last_seq}, {"closed", closed}};
}

}  // namespace dermfed::coordinator
