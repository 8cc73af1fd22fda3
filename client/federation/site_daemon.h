// dermfed-site's engine: joins the federation, then loops on the coordinator's tasks —
// train the global model on local data with this site's own class counts and upload
// Δ = local − global; evaluate the global model on local validation data and report a
// confusion matrix — until the federation is done. Only weights and aggregate metrics leave
// the site; images, metadata and class counts never do. Reconnects with backoff; a
// restarted site (or coordinator) picks up the current round.
//
// Not thread-safe: Run() is the daemon's main loop.
#ifndef DERMFED_CLIENT_FEDERATION_SITE_DAEMON_H_
#define DERMFED_CLIENT_FEDERATION_SITE_DAEMON_H_

#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "common/tls/tls.h"
#include "common/config.h"
#include "common/status.h"

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
  std::string debug_fault;      // tests: "exit_after_share" | "exit_after_masked_upload"
  int64_t debug_fault_round = 1;
  bool insecure = false;
  tls::TlsFiles tls;
};

const std::vector<ConfigKey>& SiteConfigKeys();
StatusOr<SiteConfig> LoadSiteConfig(const std::string& path,
                                    const std::map<std::string, std::string>& overrides);

// Runs until the federation is DONE (OK), `stop` becomes true, or an unrecoverable error
// (bad local data, a model the coordinator refuses).
Status RunSiteDaemon(const SiteConfig& config, const std::atomic<bool>& stop);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_FEDERATION_SITE_DAEMON_H_
