// dermfed-site's configuration: the declared keys of site.toml (common/config.h) and their
// conversion into a checked SiteConfig. Kept apart from the daemon so that what reads an
// operator's file needs neither LibTorch nor gRPC (tests/fuzz links it alone).
//
// Thread-safe: a SiteConfig is a value.
#ifndef DERMFED_CLIENT_FEDERATION_SITE_CONFIG_H_
#define DERMFED_CLIENT_FEDERATION_SITE_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "common/tls/tls.h"

namespace dermfed::client {

struct SiteConfig {
  std::string name;          // identity without TLS (tests, demos)
  std::string coordinator = "127.0.0.1:7443";
  std::string data;          // dataset folder
  std::string format;        // "" = the federation's format
  bool skip_bad_rows = false;
  double validation_fraction = 0.2;
  uint64_t seed = 1;
  int threads = 0;
  int workers = 0;
  std::string device = "auto";
  double max_backoff_s = 30;
  int max_steps_per_round = 0;  // 0 = full local epochs (tests/benchmarks cap it)
  bool explain = true;          // metadata-feature importance with each evaluation
  int explain_rows = 256;       // validation rows it scores (0 = all)
  // Tests only: "exit_after_share" | "exit_after_masked_upload" (the process exits there) or
  // "stall_in_download" | "stall_in_training" | "stall_in_upload" | "stall_in_evaluation"
  // (it sleeps debug_stall_s there, once, so that a test can kill it there or let it be late).
  std::string debug_fault;
  int64_t debug_fault_round = 1;
  double debug_stall_s = 3600;
  std::string debug_dump_updates;  // tests: a folder for every acknowledged plaintext update
  bool insecure = false;
  tls::TlsFiles tls;
};

const std::vector<ConfigKey>& SiteConfigKeys();
StatusOr<SiteConfig> LoadSiteConfig(const std::string& path,
                                    const std::map<std::string, std::string>& overrides);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_FEDERATION_SITE_CONFIG_H_
