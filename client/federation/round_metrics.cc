#include "client/federation/round_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>

namespace dermfed::client {
namespace {

using Json = nlohmann::ordered_json;

// The columns every round has, in order; the last five come from its evaluation.
constexpr const char* kColumns[] = {
    "round",          "model_version", "sha256",   "sites_selected",
    "sites_reported", "started",       "finished", "balanced_accuracy",
    "accuracy",       "macro_auc",     "loss",     "num_examples"};
constexpr size_t kFirstMetricColumn = 7;

std::string SiteColumn(const std::string& site) { return "site:" + site + ":balanced_accuracy"; }

Json IsoUtc(double unix_s) {
  if (!(unix_s > 0)) return nullptr;
  const double whole = std::floor(unix_s);
  const std::time_t t = static_cast<std::time_t>(whole);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof(out), "%s.%03dZ", date,
                std::min(999, static_cast<int>((unix_s - whole) * 1000)));
  return out;
}

// `key` of `metrics` when it is a finite number, else null.
Json Number(const Json& metrics, const std::string& key) {
  if (!metrics.is_object()) return nullptr;
  const auto it = metrics.find(key);
  if (it == metrics.end() || !it->is_number()) return nullptr;
  if (it->is_number_integer()) return it->get<int64_t>();
  const double v = it->get<double>();
  return std::isfinite(v) ? Json(v) : Json(nullptr);
}

struct Row {
  Json columns;  // kColumns, then dp_epsilon when recorded
  Json sites;    // the round's "sites" object, or null
};

std::vector<Row> Rows(const std::vector<v1::RoundInfo>& rounds) {
  std::vector<Row> rows;
  rows.reserve(rounds.size());
  for (const v1::RoundInfo& r : rounds) {
    const Json metrics = r.metrics_json().empty()
                             ? Json()
                             : Json::parse(r.metrics_json(), nullptr, /*allow_exceptions=*/false);
    Row row;
    Json& c = row.columns;
    c["round"] = r.round();
    c["model_version"] = r.model_version();
    c["sha256"] = r.model_sha256_hex();
    c["sites_selected"] = r.sites_selected();
    c["sites_reported"] = r.sites_reported();
    c["started"] = IsoUtc(r.started_unix_s());
    c["finished"] = IsoUtc(r.finished_unix_s());
    for (size_t i = kFirstMetricColumn; i < std::size(kColumns); ++i) {
      c[kColumns[i]] = Number(metrics, kColumns[i]);
    }
    if (metrics.is_object() && metrics.contains("dp_epsilon")) {
      c["dp_epsilon"] = Number(metrics, "dp_epsilon");
    }
    if (metrics.is_object() && metrics.contains("sites") && metrics["sites"].is_object()) {
      row.sites = metrics["sites"];
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string CsvValue(const Json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return CsvField(v.get<std::string>());
  return v.dump();  // numbers: the shortest text that reads back to the same value
}

}  // namespace

std::string CsvField(const std::string& field) {
  if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string RoundMetricsCsv(const std::vector<v1::RoundInfo>& rounds) {
  const std::vector<Row> rows = Rows(rounds);
  std::vector<std::string> columns(std::begin(kColumns), std::end(kColumns));
  std::set<std::string> sites;
  bool dp = false;
  for (const Row& row : rows) {
    dp = dp || row.columns.contains("dp_epsilon");
    if (row.sites.is_object()) {
      for (const auto& site : row.sites.items()) sites.insert(site.key());
    }
  }
  if (dp) columns.push_back("dp_epsilon");

  std::string out;
  auto line = [&out](const std::vector<std::string>& fields) {
    for (size_t i = 0; i < fields.size(); ++i) out += (i ? "," : "") + fields[i];
    out += "\n";
  };
  std::vector<std::string> header;
  for (const std::string& c : columns) header.push_back(CsvField(c));
  for (const std::string& s : sites) header.push_back(CsvField(SiteColumn(s)));
  line(header);
  for (const Row& row : rows) {
    std::vector<std::string> fields;
    for (const std::string& c : columns) {
      fields.push_back(row.columns.contains(c) ? CsvValue(row.columns[c]) : "");
    }
    for (const std::string& s : sites) {
      Json v = nullptr;
      if (row.sites.is_object() && row.sites.contains(s)) {
        v = Number(row.sites[s], "balanced_accuracy");
      }
      fields.push_back(CsvValue(v));
    }
    line(fields);
  }
  return out;
}

std::string RoundMetricsJson(const std::vector<v1::RoundInfo>& rounds) {
  Json out = Json::array();
  for (Row& row : Rows(rounds)) {
    Json o = std::move(row.columns);
    if (!row.sites.is_null()) o["sites"] = std::move(row.sites);
    out.push_back(std::move(o));
  }
  return out.dump(2) + "\n";
}

}  // namespace dermfed::client
