// The dashboard's JSON API (/api/v1/...): the monitor service's messages as plain JSON for a
// browser — integers as numbers, enum names in lower case, the stored metrics JSON as an
// object with per-class sensitivity and specificity added, NaN as null.
//
// Thread-compatible (pure functions).
#ifndef DERMFED_COORDINATOR_API_JSON_H_
#define DERMFED_COORDINATOR_API_JSON_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "coordinator/coordinator_config.h"
#include "dermfed/v1/monitor.pb.h"

namespace dermfed::coordinator {

// A round's stored global metrics (RoundEngine's evaluation JSON) as an object, with
// "per_class": [{class, sensitivity, specificity, support}] computed from its confusion
// matrix. null when `metrics_json` is empty or not JSON.
nlohmann::json MetricsObject(const std::string& metrics_json,
                             const std::vector<std::string>& class_names);

nlohmann::json StatusJson(const v1::FederationStatus& status, const CoordinatorConfig& config,
                          const std::string& caller, int64_t server_unix_ms);
nlohmann::json RoundsJson(const v1::ListRoundsResponse& rounds,
                          const std::vector<std::string>& class_names);
nlohmann::json SitesJson(const std::vector<v1::SiteInfo>& sites);
nlohmann::json EventsJson(const std::vector<v1::Event>& events, int64_t last_seq, bool closed);
// Model versions with their checksums; `available(version)` says whether it can still be
// downloaded (server.keep_checkpoints prunes old ones).
template <typename Available>
nlohmann::json ModelsJson(const v1::ListRoundsResponse& rounds, Available available) {
  nlohmann::json models = nlohmann::json::array();
  for (const auto& r : rounds.rounds()) {
    models.push_back({{"version", r.model_version()},
                      {"sha256", r.model_sha256_hex()},
                      {"finished_unix_s", r.finished_unix_s()},
                      {"available", available(r.model_version())}});
  }
  return {{"models", models}};
}

// "TRAINING" -> "training".
std::string LowerName(const std::string& enum_name);

}  // namespace dermfed::coordinator

#endif  // DERMFED_COORDINATOR_API_JSON_H_
