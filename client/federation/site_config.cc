#include "client/federation/site_config.h"

#include <algorithm>
#include <iterator>

namespace dermfed::client {

using T = ConfigType;

const std::vector<ConfigKey>& SiteConfigKeys() {
  static const std::vector<ConfigKey> keys = {
      {"site.name", T::kString, "", "The site's name; with TLS it must be the name in the site's certificate."},
      {"site.coordinator", T::kString, "127.0.0.1:7443", "host:port of the coordinator."},
      {"site.data", T::kString, "", "The site's dataset folder (never leaves the site)."},
      {"site.format", T::kString, "", "Dataset format (pad-ufes-20, isic-2019, generic); empty = the federation's."},
      {"site.skip_bad_rows", T::kBool, "false", "Skip, count and report bad dataset rows instead of stopping."},
      {"site.validation_fraction", T::kDouble, "0.2", "Share of local patients/lesions held out for federated evaluation."},
      {"site.seed", T::kInt, "1", "Seed for the local split, order and augmentation."},
      {"site.threads", T::kInt, "0", "LibTorch threads (0 = all cores)."},
      {"site.workers", T::kInt, "0", "Image decoding threads (0 = all cores)."},
      {"site.device", T::kString, "auto", "auto, cpu, cuda or cuda:N."},
      {"site.max_backoff_s", T::kDouble, "30", "Longest wait between reconnection attempts."},
      {"site.max_steps_per_round", T::kInt, "0", "Cap on local training steps per round (0 = the full local epochs)."},
      {"site.explain", T::kBool, "true", "With each evaluation, compute and report the per-class importance of each metadata feature for the global model (permutation importance; aggregate numbers only)."},
      {"site.explain_rows", T::kInt, "256", "Validation rows the importance is computed on (a seeded random subset; 0 = all)."},
      {"site.debug_fault", T::kString, "", "Tests only: in round site.debug_fault_round, crash on purpose at exit_after_share or exit_after_masked_upload (secure aggregation dropouts), or stall for site.debug_stall_s at stall_in_download, stall_in_training, stall_in_upload or stall_in_evaluation (fault tests: killed there, or late)."},
      {"site.debug_fault_round", T::kInt, "1", "Tests only: the round site.debug_fault strikes in."},
      {"site.debug_stall_s", T::kDouble, "3600", "Tests only: how long a stall_in_* fault stalls."},
      {"site.debug_dump_updates", T::kString, "", "Tests only: write every plaintext update to this folder as the coordinator decodes it: round-<r>.sent.dfs and .json before it is sent, round-<r>.dfs and .json once acknowledged."},
      {"site.insecure", T::kBool, "false", "Plaintext gRPC without TLS or certificates (tests and local demos only; logs a loud warning)."},
      {"site.ca", T::kString, "", "The consortium CA certificate (PEM); the coordinator must chain to it."},
      {"site.cert", T::kString, "", "This site's certificate (PEM, certs/issue.sh --role site)."},
      {"site.key", T::kString, "", "This site's private key (PEM); it never leaves the site."},
  };
  return keys;
}

StatusOr<SiteConfig> LoadSiteConfig(const std::string& path,
                                    const std::map<std::string, std::string>& overrides) {
  DF_ASSIGN_OR_RETURN(Config c, Config::Load(SiteConfigKeys(), path, overrides));
  SiteConfig o;
  o.name = c.GetString("site.name");
  o.coordinator = c.GetString("site.coordinator");
  o.data = c.GetString("site.data");
  o.format = c.GetString("site.format");
  o.skip_bad_rows = c.GetBool("site.skip_bad_rows");
  o.validation_fraction = c.GetDouble("site.validation_fraction");
  o.seed = static_cast<uint64_t>(c.GetInt("site.seed"));
  o.threads = static_cast<int>(c.GetInt("site.threads"));
  o.workers = static_cast<int>(c.GetInt("site.workers"));
  o.device = c.GetString("site.device");
  o.max_backoff_s = c.GetDouble("site.max_backoff_s");
  o.max_steps_per_round = static_cast<int>(c.GetInt("site.max_steps_per_round"));
  o.explain = c.GetBool("site.explain");
  o.explain_rows = static_cast<int>(c.GetInt("site.explain_rows"));
  o.debug_fault = c.GetString("site.debug_fault");
  o.debug_fault_round = c.GetInt("site.debug_fault_round");
  o.debug_stall_s = c.GetDouble("site.debug_stall_s");
  o.debug_dump_updates = c.GetString("site.debug_dump_updates");
  const std::string where = path.empty() ? "configuration" : path;
  static const char* const kFaults[] = {"exit_after_share", "exit_after_masked_upload",
                                        "stall_in_download", "stall_in_training",
                                        "stall_in_upload", "stall_in_evaluation"};
  if (!o.debug_fault.empty() &&
      std::find(std::begin(kFaults), std::end(kFaults), o.debug_fault) == std::end(kFaults)) {
    return InvalidArgumentError(where + ": site.debug_fault must be exit_after_share, "
                                "exit_after_masked_upload, stall_in_download, stall_in_training, "
                                "stall_in_upload or stall_in_evaluation");
  }
  if (o.debug_stall_s < 0) return InvalidArgumentError(where + ": site.debug_stall_s must be >= 0");
  o.insecure = c.GetBool("site.insecure");
  o.tls.ca = c.GetString("site.ca");
  o.tls.cert = c.GetString("site.cert");
  o.tls.key = c.GetString("site.key");
  if (o.name.empty()) return InvalidArgumentError(where + ": site.name is required");
  if (o.data.empty()) return InvalidArgumentError(where + ": site.data is required");
  if (!(o.validation_fraction > 0 && o.validation_fraction < 1)) {
    return InvalidArgumentError(where + ": site.validation_fraction must be in (0, 1)");
  }
  if (o.max_backoff_s <= 0) return InvalidArgumentError(where + ": site.max_backoff_s must be > 0");
  if (o.explain_rows < 0) return InvalidArgumentError(where + ": site.explain_rows must be >= 0");
  if (!o.insecure && (o.tls.ca.empty() || o.tls.cert.empty() || o.tls.key.empty())) {
    return InvalidArgumentError(where + ": site.ca, site.cert and site.key are required unless "
                                        "site.insecure = true");
  }
  return o;
}

}  // namespace dermfed::client
