// dermfed-coordinator's settings: one TOML file (--config), every key overridable by a flag
// of the same name (--federation.rounds 5). Keys, defaults and meanings are in kKeys below
// and in docs/configuration.md (a test checks the two agree).
//
// Thread-compatible: a value.
#ifndef DERMFED_COORDINATOR_COORDINATOR_CONFIG_H_
#define DERMFED_COORDINATOR_COORDINATOR_CONFIG_H_

#include <map>
#include <string>
#include <vector>

#include "common/tls/tls.h"
#include "common/config.h"
#include "common/status.h"
#include "coordinator/strategy.h"

namespace dermfed::coordinator {

struct CoordinatorConfig {
  // [federation]
  std::string name;
  int rounds = 3;
  int min_sites = 2;
  int expected_sites = 0;  // 0 = unknown
  double fraction = 1.0;
  double round_deadline_s = 600;
  double join_timeout_s = 600;
  std::string stragglers = "drop";  // drop | wait
  int local_epochs = 1;
  double eval_deadline_s = 300;
  uint64_t seed = 1;
  // Update compression negotiated for every site (common/update_codec.h).
  std::string compression = "none";  // none | fp16 | int8 | topk
  double topk_fraction = 0.01;
  // [model]
  std::string backbone = "tiny";
  std::string format = "pad-ufes-20";
  std::string schema;  // path; "" = shipped schema of `format`
  int image_size = 64;
  int sr_factor = 2;
  bool use_metadata = true;
  std::string init_checkpoint;  // torchvision .pth for the backbone; "" = seeded init
  // [training] (sent to sites)
  int batch_size = 32;
  std::string optimizer = "adamw";
  double learning_rate = 1e-3;
  double weight_decay = 1e-4;
  double lambda_sr = 0.1;
  double lambda_cf = 1e-3;
  bool weighted_ce = true;
  bool fedbn = false;
  // [strategy]
  StrategyConfig strategy;
  // [server]
  std::string listen = "127.0.0.1:7443";
  std::string port_file;  // write the bound port here (for listen ports of 0)
  std::string state_dir = "coordinator-state";
  int keep_checkpoints = 10;
  double stop_grace_s = 15;  // server.stop_grace_s (under systemd's and k8s' 30 s)
  std::string audit_log;  // "" = state_dir/audit.log
  double max_update_norm = 0;
  bool secure_aggregation = false;
  std::string dp_mode = "off";  // off | central | distributed
  double dp_clip = 1.0;
  double dp_noise_multiplier = 1.0;
  double dp_delta = 1e-5;
  double dp_epsilon_budget = 0;
  int secagg_threshold = 0;  // 0 = max(2, ceil(2n/3))
  double secagg_clip = 1.0;
  double secagg_phase_deadline_s = 120;
  std::string export_dir;  // write the final model as a RUN folder here
  int max_concurrent_uploads = 2;
  int threads = 0;
  bool insecure = false;
  // The HTTPS dashboard, JSON API and /metrics ("" = off).
  std::string http_listen;
  std::string http_port_file;
  std::string http_token_file;  // a bearer token that grants read access ("" = certificates only)
  tls::TlsFiles tls;
};

// The declared keys (name, type, default, help).
const std::vector<ConfigKey>& CoordinatorConfigKeys();

// Loads, converts and validates; impossible combinations are refused naming the keys.
StatusOr<CoordinatorConfig> LoadCoordinatorConfig(
    const std::string& path, const std::map<std::string, std::string>& overrides);

}  // namespace dermfed::coordinator

#endif  // DERMFED_COORDINATOR_COORDINATOR_CONFIG_H_
