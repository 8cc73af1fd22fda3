// The coordinator's operational counters, rendered in the Prometheus text exposition format
// (version 0.0.4) at the dashboard's /metrics. The round engine and the gRPC services record;
// a scrape renders them together with gauges read from the engine at that moment.
//
// Thread-safe: counters are atomics or guarded by mu_.
#ifndef DERMFED_COORDINATOR_SERVER_METRICS_H_
#define DERMFED_COORDINATOR_SERVER_METRICS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "dermfed/v1/monitor.pb.h"

namespace dermfed::coordinator {

// A cumulative histogram with fixed bucket bounds (seconds).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  // "# HELP/# TYPE" header plus the _bucket, _sum and _count lines of `name`.
  void Render(const std::string& name, const std::string& help, std::string* out) const;

 private:
  mutable std::mutex mu_;
  const std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; the last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class ServerMetrics {
 public:
  ServerMetrics();

  void RoundCompleted(double seconds);
  void Aggregated(double seconds);
  void UpdateReceived() { ++updates_received_; }
  // `reason`: stale, not_selected, duplicate, invalid, too_large, other (see RejectReason).
  void UpdateRejected(const std::string& reason);
  // Bytes of model data over gRPC: kind "update" (in, as sent), "update_uncompressed" (in: the
  // size plaintext updates decode to; over "update" it is the compression ratio), "model"
  // (to sites), "download" (out).
  void BytesIn(const std::string& kind, uint64_t n);
  void BytesOut(const std::string& kind, uint64_t n);
  void SiteTrainingLoss(const std::string& site, double loss);

  // The exposition text: the counters above plus gauges from `status` and `sites`.
  std::string Render(const v1::FederationStatus& status,
                     const std::vector<v1::SiteInfo>& sites) const;

 private:
  std::atomic<uint64_t> rounds_completed_{0};
  std::atomic<uint64_t> updates_received_{0};
  Histogram round_seconds_;
  Histogram aggregation_seconds_;
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> rejected_;  // by reason
  std::map<std::string, uint64_t> bytes_in_;  // by kind
  std::map<std::string, uint64_t> bytes_out_;
  std::map<std::string, double> train_loss_;  // by site, the last reported
};

// The label for a refused update, from its status code (see RoundEngine::CheckUpdateLocked).
std::string RejectReason(int status_code);

// A Prometheus label value, escaped (backslash, double quote, newline).
std::string PromLabel(const std::string& value);

}  // namespace dermfed::coordinator

#endif  // DERMFED_COORDINATOR_SERVER_METRICS_H_
