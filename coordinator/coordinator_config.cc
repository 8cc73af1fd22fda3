#include "coordinator/coordinator_config.h"

#include "common/update_codec.h"

namespace dermfed::coordinator {

using T = ConfigType;

const std::vector<ConfigKey>& CoordinatorConfigKeys() {
  static const std::vector<ConfigKey> keys = {
      {"federation.name", T::kString, "dermfed", "Name shown to sites and researchers."},
      {"federation.rounds", T::kInt, "3", "Rounds to run; the federation ends after the last."},
      {"federation.min_sites", T::kInt, "2", "Sites that must report before a round is aggregated."},
      {"federation.expected_sites", T::kInt, "0", "Sites the consortium has (0 = unknown); min_sites may not exceed it."},
      {"federation.fraction", T::kDouble, "1.0", "Fraction of connected sites selected each round (at least min_sites)."},
      {"federation.round_deadline_s", T::kDouble, "600", "Seconds a round waits for updates before the stragglers policy applies."},
      {"federation.join_timeout_s", T::kDouble, "600", "Seconds to wait for min_sites sites to join before giving up."},
      {"federation.stragglers", T::kString, "drop", "drop: aggregate what arrived by the deadline (if >= min_sites); wait: keep waiting."},
      {"federation.local_epochs", T::kInt, "1", "Epochs each site trains per round."},
      {"federation.eval_deadline_s", T::kDouble, "300", "Seconds the federated evaluation of a round waits for site reports."},
      {"federation.seed", T::kInt, "1", "Seed for the initial model and site sampling."},
      {"federation.compression", T::kString, "none", "Update compression every site uploads with: none, fp16 (half the bytes), int8 (a quarter, per-tensor scale) or topk (the largest federation.topk_fraction of each tensor, with error feedback at the site). Not with secure aggregation or DP."},
      {"federation.topk_fraction", T::kDouble, "0.01", "topk: fraction of each float tensor's values a site sends (0, 1]."},
      {"model.backbone", T::kString, "tiny", "tiny, vgg13, densenet121, resnet50, efficientnet_b0 or mobilenet_v2."},
      {"model.format", T::kString, "pad-ufes-20", "Dataset format whose shipped schema the federation uses (pad-ufes-20, isic-2019)."},
      {"model.schema", T::kString, "", "Path of a metadata schema JSON; empty = the shipped schema of model.format."},
      {"model.image_size", T::kInt, "64", "Image side in pixels at the sites."},
      {"model.sr_factor", T::kInt, "2", "Downscaling of the super-resolution stage (1 = off)."},
      {"model.use_metadata", T::kBool, "true", "false: image-only model."},
      {"model.init_checkpoint", T::kString, "", "torchvision ImageNet checkpoint (.pth) for the backbone; empty = seeded init."},
      {"training.batch_size", T::kInt, "32", "Site batch size."},
      {"training.optimizer", T::kString, "adamw", "Site optimizer: adamw, adam or sgd."},
      {"training.learning_rate", T::kDouble, "0.001", "Site learning rate."},
      {"training.weight_decay", T::kDouble, "0.0001", "Site weight decay."},
      {"training.lambda_sr", T::kDouble, "0.1", "Weight of the super-resolution L1 loss (0 = off)."},
      {"training.lambda_cf", T::kDouble, "0.001", "Weight of the class-frequency regularizer (0 = off); each site uses its own counts."},
      {"training.weighted_ce", T::kBool, "true", "Class-weighted cross-entropy from each site's own counts."},
      {"training.fedbn", T::kBool, "false", "FedBN: BatchNorm weights and statistics stay at the sites."},
      {"strategy.name", T::kString, "fedavg", "fedavg, fedprox, fedadam, fedyogi, fedadagrad, fedmedian, trimmed_mean or krum."},
      {"strategy.proximal_mu", T::kDouble, "0.01", "FedProx mu."},
      {"strategy.server_learning_rate", T::kDouble, "0.01", "FedAdam/FedYogi/FedAdagrad eta."},
      {"strategy.beta1", T::kDouble, "0.9", "Server optimizer beta1."},
      {"strategy.beta2", T::kDouble, "0.99", "Server optimizer beta2."},
      {"strategy.tau", T::kDouble, "0.001", "Server optimizer tau (adaptivity)."},
      {"strategy.trim_fraction", T::kDouble, "0.1", "trimmed_mean: fraction cut at each end."},
      {"strategy.krum_byzantine", T::kInt, "1", "krum: Byzantine sites tolerated (f)."},
      {"strategy.krum_select", T::kInt, "1", "krum: updates averaged (1 = Krum, > 1 = Multi-Krum)."},
      {"server.listen", T::kString, "127.0.0.1:7443", "Address the site service listens on (port 0 = any free port)."},
      {"server.port_file", T::kString, "", "Write the bound port to this file once listening."},
      {"server.state_dir", T::kString, "coordinator-state", "SQLite database and checkpoints; a restart resumes from here."},
      {"server.keep_checkpoints", T::kInt, "10", "Global model versions kept on disk for download (the newest N, at least 2; 0 = all)."},
      {"server.stop_grace_s", T::kDouble, "15", "When the federation ends or is stopped, the coordinator keeps answering until every site seen lately has been told so (a site busy with a task hears it when the task is done), at most this many seconds."},
      {"server.export_dir", T::kString, "", "When the federation ends, write the global model here as a RUN folder."},
      {"server.max_concurrent_uploads", T::kInt, "2", "Updates received at once (each holds one model-sized buffer)."},
      {"server.threads", T::kInt, "0", "LibTorch threads for model set-up (0 = all cores)."},
      {"server.insecure", T::kBool, "false", "Plaintext gRPC without TLS or certificates (tests and local demos only; logs a loud warning)."},
      {"server.audit_log", T::kString, "", "Append-only, hash-chained audit log (joins, uploads, rejections, role violations, controls); empty = STATE_DIR/audit.log."},
      {"http.listen", T::kString, "", "Address of the HTTPS dashboard, JSON API (/api/v1) and Prometheus /metrics (port 0 = any free port); empty = off."},
      {"http.port_file", T::kString, "", "Write the dashboard's bound port to this file once listening."},
      {"http.token_file", T::kString, "", "File holding a bearer token that also grants read access (for a reverse proxy or a browser without a client certificate); empty = certificates only."},
      {"security.secure_aggregation", T::kBool, "false", "Secure aggregation (Bonawitz et al.): the coordinator learns only the sum of the sites' masked updates. Needs a linear strategy."},
      {"security.secagg_threshold", T::kInt, "0", "Shamir threshold t: sites that must survive to unmask (0 = max(2, ceil(2n/3)) of the n selected)."},
      {"security.secagg_clip", T::kDouble, "1.0", "Per-element bound on an update under secure aggregation (values beyond are clipped before quantization)."},
      {"security.secagg_phase_deadline_s", T::kDouble, "120", "Seconds each key, share and unmask phase waits for the sites."},
      {"dp.mode", T::kString, "off", "Client-level differential privacy (DP-FedAvg): off; central (the coordinator adds Gaussian noise to the aggregate); distributed (each site adds its share of the noise; needs secure aggregation)."},
      {"dp.clip", T::kDouble, "1.0", "L2 norm every site clips its update to (the sensitivity C)."},
      {"dp.noise_multiplier", T::kDouble, "1.0", "z: the noise on the sum of updates has standard deviation z*C."},
      {"dp.delta", T::kDouble, "1e-5", "The delta of the (epsilon, delta) the accountant reports after every round."},
      {"dp.epsilon_budget", T::kDouble, "0", "Stop the federation once epsilon exceeds this (0 = report only)."},
      {"security.max_update_norm", T::kDouble, "0", "Refuse plaintext updates whose L2 norm exceeds this (0 = no bound)."},
      {"tls.ca", T::kString, "", "The consortium CA certificate (PEM); clients must chain to it."},
      {"tls.cert", T::kString, "", "The coordinator's certificate (PEM, certs/issue.sh --role coordinator)."},
      {"tls.key", T::kString, "", "The coordinator's private key (PEM)."},
      {"tls.crl", T::kString, "", "The CA's revocation list (PEM, certs/revoke.sh writes it); re-read when it changes. Empty = no revocation check."},
  };
  return keys;
}

StatusOr<CoordinatorConfig> LoadCoordinatorConfig(
    const std::string& path, const std::map<std::string, std::string>& overrides) {
  DF_ASSIGN_OR_RETURN(Config c, Config::Load(CoordinatorConfigKeys(), path, overrides));
  CoordinatorConfig o;
  o.name = c.GetString("federation.name");
  o.rounds = static_cast<int>(c.GetInt("federation.rounds"));
  o.min_sites = static_cast<int>(c.GetInt("federation.min_sites"));
  o.expected_sites = static_cast<int>(c.GetInt("federation.expected_sites"));
  o.fraction = c.GetDouble("federation.fraction");
  o.round_deadline_s = c.GetDouble("federation.round_deadline_s");
  o.join_timeout_s = c.GetDouble("federation.join_timeout_s");
  o.keep_checkpoints = static_cast<int>(c.GetInt("server.keep_checkpoints"));
  o.stop_grace_s = c.GetDouble("server.stop_grace_s");
  o.audit_log = c.GetString("server.audit_log");
  o.max_update_norm = c.GetDouble("security.max_update_norm");
  o.secure_aggregation = c.GetBool("security.secure_aggregation");
  o.dp_mode = c.GetString("dp.mode");
  o.dp_clip = c.GetDouble("dp.clip");
  o.dp_noise_multiplier = c.GetDouble("dp.noise_multiplier");
  o.dp_delta = c.GetDouble("dp.delta");
  o.dp_epsilon_budget = c.GetDouble("dp.epsilon_budget");
  o.secagg_threshold = static_cast<int>(c.GetInt("security.secagg_threshold"));
  o.secagg_clip = c.GetDouble("security.secagg_clip");
  o.secagg_phase_deadline_s = c.GetDouble("security.secagg_phase_deadline_s");
  o.tls.ca = c.GetString("tls.ca");
  o.tls.cert = c.GetString("tls.cert");
  o.tls.key = c.GetString("tls.key");
  o.tls.crl = c.GetString("tls.crl");
  o.stragglers = c.GetString("federation.stragglers");
  o.local_epochs = static_cast<int>(c.GetInt("federation.local_epochs"));
  o.eval_deadline_s = c.GetDouble("federation.eval_deadline_s");
  o.seed = static_cast<uint64_t>(c.GetInt("federation.seed"));
  o.compression = c.GetString("federation.compression");
  o.topk_fraction = c.GetDouble("federation.topk_fraction");
  o.backbone = c.GetString("model.backbone");
  o.format = c.GetString("model.format");
  o.schema = c.GetString("model.schema");
  o.image_size = static_cast<int>(c.GetInt("model.image_size"));
  o.sr_factor = static_cast<int>(c.GetInt("model.sr_factor"));
  o.use_metadata = c.GetBool("model.use_metadata");
  o.init_checkpoint = c.GetString("model.init_checkpoint");
  o.batch_size = static_cast<int>(c.GetInt("training.batch_size"));
  o.optimizer = c.GetString("training.optimizer");
  o.learning_rate = c.GetDouble("training.learning_rate");
  o.weight_decay = c.GetDouble("training.weight_decay");
  o.lambda_sr = c.GetDouble("training.lambda_sr");
  o.lambda_cf = c.GetDouble("training.lambda_cf");
  o.weighted_ce = c.GetBool("training.weighted_ce");
  o.fedbn = c.GetBool("training.fedbn");
  o.strategy.name = c.GetString("strategy.name");
  o.strategy.proximal_mu = c.GetDouble("strategy.proximal_mu");
  o.strategy.server_learning_rate = c.GetDouble("strategy.server_learning_rate");
  o.strategy.beta1 = c.GetDouble("strategy.beta1");
  o.strategy.beta2 = c.GetDouble("strategy.beta2");
  o.strategy.tau = c.GetDouble("strategy.tau");
  o.strategy.trim_fraction = c.GetDouble("strategy.trim_fraction");
  o.strategy.krum_byzantine = static_cast<int>(c.GetInt("strategy.krum_byzantine"));
  o.strategy.krum_select = static_cast<int>(c.GetInt("strategy.krum_select"));
  o.listen = c.GetString("server.listen");
  o.port_file = c.GetString("server.port_file");
  o.state_dir = c.GetString("server.state_dir");
  o.export_dir = c.GetString("server.export_dir");
  o.max_concurrent_uploads = static_cast<int>(c.GetInt("server.max_concurrent_uploads"));
  o.threads = static_cast<int>(c.GetInt("server.threads"));
  o.insecure = c.GetBool("server.insecure");
  o.http_listen = c.GetString("http.listen");
  o.http_port_file = c.GetString("http.port_file");
  o.http_token_file = c.GetString("http.token_file");

  const std::string where = path.empty() ? "configuration" : path;
  auto refuse = [&](const std::string& why) { return InvalidArgumentError(where + ": " + why); };
  if (o.rounds < 1) return refuse("federation.rounds must be >= 1");
  if (o.min_sites < 1) return refuse("federation.min_sites must be >= 1");
  if (o.expected_sites < 0) return refuse("federation.expected_sites must be >= 0");
  if (o.secure_aggregation) {
    if (o.min_sites < 2) {
      return refuse("security.secure_aggregation needs federation.min_sites >= 2 (a sum of one "
                    "site is that site's update)");
    }
    if (o.secagg_threshold != 0 && (o.secagg_threshold < 2 || o.secagg_threshold > o.min_sites)) {
      return refuse("security.secagg_threshold must be 0 (automatic) or in 2..federation.min_sites");
    }
    if (!(o.secagg_clip > 0)) return refuse("security.secagg_clip must be > 0");
    if (!(o.secagg_phase_deadline_s > 0)) return refuse("security.secagg_phase_deadline_s must be > 0");
    for (const char* robust : {"fedmedian", "trimmed_mean", "krum"}) {
      if (o.strategy.name == robust) {
        return refuse("strategy.name = " + o.strategy.name + " needs every site's own update, but "
                      "security.secure_aggregation reveals only their sum: use fedavg, fedprox, "
                      "fedadam, fedyogi or fedadagrad, or turn secure aggregation off");
      }
    }
  }
  if (o.dp_mode != "off" && o.dp_mode != "central" && o.dp_mode != "distributed") {
    return refuse("dp.mode must be off, central or distributed");
  }
  if (o.dp_mode != "off") {
    if (!(o.dp_clip > 0)) return refuse("dp.clip must be > 0");
    if (!(o.dp_noise_multiplier > 0)) return refuse("dp.noise_multiplier must be > 0");
    if (!(o.dp_delta > 0 && o.dp_delta < 1)) return refuse("dp.delta must be in (0, 1)");
    if (!(o.dp_epsilon_budget >= 0)) return refuse("dp.epsilon_budget must be >= 0");
    if (o.dp_mode == "distributed" && !o.secure_aggregation) {
      return refuse("dp.mode = distributed needs security.secure_aggregation = true (each site's "
                    "share of the noise is too small to protect its update on its own)");
    }
  }
  auto codec = ParseUpdateCodec(o.compression);
  if (!codec.ok()) return refuse("federation.compression: " + std::string(codec.status().message()));
  if (*codec != UpdateCodec::kNone) {
    if (!(o.topk_fraction > 0 && o.topk_fraction <= 1)) {
      return refuse("federation.topk_fraction must be in (0, 1]");
    }
    // Masking works on fixed-point words mod 2^32 that must sum exactly: a per-site fp16,
    // int8 scale or top-k index set would not (docs/configuration.md, "Update compression").
    if (o.secure_aggregation) {
      return refuse("federation.compression = " + o.compression + " cannot be combined with "
                    "security.secure_aggregation: masked updates are already fixed-point words "
                    "that must add up exactly across sites; use compression = none");
    }
    // The coordinator checks every update's norm against dp.clip; lossy codecs (and top-k's
    // error feedback, which carries past rounds' values) could exceed it.
    if (o.dp_mode != "off") {
      return refuse("federation.compression = " + o.compression + " cannot be combined with "
                    "dp.mode = " + o.dp_mode + ": a compressed update may exceed the dp.clip "
                    "bound the noise is calibrated to; use compression = none");
    }
  }
  if (!(o.max_update_norm >= 0)) return refuse("security.max_update_norm must be >= 0 (0 = no bound)");
  if (o.keep_checkpoints < 0) return refuse("server.keep_checkpoints must be >= 0 (0 = keep all)");
  if (!(o.stop_grace_s >= 0 && o.stop_grace_s <= 86400)) {
    return refuse("server.stop_grace_s must be between 0 and 86400 seconds");
  }
  if (o.expected_sites > 0 && o.min_sites > o.expected_sites) {
    return refuse("federation.min_sites (" + std::to_string(o.min_sites) +
                  ") exceeds federation.expected_sites (" + std::to_string(o.expected_sites) + ")");
  }
  if (!(o.fraction > 0 && o.fraction <= 1)) return refuse("federation.fraction must be in (0, 1]");
  if (o.round_deadline_s <= 0 || o.eval_deadline_s <= 0 || o.join_timeout_s <= 0) {
    return refuse("federation.round_deadline_s, eval_deadline_s and join_timeout_s must be > 0");
  }
  if (o.stragglers != "drop" && o.stragglers != "wait") {
    return refuse("federation.stragglers must be drop or wait, got '" + o.stragglers + "'");
  }
  if (o.local_epochs < 1) return refuse("federation.local_epochs must be >= 1");
  if (o.image_size < 16 || o.image_size > 1024) return refuse("model.image_size must be in 16..1024");
  if (o.sr_factor < 1 || o.sr_factor > 8) return refuse("model.sr_factor must be in 1..8");
  if (o.batch_size < 1) return refuse("training.batch_size must be >= 1");
  if (o.optimizer != "adamw" && o.optimizer != "adam" && o.optimizer != "sgd") {
    return refuse("training.optimizer must be adamw, adam or sgd, got '" + o.optimizer + "'");
  }
  if (!(o.learning_rate > 0)) return refuse("training.learning_rate must be > 0");
  if (o.lambda_sr < 0 || o.lambda_cf < 0) return refuse("training.lambda_sr and lambda_cf must be >= 0");
  if (o.max_concurrent_uploads < 1) return refuse("server.max_concurrent_uploads must be >= 1");
  if (o.state_dir.empty()) return refuse("server.state_dir must not be empty");
  // Last, so that a test configuration without certificates still hears about its other
  // mistakes first.
  if (!o.insecure && (o.tls.ca.empty() || o.tls.cert.empty() || o.tls.key.empty())) {
    return refuse("tls.ca, tls.cert and tls.key are required unless server.insecure = true");
  }
  return o;
}

}  // namespace dermfed::coordinator
