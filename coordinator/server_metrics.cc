#include "coordinator/server_metrics.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/status/status.h"

namespace dermfed::coordinator {
namespace {

std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) {  // exact integers: "2500"
    std::snprintf(buf, sizeof(buf), "%.0f", v);
    return buf;
  }
  // The shortest form that reads back as the same double (0.05, not 0.050000000000000003).
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

void Header(const std::string& name, const std::string& type, const std::string& help,
            std::string* out) {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void Sample(const std::string& name, const std::string& labels, double v, std::string* out) {
  *out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + Number(v) + "\n";
}

void LabelledCounter(const std::string& name, const std::string& help, const std::string& label,
                     const std::map<std::string, uint64_t>& values, std::string* out) {
  Header(name, "counter", help, out);
  for (const auto& [k, v] : values) {
    Sample(name, label + "=\"" + PromLabel(k) + "\"", static_cast<double>(v), out);
  }
}

}  // namespace

std::string PromLabel(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string RejectReason(int code) {
  switch (static_cast<absl::StatusCode>(code)) {
    case absl::StatusCode::kFailedPrecondition: return "stale";
    case absl::StatusCode::kPermissionDenied: return "not_selected";
    case absl::StatusCode::kAlreadyExists: return "duplicate";
    case absl::StatusCode::kInvalidArgument: return "invalid";
    case absl::StatusCode::kResourceExhausted: return "too_large";
    default: return "other";
  }
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::Render(const std::string& name, const std::string& help, std::string* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  Header(name, "histogram", help, out);
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    const std::string le = i < bounds_.size() ? Number(bounds_[i]) : "+Inf";
    Sample(name + "_bucket", "le=\"" + le + "\"", static_cast<double>(cumulative), out);
  }
  Sample(name + "_sum", "", sum_, out);
  Sample(name + "_count", "", static_cast<double>(count_), out);
}

ServerMetrics::ServerMetrics()
    : round_seconds_({1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}),
      aggregation_seconds_({0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60}) {
  // Every known series exists from the start (at 0), so rates and alerts work before the
  // first event.
  for (const char* reason : {"stale", "not_selected", "duplicate", "invalid", "too_large", "other"}) {
    rejected_[reason] = 0;
  }
  bytes_in_["update"] = 0;
  bytes_out_["model"] = 0;
  bytes_out_["download"] = 0;
}

void ServerMetrics::RoundCompleted(double seconds) {
  ++rounds_completed_;
  round_seconds_.Observe(seconds);
}

void ServerMetrics::Aggregated(double seconds) { aggregation_seconds_.Observe(seconds); }

void ServerMetrics::UpdateRejected(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++rejected_[reason];
}

void ServerMetrics::BytesIn(const std::string& kind, uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  bytes_in_[kind] += n;
}

void ServerMetrics::BytesOut(const std::string& kind, uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  bytes_out_[kind] += n;
}

void ServerMetrics::SiteTrainingLoss(const std::string& site, double loss) {
  std::lock_guard<std::mutex> lock(mu_);
  train_loss_[site] = loss;
}

std::string ServerMetrics::Render(const v1::FederationStatus& status,
                                  const std::vector<v1::SiteInfo>& sites) const {
  std::string out;
  Header("dermfed_rounds_completed_total", "counter",
         "Rounds aggregated and checkpointed by this coordinator process.", &out);
  Sample("dermfed_rounds_completed_total", "", static_cast<double>(rounds_completed_), &out);
  Header("dermfed_current_round", "gauge", "The round in progress, or the last one completed.",
         &out);
  Sample("dermfed_current_round", "", static_cast<double>(status.round()), &out);
  Header("dermfed_model_version", "gauge", "The current global model version.", &out);
  Sample("dermfed_model_version", "", static_cast<double>(status.model_version()), &out);
  round_seconds_.Render("dermfed_round_duration_seconds",
                        "Wall time of a round, from its start to its checkpoint.", &out);
  aggregation_seconds_.Render("dermfed_aggregation_seconds",
                              "Time to aggregate a round's updates, apply the strategy and "
                              "checkpoint.", &out);
  Header("dermfed_updates_received_total", "counter", "Site updates folded into a round.", &out);
  Sample("dermfed_updates_received_total", "", static_cast<double>(updates_received_), &out);
  int connected = 0;
  for (const auto& s : sites) connected += s.status() != "disconnected";
  Header("dermfed_sites_connected", "gauge", "Sites seen recently (not disconnected).", &out);
  Sample("dermfed_sites_connected", "", connected, &out);
  Header("dermfed_sites_known", "gauge", "Sites that have joined the federation.", &out);
  Sample("dermfed_sites_known", "", static_cast<double>(sites.size()), &out);
  std::lock_guard<std::mutex> lock(mu_);
  LabelledCounter("dermfed_updates_rejected_total", "Site updates refused, by reason.", "reason",
                  rejected_, &out);
  LabelledCounter("dermfed_bytes_received_total",
                  "Model bytes received over gRPC (kind: update, as sent; update_uncompressed, "
                  "what the plaintext updates decode to).",
                  "kind", bytes_in_, &out);
  LabelledCounter("dermfed_bytes_sent_total",
                  "Model bytes sent over gRPC (kind: model to sites, download to researchers).",
                  "kind", bytes_out_, &out);
  Header("dermfed_site_training_loss", "gauge",
         "The training loss a site reported with its last update.", &out);
  for (const auto& [site, loss] : train_loss_) {
    Sample("dermfed_site_training_loss", "site=\"" + PromLabel(site) + "\"", loss, &out);
  }
  return out;
}

}  // namespace dermfed::coordinator
