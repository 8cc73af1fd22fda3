#include "coordinator/round_engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <thread>
#include <random>
#include <sstream>

#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/crypto/fixed_point.h"
#include "common/model_transfer.h"
#include "common/secagg/messages.h"
#include "common/secagg/protocol.h"
#include "coordinator/explanations.h"
#include "coordinator/strategies/tensor_ops.h"

namespace dermfed::coordinator {
namespace {

using Clock = std::chrono::steady_clock;
constexpr char kLog[] = "coordinator";

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::chrono::steady_clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

int64_t UnixMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

template <typename Map>
void CopyMetrics(const Map& from, v1::Event* e) {
  // Per-feature importances (importance/..., importance_rows/...) go into the round's
  // combined explanations, not into every event a watcher sees.
  for (const auto& [k, v] : from) {
    if (k.rfind("importance", 0) == 0) continue;
    (*e->mutable_metrics())[k] = v;
  }
}

// {"key": value, ...} with the keys escaped: they come from the sites.
template <typename Map>
std::string MetricsJson(const Map& metrics) {
  std::string json = "{";
  for (const auto& [k, v] : metrics) {
    json += (json.size() > 1 ? ", " : "") + JsonString(k) + ": " + JsonNumber(v);
  }
  return json + "}";
}

}  // namespace

std::shared_ptr<const GlobalModel> MakeGlobalModel(int64_t version, ModelState state) {
  auto g = std::make_shared<GlobalModel>();
  g->version = version;
  const auto digest = BufferDigest(state);
  g->sha256.assign(reinterpret_cast<const char*>(digest.data()), digest.size());
  g->hex_digest = HexDigest(digest.data(), digest.size());
  g->manifest = ManifestToProto(state);
  g->state = std::move(state);
  return g;
}

RoundEngine::RoundEngine(CoordinatorConfig config, v1::FederationSpec spec, ModelState global,
                         int64_t completed_round, std::unique_ptr<Strategy> strategy, Store* store)
    : config_(std::move(config)),
      spec_(std::move(spec)),
      strategy_(std::move(strategy)),
      store_(store),
      round_(completed_round),
      global_(MakeGlobalModel(completed_round, std::move(global))) {}

bool RoundEngine::WaitUntil(std::unique_lock<std::mutex>& lock, Clock::time_point t,
                            const std::function<bool()>& done) {
  return cv_.wait_until(lock, t, [&] { return stop_ || done(); }) && !stop_;
}

std::vector<std::string> RoundEngine::LiveSites() const {
  const auto alive = Clock::now() - Seconds(std::max(120.0, 2 * config_.round_deadline_s));
  std::vector<std::string> live;
  for (const auto& [name, s] : sites_) {
    if (s.last_seen >= alive) live.push_back(name);
  }
  return live;
}

Status RoundEngine::Touch(const std::string& site) {
  auto it = sites_.find(site);
  if (it == sites_.end()) {
    return FailedPreconditionError("site '" + site + "' has not joined (the coordinator may have "
                                   "restarted); join again");
  }
  it->second.last_seen = Clock::now();
  it->second.last_seen_wall = std::chrono::system_clock::now();
  return OkStatus();
}

StatusOr<v1::JoinResponse> RoundEngine::Join(const std::string& site, int64_t train_rows) {
  if (site.empty() || site.size() > 128) {
    return InvalidArgumentError("site name must be 1..128 characters");
  }
  if (train_rows < 0) return InvalidArgumentError("site '" + site + "': negative train_rows");
  {
    std::lock_guard<std::mutex> lock(mu_);
    Site& s = sites_[site];
    const bool rejoin = !s.name.empty();
    s.name = site;
    s.train_rows = train_rows;
    s.last_seen = Clock::now();
    s.last_seen_wall = std::chrono::system_clock::now();
    LogInfo(kLog, "site=%s %s (train_rows=%d, %d sites known)", site,
            rejoin ? "rejoined" : "joined", train_rows, sites_.size());
    events_.Publish(v1::Event::SITE_JOINED, round_, global_->version, site,
                    std::string(rejoin ? "rejoined" : "joined") + " with " +
                        std::to_string(train_rows) + " training rows");
    Audit(site, "site", "join", site, round_, true,
          std::string(rejoin ? "rejoined" : "joined") + ", train_rows=" + std::to_string(train_rows));
  }
  cv_.notify_all();
  (void)store_->UpsertSite(site, train_rows, "joined");
  v1::JoinResponse r;
  r.set_site_name(site);
  *r.mutable_spec() = spec_;
  return r;
}

StatusOr<v1::Task> RoundEngine::WaitForTask(const std::string& site,
                                            std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(mu_);
  DF_RETURN_IF_ERROR(Touch(site));
  v1::Task task;
  auto ready = [&] {
    if (phase_ == Phase::kDone) {
      task.set_kind(v1::Task::DONE);
      return true;
    }
    auto secagg_task = [&](v1::Task::Kind kind) {
      task.set_kind(kind);
      task.set_round(round_);
      task.set_model_version(global_->version);
      for (const auto& [k, v] : secagg_config_) (*task.mutable_config())[k] = v;
      task.set_secagg(secagg_request_);
      return true;
    };
    const bool asked = secagg_expected_.count(site) && !secagg_answered_.count(site);
    if (phase_ == Phase::kSecAggAdvertise && asked) return secagg_task(v1::Task::SECAGG_ADVERTISE);
    if (phase_ == Phase::kSecAggShare && asked) return secagg_task(v1::Task::SECAGG_SHARE);
    if (phase_ == Phase::kSecAggUnmask && asked) return secagg_task(v1::Task::SECAGG_UNMASK);
    if (phase_ == Phase::kTrain && selected_.count(site) && !reported_.count(site)) {
      task.set_kind(v1::Task::TRAIN);
      task.set_round(round_);
      task.set_model_version(global_->version);
      task.set_model_sha256(global_->sha256);
      task.set_local_epochs(config_.local_epochs);
      for (const auto& [k, v] : strategy_->ConfigureFit(static_cast<int>(round_))) {
        (*task.mutable_config())[k] = v;
      }
      if (config_.dp_mode != "off") {
        auto& cfg = *task.mutable_config();
        cfg["dp_clip"] = config_.dp_clip;
        cfg["dp_unweighted"] = 1;  // DP-FedAvg: every site counts once
        if (config_.dp_mode == "distributed" && secagg_) {
          // Each of at least t surviving sites adds N(0, (zC)^2 / t): the sum has (zC)^2.
          cfg["dp_stddev"] = config_.dp_noise_multiplier * config_.dp_clip /
                             std::sqrt(secagg_config_["secagg_threshold"]);
        }
      }
      if (secagg_) {
        auto request = secagg_->MaskingRequestFor(site);
        if (!request.ok()) return false;  // not in U2: nothing to do this round
        for (const auto& [k, v] : secagg_config_) (*task.mutable_config())[k] = v;
        task.set_secagg(request->Serialize());
        task.set_upload_key(reinterpret_cast<const char*>(upload_key_->public_key.data()),
                            upload_key_->public_key.size());
      }
      return true;
    }
    if (phase_ == Phase::kEvaluate && eval_expected_.count(site) && !eval_reports_.count(site)) {
      task.set_kind(v1::Task::EVALUATE);
      task.set_round(round_);
      task.set_model_version(global_->version);
      task.set_model_sha256(global_->sha256);
      return true;
    }
    return false;
  };
  if (!cv_.wait_for(lock, wait, [&] { return stop_ || ready(); }) || stop_) {
    task.Clear();
    task.set_kind(stop_ ? v1::Task::DONE : v1::Task::WAIT);
  }
  (void)Touch(site);
  if (task.kind() == v1::Task::DONE && told_done_.insert(site).second) {
    lock.unlock();
    cv_.notify_all();  // AwaitSitesToldDone
  }
  return task;
}

std::vector<std::string> RoundEngine::AwaitSitesToldDone(std::chrono::duration<double> grace) {
  std::unique_lock<std::mutex> lock(mu_);
  const std::vector<std::string> waiting = LiveSites();
  auto untold = [&] {
    std::vector<std::string> out;
    for (const auto& name : waiting) {
      if (!told_done_.count(name)) out.push_back(name);
    }
    return out;
  };
  // Not WaitUntil: after a stop, that returns at once.
  cv_.wait_until(lock, Clock::now() + Seconds(grace.count()), [&] { return untold().empty(); });
  return untold();
}

StatusOr<std::shared_ptr<const GlobalModel>> RoundEngine::GetModel(const std::string& site,
                                                                   int64_t version) {
  std::lock_guard<std::mutex> lock(mu_);
  DF_RETURN_IF_ERROR(Touch(site));
  if (version != global_->version) {
    return FailedPreconditionError("site '" + site + "' asked for model version " +
                                   std::to_string(version) + ", the current version is " +
                                   std::to_string(global_->version));
  }
  return global_;
}

std::shared_ptr<const GlobalModel> RoundEngine::CurrentModel() {
  std::lock_guard<std::mutex> lock(mu_);
  return global_;
}

CodecOptions RoundEngine::UpdateCompression() const {
  // main.cc puts only validated settings (coordinator_config.cc) into the spec.
  auto codec = NegotiatedCodec(spec_);
  return codec.ok() ? *codec : CodecOptions{};
}

StatusOr<secagg::UploadOpener> RoundEngine::UploadOpenerFor(const std::string& site, int64_t round,
                                                            int64_t version,
                                                            const std::string& site_key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!secagg_ || !upload_key_ || round != round_ || version != global_->version) {
    return FailedPreconditionError("masked update from site '" + site + "' for round " +
                                   std::to_string(round) + ": that round is not collecting masked "
                                   "updates");
  }
  return secagg::UploadOpener::Create(upload_key_->private_key, site_key, site, round, version);
}

size_t RoundEngine::MaskedUpdateWords() {
  std::lock_guard<std::mutex> lock(mu_);
  return secagg_ ? secagg_layout_.words : 0;
}

Status RoundEngine::CheckUpdate(const std::string& site, int64_t round, int64_t version,
                                int64_t num_examples, bool masked) {
  std::lock_guard<std::mutex> lock(mu_);
  Status s = CheckUpdateLocked(site, round, version, num_examples, masked);
  return s.ok() ? s : RejectLocked(site, round, version, s);
}

Status RoundEngine::CheckUpdateLocked(const std::string& site, int64_t round, int64_t version,
                                      int64_t num_examples, bool masked) {
  DF_RETURN_IF_ERROR(Touch(site));
  const std::string who = "site '" + site + "': update for round " + std::to_string(round);
  if (phase_ != Phase::kTrain || round != round_) {
    return FailedPreconditionError(who + " is stale or early: round " + std::to_string(round_) +
                                   (phase_ == Phase::kTrain ? " is collecting updates"
                                                            : " is not collecting updates"));
  }
  if (version != global_->version) {
    return FailedPreconditionError(who + " was trained from model version " +
                                   std::to_string(version) + ", the round uses version " +
                                   std::to_string(global_->version));
  }
  if (!selected_.count(site)) {
    return PermissionDeniedError(who + ": the site was not selected for this round");
  }
  if (reported_.count(site)) {
    return AlreadyExistsError(who + " was already received (replay?)");
  }
  if (masked != secagg_.has_value()) {
    return InvalidArgumentError(who + (masked ? " is masked, but this round is not securely aggregated"
                                              : " is in plaintext, but this round is securely "
                                                "aggregated: send the masked update"));
  }
  if (!masked && num_examples <= 0) {
    return InvalidArgumentError(who + " has num_examples " + std::to_string(num_examples));
  }
  return OkStatus();
}

Status RoundEngine::RejectUpdate(const std::string& site, int64_t round, int64_t version,
                                 const Status& why) {
  std::lock_guard<std::mutex> lock(mu_);
  return RejectLocked(site, round, version, why);
}

Status RoundEngine::RejectLocked(const std::string& site, int64_t round, int64_t version,
                                 const Status& why) {
  LogWarning(kLog, "site=%s round=%d update refused: %s", site, round, why.message());
  metrics_.UpdateRejected(RejectReason(static_cast<int>(why.code())));
  events_.Publish(v1::Event::UPDATE_REJECTED, round, version, site, std::string(why.message()));
  Audit(site, "site", "reject", site, round, false, std::string(why.message()));
  return why;
}

Status RoundEngine::SubmitUpdate(const std::string& site, int64_t round, int64_t version,
                                 int64_t num_examples, const ModelState& delta,
                                 const std::map<std::string, double>& train_metrics, bool masked) {
  DF_RETURN_IF_ERROR(CheckUpdate(site, round, version, num_examples, masked));
  const bool dp = config_.dp_mode != "off";
  const std::string what = std::string(masked ? "masked update" : "update") + " from site '" +
                           site + "' for round " + std::to_string(round);
  // A plaintext update's norm bound (dp.clip under DP: the sites clip to it). Finite values
  // are checked by the aggregator's Fold; a masked update's values are not visible.
  const double bound = dp ? config_.dp_clip * (1 + 1e-4) : config_.max_update_norm;
  if (!masked && bound > 0) {
    StatusOr<double> norm = dp::L2Norm(delta);
    Status s = norm.ok() ? OkStatus() : norm.status();
    if (s.ok() && *norm > bound) {
      s = InvalidArgumentError(what + ": L2 norm " + std::to_string(*norm) + " exceeds the bound " +
                               std::to_string(bound) +
                               (dp ? " (dp.clip)" : " (security.max_update_norm)"));
    }
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      return RejectLocked(site, round, version, s);
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Re-checked under the same lock as the fold: the round cannot have moved on.
    if (phase_ != Phase::kTrain || round != round_ || reported_.count(site) ||
        masked != secagg_.has_value()) {
      return FailedPreconditionError(what + ": the round closed while it was being received");
    }
    Status s;
    if (masked) {
      s = secagg::CheckMaskedLayout(delta, secagg_layout_.words, what);
      if (s.ok()) {
        s = secagg_->AddMaskedInput(
            site, absl::Span<const uint32_t>(reinterpret_cast<const uint32_t*>(delta.data()),
                                             secagg_layout_.words));
      }
    } else {
      s = aggregator_->Fold(site, dp ? 1 : num_examples, delta);
      if (!s.ok()) s = Status(s.code(), what + " refused: " + std::string(s.message()));
    }
    if (!s.ok()) return RejectLocked(site, round, version, s);
    reported_.insert(site);
    metrics_.UpdateReceived();
    if (train_metrics.count("loss")) metrics_.SiteTrainingLoss(site, train_metrics.at("loss"));
    Site& who = sites_[site];
    ++who.rounds_contributed;
    who.last_round = round;
    who.dropped_last = false;
    const std::string detail = (masked ? "masked, version " : "version ") + std::to_string(version) +
                               (masked ? "" : ", num_examples " + std::to_string(num_examples));
    Audit(site, "site", "upload", site, round, true, detail);
    v1::Event e;
    e.set_kind(v1::Event::UPDATE_RECEIVED);
    e.set_round(round);
    e.set_model_version(version);
    e.set_site(site);
    e.set_message(std::string(masked ? "masked update " : "update ") +
                  std::to_string(reported_.size()) + " of " + std::to_string(selected_.size()) +
                  " folded");
    CopyMetrics(train_metrics, &e);
    if (!masked) (*e.mutable_metrics())["num_examples"] = static_cast<double>(num_examples);
    events_.Publish(std::move(e));
    LogInfo(kLog, "site=%s round=%d version=%d %s folded (%d/%d%s, loss=%.4f)", site, round,
            version, masked ? "masked update" : "update", reported_.size(), selected_.size(),
            masked ? "" : ", n=" + std::to_string(num_examples),
            train_metrics.count("loss") ? train_metrics.at("loss") : NAN);
  }
  cv_.notify_all();
  (void)store_->RecordSiteMetrics({round, site, "train", num_examples, MetricsJson(train_metrics)});
  return OkStatus();
}

Status RoundEngine::SubmitEvaluation(const v1::MetricsReport& report, const std::string& site) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    DF_RETURN_IF_ERROR(Touch(site));
    if (phase_ != Phase::kEvaluate || report.round() != round_ ||
        report.model_version() != global_->version) {
      return FailedPreconditionError(
          "site '" + site + "': evaluation of round " + std::to_string(report.round()) +
          " (version " + std::to_string(report.model_version()) + ") is not being collected");
    }
    const int64_t k = spec_.num_classes();
    if (report.confusion_size() != k * k) {
      return InvalidArgumentError("site '" + site + "': confusion matrix has " +
                                  std::to_string(report.confusion_size()) + " cells, expected " +
                                  std::to_string(k * k));
    }
    // The counts are summed across sites in int64 (FinishEvaluation): bound each report.
    constexpr int64_t kMaxEvaluationRows = 1'000'000'000'000;
    int64_t rows = 0;
    for (int64_t c : report.confusion()) {
      if (c < 0) return InvalidArgumentError("site '" + site + "': negative confusion count");
      if (c > kMaxEvaluationRows - rows) {
        return InvalidArgumentError("site '" + site + "': confusion matrix counts more than " +
                                    std::to_string(kMaxEvaluationRows) + " rows");
      }
      rows += c;
    }
    if (report.num_examples() != rows) {
      return InvalidArgumentError(
          "site '" + site + "': num_examples " + std::to_string(report.num_examples()) +
          " differs from the confusion matrix's " + std::to_string(rows) + " rows");
    }
    if (!eval_expected_.count(site)) {
      return PermissionDeniedError("site '" + site + "' was not asked to evaluate round " +
                                   std::to_string(round_));
    }
    if (eval_reports_.count(site)) {
      return AlreadyExistsError("site '" + site + "': evaluation of round " +
                                std::to_string(round_) + " was already received");
    }
    eval_reports_[site] = report;
    const auto bad = report.metrics().find("non_finite_rows");
    if (bad != report.metrics().end() && bad->second > 0) {
      LogWarning(kLog, "site=%s round=%d: the global model gives non-finite outputs on %.0f of "
                 "its validation rows (it has diverged); those rows are not in the metrics",
                 site, report.round(), bad->second);
    }
    v1::Event e;
    e.set_kind(v1::Event::SITE_EVALUATED);
    e.set_round(report.round());
    e.set_model_version(report.model_version());
    e.set_site(site);
    e.set_message("evaluation " + std::to_string(eval_reports_.size()) + " of " +
                  std::to_string(eval_expected_.size()) + " received");
    CopyMetrics(report.metrics(), &e);
    (*e.mutable_metrics())["num_examples"] = static_cast<double>(report.num_examples());
    events_.Publish(std::move(e));
  }
  cv_.notify_all();
  (void)store_->RecordSiteMetrics({report.round(), site, "eval", report.num_examples(), MetricsJson(report.metrics())});
  return OkStatus();
}

Status RoundEngine::SubmitSecAgg(const std::string& site, const v1::SecAggMessage& m) {
  std::lock_guard<std::mutex> lock(mu_);
  DF_RETURN_IF_ERROR(Touch(site));
  const std::string who = "site '" + site + "': secure aggregation message for round " +
                          std::to_string(m.round());
  const Phase want = m.phase() == v1::Task::SECAGG_ADVERTISE ? Phase::kSecAggAdvertise
                     : m.phase() == v1::Task::SECAGG_SHARE   ? Phase::kSecAggShare
                     : m.phase() == v1::Task::SECAGG_UNMASK  ? Phase::kSecAggUnmask
                                                             : Phase::kDone;
  if (want == Phase::kDone) return InvalidArgumentError(who + " names no secure-aggregation phase");
  if (!secagg_ || phase_ != want || m.round() != round_ || m.model_version() != global_->version) {
    return FailedPreconditionError(who + " (version " + std::to_string(m.model_version()) +
                                   ") is not for the phase in progress");
  }
  if (!secagg_expected_.count(site)) {
    return PermissionDeniedError(who + ": the site is not part of this phase");
  }
  Status s;
  if (want == Phase::kSecAggAdvertise) {
    auto adv = secagg::Advertisement::Parse(m.payload());
    s = adv.ok() ? secagg_->AddAdvertisement(site, *adv) : adv.status();
  } else if (want == Phase::kSecAggShare) {
    auto bundle = secagg::ShareBundle::Parse(m.payload());
    s = bundle.ok() ? secagg_->AddShares(site, std::move(bundle).value()) : bundle.status();
  } else {
    auto response = secagg::UnmaskResponse::Parse(m.payload());
    s = response.ok() ? secagg_->AddUnmaskResponse(site, *response) : response.status();
  }
  if (!s.ok()) {
    LogWarning(kLog, "site=%s round=%d secure aggregation message refused: %s", site, round_,
               s.message());
    Audit(site, "site", "reject", site, round_, false, std::string(s.message()));
    return s;
  }
  secagg_answered_.insert(site);
  cv_.notify_all();
  return OkStatus();
}

void RoundEngine::SecAggWait(std::unique_lock<std::mutex>& lock) {
  secagg_answered_.clear();
  deadline_wall_ = std::chrono::system_clock::now() + Seconds(config_.secagg_phase_deadline_s);
  lock.unlock();
  cv_.notify_all();
  lock.lock();
  WaitUntil(lock, Clock::now() + Seconds(config_.secagg_phase_deadline_s),
            [&] { return secagg_answered_.size() == secagg_expected_.size(); });
}

Status RoundEngine::SecAggSetup(std::unique_lock<std::mutex>& lock, int64_t round) {
  std::vector<std::string> participants(selected_.begin(), selected_.end());
  const int n = static_cast<int>(participants.size());
  const int t = config_.secagg_threshold > 0 ? config_.secagg_threshold
                                             : std::max(2, (2 * n + 2) / 3);
  if (n < 2 || t > n) {
    return FailedPreconditionError("round " + std::to_string(round) + ": secure aggregation needs " +
                                   std::to_string(std::max(2, t)) + " sites, " +
                                   std::to_string(n) + " selected");
  }
  int64_t max_weight = 1;
  for (const auto& p : participants) max_weight = std::max(max_weight, sites_[p].train_rows);
  secagg_params_.clip = static_cast<float>(config_.secagg_clip);
  secagg_params_.max_weight = max_weight;
  DF_ASSIGN_OR_RETURN(secagg_params_.scale,
                      crypto::ChooseScale(secagg_params_.clip, n, static_cast<double>(max_weight)));
  secagg_layout_ = secagg::LayoutFor(global_->state, strategy_->local_tensors());
  const std::string context =
      secagg::RoundContext(spec_.federation(), static_cast<uint64_t>(round),
                           std::to_string(global_->version));
  DF_ASSIGN_OR_RETURN(secagg::Server server,
                      secagg::Server::Create(context, participants, t, secagg_layout_.words));
  secagg_.emplace(std::move(server));
  DF_ASSIGN_OR_RETURN(crypto::KeyPair upload_key, crypto::GenerateKeyPair());
  upload_key_.emplace(std::move(upload_key));
  secagg_config_ = {{"secagg_threshold", t},
                    {"secagg_scale", secagg_params_.scale},
                    {"secagg_clip", secagg_params_.clip},
                    {"secagg_max_weight", static_cast<double>(max_weight)}};
  LogInfo(kLog, "round=%d secure aggregation: %d sites, threshold %d, %d words, scale 2^%.0f", round,
          n, t, secagg_layout_.words, std::log2(secagg_params_.scale));

  phase_ = Phase::kSecAggAdvertise;
  secagg_request_.clear();
  secagg_expected_ = selected_;
  SecAggWait(lock);
  if (stop_) return OkStatus();
  DF_ASSIGN_OR_RETURN(secagg::AdvertisementList u1, secagg_->CloseAdvertisements());

  phase_ = Phase::kSecAggShare;
  secagg_request_ = u1.Serialize();
  secagg_expected_.clear();
  for (const auto& a : u1.advertisements) secagg_expected_.insert(a.site);
  SecAggWait(lock);
  if (stop_) return OkStatus();
  DF_ASSIGN_OR_RETURN(std::vector<std::string> u2, secagg_->CloseShares());
  selected_ = std::set<std::string>(u2.begin(), u2.end());
  secagg_expected_.clear();
  secagg_request_.clear();
  LogInfo(kLog, "round=%d secure aggregation: %d sites advertised keys, %d shared them", round,
          u1.advertisements.size(), u2.size());
  return OkStatus();
}

StatusOr<ModelState> RoundEngine::SecAggUnmask(std::unique_lock<std::mutex>& lock, int64_t round) {
  DF_ASSIGN_OR_RETURN(secagg::UnmaskRequest request, secagg_->MakeUnmaskRequest());
  phase_ = Phase::kSecAggUnmask;
  secagg_request_ = request.Serialize();
  secagg_expected_ = std::set<std::string>(request.survivors.begin(), request.survivors.end());
  SecAggWait(lock);
  if (stop_) return CancelledError("stopped");
  secagg::Server server = std::move(*secagg_);
  secagg_.reset();
  secagg_expected_.clear();
  secagg_request_.clear();
  phase_ = Phase::kAggregating;
  const secagg::VectorLayout layout = secagg_layout_;
  const secagg::QuantParams params = secagg_params_;
  const size_t answered = secagg_answered_.size();
  lock.unlock();
  StatusOr<std::vector<uint32_t>> sum = server.Finish();
  if (!sum.ok()) {
    lock.lock();
    return sum.status();
  }
  int64_t total_weight = 0;
  auto mean = secagg::DecodeMean(*sum, global_->state, layout, params, &total_weight);
  lock.lock();
  if (mean.ok()) {
    LogInfo(kLog, "round=%d secure aggregation: unmasked with %d responses (%d dropped), total "
            "weight %d", round, answered, request.dropped.size(), total_weight);
  }
  return mean;
}

int RoundEngine::ReadySites() const {
  int ready = 0;
  for (const auto& [name, s] : sites_) ready += s.train_rows > 0 ? 1 : 0;
  return ready;
}

std::vector<std::string> RoundEngine::SelectSites(int64_t round) {
  // Sites seen recently enough to be alive; sampled by a generator seeded from the round,
  // so a restarted coordinator selects the same way.
  const auto horizon = Clock::now() - Seconds(std::max(120.0, 2 * config_.round_deadline_s));
  std::vector<std::string> live;
  for (const auto& [name, s] : sites_) {
    if (s.last_seen >= horizon && s.train_rows > 0) live.push_back(name);
  }
  std::mt19937_64 rng(config_.seed * 1000003 + static_cast<uint64_t>(round));
  std::shuffle(live.begin(), live.end(), rng);
  const size_t want = std::max<size_t>(
      static_cast<size_t>(config_.min_sites),
      static_cast<size_t>(std::ceil(config_.fraction * static_cast<double>(live.size()))));
  live.resize(std::min(live.size(), want));
  std::sort(live.begin(), live.end());
  return live;
}

Status RoundEngine::RunRound(int64_t round) {
  std::unique_lock<std::mutex> lock(mu_);
  const double started = UnixNow();
  // Wait for enough sites, and for the end of a pause (which can come while waiting).
  while (true) {
    if (paused_ && !stop_) {
      idle_ = true;
      LogInfo(kLog, "paused before round %d", round);
      events_.Publish(v1::Event::PAUSED, round - 1, global_->version, "",
                      "paused before round " + std::to_string(round));
      cv_.wait(lock, [&] { return stop_ || !paused_; });
      idle_ = false;
    }
    if (stop_) return OkStatus();
    const auto join_deadline = Clock::now() + Seconds(config_.join_timeout_s);
    const bool ready = WaitUntil(lock, join_deadline, [&] {
      return paused_ || ReadySites() >= config_.min_sites;
    });
    if (stop_) return OkStatus();
    if (paused_) continue;
    if (ready) break;
    return DeadlineExceededError("only " + std::to_string(ReadySites()) + " of the " +
                                 std::to_string(config_.min_sites) +
                                 " sites needed (federation.min_sites) joined within " +
                                 std::to_string(config_.join_timeout_s) + " s");
  }
  round_ = round;
  std::vector<std::string> selected = SelectSites(round);
  selected_ = std::set<std::string>(selected.begin(), selected.end());
  dp_sample_rate_ = static_cast<double>(selected.size()) / std::max(1, ReadySites());
  reported_.clear();
  secagg_.reset();
  if (config_.secure_aggregation) {
    Status setup = SecAggSetup(lock, round);
    if (stop_) return OkStatus();
    if (!setup.ok()) {
      secagg_.reset();
      phase_ = Phase::kWaiting;
      return setup;
    }
  }
  phase_ = Phase::kTrain;
  aggregator_ = strategy_->NewAggregator(global_->state);
  deadline_ = Clock::now() + Seconds(config_.round_deadline_s);
  deadline_wall_ = std::chrono::system_clock::now() + Seconds(config_.round_deadline_s);
  {
    std::string names;
    for (const auto& s : selected) names += (names.empty() ? "" : ",") + s;
    LogInfo(kLog, "round=%d version=%d started: %d sites selected (%s)", round, global_->version,
            selected.size(), names);
    events_.Publish(v1::Event::ROUND_STARTED, round, global_->version, "",
                    std::to_string(selected.size()) + " sites selected: " + names);
  }
  lock.unlock();
  cv_.notify_all();
  lock.lock();

  while (true) {
    const bool all = WaitUntil(lock, deadline_, [&] { return reported_.size() == selected_.size(); });
    if (stop_) return OkStatus();
    if (all) break;
    const int reported = static_cast<int>(reported_.size());
    const int needed = std::max(config_.min_sites,
                                secagg_ ? static_cast<int>(secagg_config_["secagg_threshold"]) : 0);
    if (config_.stragglers == "drop" && reported >= needed) {
      std::string late;
      for (const auto& s : selected_) {
        if (!reported_.count(s)) late += (late.empty() ? "" : ",") + s;
      }
      LogWarning(kLog, "round=%d deadline passed: aggregating %d updates, dropping stragglers %s",
                 round, reported, late);
      for (const auto& s : selected_) {
        if (!reported_.count(s)) sites_[s].dropped_last = true;
      }
      events_.Publish(v1::Event::STRAGGLERS_DROPPED, round, global_->version, "",
                      "deadline passed; dropped " + late);
      break;
    }
    // Too few updates: widen the selection to every live site that has not reported (a
    // crashed site may have rejoined, others may have joined) and wait another deadline.
    for (const auto& s : SelectSites(round)) selected_.insert(s);
    for (const auto& [name, s] : sites_) {
      if (s.last_seen >= Clock::now() - Seconds(config_.round_deadline_s)) selected_.insert(name);
    }
    deadline_ = Clock::now() + Seconds(config_.round_deadline_s);
    deadline_wall_ = std::chrono::system_clock::now() + Seconds(config_.round_deadline_s);
    LogWarning(kLog, "round=%d has %d of %d updates needed at the deadline; waiting another %.0f s "
               "with %d sites selected",
               round, reported, config_.min_sites, config_.round_deadline_s, selected_.size());
    cv_.notify_all();
  }
  // Aggregate: no more updates are accepted for this round from here on.
  phase_ = Phase::kAggregating;
  deadline_wall_ = {};
  const int sites_reported = static_cast<int>(reported_.size());
  const int sites_selected = static_cast<int>(selected_.size());
  std::unique_ptr<Aggregator> aggregator = std::move(aggregator_);
  std::optional<ModelState> unmasked;
  if (secagg_) {
    StatusOr<ModelState> mean = SecAggUnmask(lock, round);
    if (stop_) return OkStatus();
    if (!mean.ok()) {
      secagg_.reset();
      phase_ = Phase::kWaiting;
      return mean.status();
    }
    unmasked = std::move(mean).value();
  }
  ModelState next = global_->state.Clone();
  lock.unlock();
  const auto aggregation_started = Clock::now();

  ModelState delta;
  if (unmasked) {
    delta = std::move(*unmasked);
  } else {
    DF_ASSIGN_OR_RETURN(delta, aggregator->Finish());
  }
  if (config_.dp_mode == "central") {
    // The mean of m clipped updates: noise z*C on the sum is z*C/m on the mean.
    if (!dp_rng_) {
      DF_ASSIGN_OR_RETURN(dp::SecureRng rng, dp::SecureRng::Create());
      dp_rng_.emplace(std::move(rng));
    }
    DF_RETURN_IF_ERROR(dp::AddGaussianNoise(
        &delta, config_.dp_noise_multiplier * config_.dp_clip / std::max(1, sites_reported),
        *dp_rng_));
  }
  DF_RETURN_IF_ERROR(strategy_->Apply(delta, &next));
  // Noise or a server optimizer can take a BatchNorm variance below zero: NaN at every site.
  std::vector<std::string> clamped_tensors;
  if (const int64_t clamped = ClampRunningVariances(&next, &clamped_tensors); clamped > 0) {
    LogWarning(kLog, "round=%d: %d BatchNorm running variances came out negative (%s); set to "
               "0 so that the model stays finite", round, clamped,
               absl::StrJoin(clamped_tensors, ", "));
  }
  DF_ASSIGN_OR_RETURN(ModelState strategy_state, strategy_->SaveState());
  auto next_global = MakeGlobalModel(round, std::move(next));
  RoundRecord record;
  record.round = round;
  record.model_version = round;
  record.digest = next_global->hex_digest;
  record.sites_selected = sites_selected;
  record.sites_reported = sites_reported;
  record.started_unix_s = started;
  // The round ends when its checkpoint is durable: the next one cannot start before.
  const auto checkpoint_started = Clock::now();
  Status saved = store_->WriteCheckpoint(round, next_global->state, strategy_state);
  const double checkpoint_seconds =
      std::chrono::duration<double>(Clock::now() - checkpoint_started).count();
  record.finished_unix_s = UnixNow();
  if (saved.ok()) saved = store_->CommitRound(record);
  if (!saved.ok()) {
    // The previous checkpoint is intact; the round is run again from the same model.
    LogError(kLog, "round=%d checkpoint failed, the round will be retried: %s", round,
             saved.message());
    DF_ASSIGN_OR_RETURN(ModelState old_state, store_->LoadStrategyState(round - 1));
    (void)strategy_->RestoreState(old_state);
    return saved;
  }
  metrics_.Aggregated(std::chrono::duration<double>(Clock::now() - aggregation_started).count());
  metrics_.RoundCompleted(record.finished_unix_s - started);
  LogInfo(kLog, "round=%d version=%d aggregated %d updates; checkpoint sha256=%s written in %.2f s",
          round, round, sites_reported, next_global->hex_digest.substr(0, 16), checkpoint_seconds);
  {
    v1::Event e;
    e.set_kind(v1::Event::ROUND_AGGREGATED);
    e.set_round(round);
    e.set_model_version(round);
    e.set_message(std::to_string(sites_reported) + " updates aggregated; model sha256 " +
                  next_global->hex_digest);
    (*e.mutable_metrics())["sites_reported"] = sites_reported;
    (*e.mutable_metrics())["aggregate_seconds"] = record.finished_unix_s - started;
    events_.Publish(std::move(e));
  }

  {
    std::lock_guard<std::mutex> g(mu_);
    global_ = next_global;
    AccountRound(round);
  }
  return EvaluateRound(round);
}

Status RoundEngine::EvaluateRound(int64_t round) {
  // Federated evaluation of the model of version `round` (global_).
  std::unique_lock<std::mutex> lock(mu_);
  if (round > 0) {
    // After a restart the sites have to rejoin first.
    WaitUntil(lock, Clock::now() + Seconds(config_.join_timeout_s),
              [&] { return ReadySites() >= config_.min_sites; });
    if (stop_) return OkStatus();
  }
  round_ = round;
  phase_ = Phase::kEvaluate;
  eval_expected_.clear();
  eval_reports_.clear();
  for (const auto& name : LiveSites()) eval_expected_.insert(name);
  lock.unlock();
  cv_.notify_all();
  lock.lock();
  deadline_wall_ = std::chrono::system_clock::now() + Seconds(config_.eval_deadline_s);
  WaitUntil(lock, Clock::now() + Seconds(config_.eval_deadline_s),
            [&] { return eval_reports_.size() == eval_expected_.size(); });
  if (stop_) return OkStatus();
  FinishEvaluation(round);
  phase_ = Phase::kWaiting;
  deadline_wall_ = {};
  return OkStatus();
}

void RoundEngine::FinishEvaluation(int64_t round) {
  const int k = static_cast<int>(spec_.num_classes());
  ConfusionMatrix total(k);
  double loss_sum = 0, auc_sum = 0;
  int64_t loss_n = 0, auc_n = 0;
  std::ostringstream sites_json;
  bool first = true;
  for (const auto& [site, r] : eval_reports_) {
    // Counted, not expanded into rows: a report may count up to 10^12 rows.
    ConfusionMatrix m(k);
    bool added = true;
    for (int t = 0; t < k && added; ++t) {
      for (int p = 0; p < k && added; ++p) added = m.AddCount(t, p, r.confusion(t * k + p)).ok();
    }
    if (!added || !total.Merge(m).ok()) continue;
    const auto& metrics = r.metrics();
    // One site's NaN or infinite loss (a diverged model) must not make the global loss NaN.
    if (metrics.count("loss") && std::isfinite(metrics.at("loss"))) {
      loss_sum += metrics.at("loss") * r.num_examples();
      loss_n += r.num_examples();
    }
    if (metrics.count("macro_auc") && std::isfinite(metrics.at("macro_auc"))) {
      auc_sum += metrics.at("macro_auc") * r.num_examples();
      auc_n += r.num_examples();
    }
    sites_json << (first ? "" : ", ") << JsonString(site) << ": {\"balanced_accuracy\": "
               << JsonNumber(m.BalancedAccuracy()) << ", \"accuracy\": " << JsonNumber(m.Accuracy())
               << ", \"num_examples\": " << r.num_examples() << "}";
    first = false;
  }
  const double macro_auc = auc_n > 0 ? auc_sum / static_cast<double>(auc_n) : NAN;
  const double loss = loss_n > 0 ? loss_sum / static_cast<double>(loss_n) : NAN;
  std::ostringstream json;
  json << "{\"round\": " << round << ", \"model_version\": " << round
       << ", \"num_examples\": " << total.total()
       << ", \"sites_reporting\": " << eval_reports_.size()
       << ", \"accuracy\": " << JsonNumber(total.Accuracy())
       << ", \"balanced_accuracy\": " << JsonNumber(total.BalancedAccuracy())
       << ", \"macro_auc\": " << JsonNumber(macro_auc) << ", \"loss\": " << JsonNumber(loss)
       << ", \"confusion_matrix\": [";
  for (int t = 0; t < k; ++t) {
    json << (t ? ", " : "") << "[";
    for (int p = 0; p < k; ++p) json << (p ? ", " : "") << total.at(t, p);
    json << "]";
  }
  json << "]";
  if (dp_spent_.count(round)) {
    json << ", \"dp_epsilon\": " << JsonNumber(dp_spent_[round].first)
         << ", \"dp_delta\": " << JsonNumber(config_.dp_delta)
         << ", \"dp_sample_rate\": " << JsonNumber(dp_spent_[round].second);
  }
  const std::string explanations = CombinedImportanceJson(
      eval_reports_, {spec_.class_names().begin(), spec_.class_names().end()});
  if (!explanations.empty()) json << ", \"explanations\": " << explanations;
  json << ", \"sites\": {" << sites_json.str() << "}}";
  (void)store_->RecordGlobalMetrics(round, json.str());
  {
    v1::Event e;
    e.set_kind(v1::Event::ROUND_EVALUATED);
    e.set_round(round);
    e.set_model_version(round);
    e.set_message(std::to_string(eval_reports_.size()) + " sites evaluated the global model");
    auto& m = *e.mutable_metrics();
    m["balanced_accuracy"] = total.BalancedAccuracy();
    m["accuracy"] = total.Accuracy();
    m["macro_auc"] = macro_auc;
    m["loss"] = loss;
    m["num_examples"] = static_cast<double>(total.total());
    events_.Publish(std::move(e));
  }
  LogInfo(kLog, "round=%d version=%d evaluation: %d sites, %d rows, accuracy %.3f, balanced "
          "accuracy %.3f, macro AUC %.3f",
          round, round, eval_reports_.size(), total.total(), total.Accuracy(),
          total.BalancedAccuracy(), macro_auc);
  std::printf("round %lld: balanced accuracy %.3f, accuracy %.3f, macro AUC %.3f (%zu sites, %lld rows)\n",
              static_cast<long long>(round), total.BalancedAccuracy(), total.Accuracy(), macro_auc,
              eval_reports_.size(), static_cast<long long>(total.total()));
  std::fflush(stdout);
}

Status RoundEngine::Run() {
  int64_t start;
  {
    std::lock_guard<std::mutex> lock(mu_);
    start = round_;
  }
  if (start > 0 && config_.dp_mode != "off") {
    // Replay the privacy accountant over the completed rounds (their sample rates are in
    // the recorded metrics; a round without one counts as q = 1, the worst case).
    auto metrics = store_->GlobalMetrics();
    std::map<int64_t, double> rates;
    if (metrics.ok()) {
      for (const auto& [r, json] : *metrics) {
        const auto at = json.find("\"dp_sample_rate\": ");
        if (at != std::string::npos) rates[r] = std::strtod(json.c_str() + at + 18, nullptr);
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (int64_t r = 1; r <= start; ++r) {
      dp_sample_rate_ = rates.count(r) && rates[r] > 0 && rates[r] <= 1 ? rates[r] : 1.0;
      AccountRound(r);
    }
  }
  if (start > 0) {
    LogInfo(kLog, "resuming after completed round %d", start);
    // A crash during the last round's evaluation left it unevaluated: evaluate it now, so
    // the history has every round.
    auto metrics = store_->GlobalMetrics();
    const bool evaluated = metrics.ok() && !metrics->empty() && metrics->back().first >= start;
    if (!evaluated) {
      LogInfo(kLog, "round=%d version=%d was not evaluated before the restart; evaluating it", start,
              start);
      DF_RETURN_IF_ERROR(EvaluateRound(start));
    }
  }
  for (int64_t round = start + 1; round <= config_.rounds;) {
    Status s = RunRound(round);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) break;
    }
    if (s.code() == absl::StatusCode::kDeadlineExceeded) return s;
    if (!s.ok()) {
      LogError(kLog, "round=%d failed: %s; retrying", round, s.message());
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    ++round;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (budget_exhausted_) break;
    }
  }
  bool stopped;
  int64_t last_version;
  {
    std::lock_guard<std::mutex> lock(mu_);
    phase_ = Phase::kDone;
    stopped = stop_;
    last_version = global_->version;
    if (!stopped) {
      events_.Publish(v1::Event::FEDERATION_DONE, round_, global_->version, "",
                      budget_exhausted_ ? "the privacy budget is spent after round " +
                                              std::to_string(global_->version)
                                        : "all " + std::to_string(config_.rounds) +
                                              " rounds complete");
    }
  }
  cv_.notify_all();
  events_.Close();
  if (stopped) {
    LogInfo(kLog, "federation stopped; completed rounds are checkpointed up to round %d",
            last_version);
  } else {
    LogInfo(kLog, "federation finished after round %d", config_.rounds);
  }
  return OkStatus();
}

void RoundEngine::Stop() { (void)Stop("operator", "signal"); }

void RoundEngine::AccountRound(int64_t round) {
  if (config_.dp_mode == "off") return;
  Status s = accountant_.Step(config_.dp_noise_multiplier, dp_sample_rate_);
  auto spent = s.ok() ? accountant_.Spent(config_.dp_delta) : StatusOr<dp::PrivacySpent>(s);
  if (!spent.ok()) {
    LogError(kLog, "round=%d privacy accountant: %s", round, spent.status().message());
    return;
  }
  dp_spent_[round] = {spent->epsilon, dp_sample_rate_};
  LogInfo(kLog, "round=%d privacy spent: epsilon %.4f at delta %g (noise multiplier %.3f, sample "
          "rate %.3f, %d rounds)", round, spent->epsilon, config_.dp_delta,
          config_.dp_noise_multiplier, dp_sample_rate_, accountant_.total_steps());
  if (config_.dp_epsilon_budget > 0 && spent->epsilon >= config_.dp_epsilon_budget) {
    budget_exhausted_ = true;
    LogWarning(kLog, "round=%d the privacy budget (dp.epsilon_budget = %g) is spent: epsilon %.4f; "
               "the federation ends after this round", round, config_.dp_epsilon_budget,
               spent->epsilon);
  }
}

void RoundEngine::Audit(const std::string& actor, const std::string& role,
                        const std::string& action, const std::string& site, int64_t round,
                        bool ok, const std::string& detail) {
  if (!audit_) return;
  audit::Entry e;
  e.actor = actor;
  e.role = role;
  e.action = action;
  e.site = site;
  if (round >= 0) e.round = round;
  e.outcome = ok ? audit::Outcome::kOk : audit::Outcome::kRefused;
  e.detail = detail;
  Status s = audit_->Record(e);
  if (!s.ok()) LogError(kLog, "audit log: %s", s.message());
}

v1::ControlResponse RoundEngine::Pause(const std::string& who, const std::string& reason) {
  v1::ControlResponse r;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || phase_ == Phase::kDone) {
      r.set_message("the federation is no longer running");
    } else if (paused_) {
      r.set_message("already paused");
    } else {
      paused_ = true;
      r.set_message(phase_ == Phase::kWaiting && round_ == global_->version
                        ? "paused: no new round will start until resumed"
                        : "pause requested: round " + std::to_string(round_) +
                              " finishes, then no new round starts until resumed");
      LogWarning(kLog, "pause requested by %s (%s)", who, reason);
      Audit(who, "admin", "pause", "", round_, true, reason);
      events_.Publish(v1::Event::PAUSE_REQUESTED, round_, global_->version, "",
                      who + ": " + (reason.empty() ? "no reason given" : reason));
    }
    r.set_state(StateLocked());
  }
  cv_.notify_all();
  return r;
}

v1::ControlResponse RoundEngine::Resume(const std::string& who, const std::string& reason) {
  v1::ControlResponse r;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!paused_) {
      r.set_message("not paused");
    } else {
      paused_ = false;
      r.set_message("resumed");
      LogWarning(kLog, "resumed by %s (%s)", who, reason);
      Audit(who, "admin", "resume", "", round_, true, reason);
      events_.Publish(v1::Event::RESUMED, round_, global_->version, "",
                      who + ": " + (reason.empty() ? "no reason given" : reason));
    }
    r.set_state(StateLocked());
  }
  cv_.notify_all();
  return r;
}

v1::ControlResponse RoundEngine::Stop(const std::string& who, const std::string& reason) {
  v1::ControlResponse r;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || phase_ == Phase::kDone) {
      r.set_message("the federation is no longer running");
    } else {
      stop_ = true;
      LogWarning(kLog, "stopped by %s (%s); completed rounds are kept", who, reason);
      Audit(who, "admin", "stop", "", round_, true, reason);
      events_.Publish(v1::Event::STOPPED, round_, global_->version, "",
                      who + ": " + (reason.empty() ? "no reason given" : reason));
      r.set_message("stopping: sites are told the federation is over; the last completed round "
                    "is " + std::to_string(global_->version));
    }
    r.set_state(StateLocked());
  }
  cv_.notify_all();
  return r;
}

v1::FederationStatus::State RoundEngine::StateLocked() const {
  if (stop_) return v1::FederationStatus::STOPPED;
  switch (phase_) {
    case Phase::kDone:
      return v1::FederationStatus::DONE;
    case Phase::kSecAggAdvertise:
    case Phase::kSecAggShare:
    case Phase::kTrain:
    case Phase::kSecAggUnmask:
      return v1::FederationStatus::TRAINING;
    case Phase::kAggregating:
      return v1::FederationStatus::AGGREGATING;
    case Phase::kEvaluate:
      return v1::FederationStatus::EVALUATING;
    case Phase::kWaiting:
      return idle_ ? v1::FederationStatus::PAUSED : v1::FederationStatus::WAITING_FOR_SITES;
  }
  return v1::FederationStatus::STATE_UNSPECIFIED;
}

bool RoundEngine::Alive(const Site& s) const {
  return s.last_seen >= Clock::now() - Seconds(std::max(120.0, 2 * config_.round_deadline_s));
}

v1::FederationStatus RoundEngine::Snapshot() {
  std::lock_guard<std::mutex> lock(mu_);
  v1::FederationStatus st;
  st.set_state(StateLocked());
  *st.mutable_spec() = spec_;
  st.set_round(round_);
  st.set_rounds_total(config_.rounds);
  st.set_completed_round(global_->version);
  st.set_model_version(global_->version);
  st.set_model_sha256_hex(global_->hex_digest);
  st.set_pause_requested(paused_);
  st.set_sites_known(static_cast<int32_t>(sites_.size()));
  if (phase_ == Phase::kEvaluate) {
    st.set_sites_selected(static_cast<int32_t>(eval_expected_.size()));
    st.set_sites_reported(static_cast<int32_t>(eval_reports_.size()));
  } else if (phase_ == Phase::kTrain || phase_ == Phase::kAggregating) {
    st.set_sites_selected(static_cast<int32_t>(selected_.size()));
    st.set_sites_reported(static_cast<int32_t>(reported_.size()));
  }
  if (deadline_wall_.time_since_epoch().count() != 0) {
    st.set_deadline_unix_ms(UnixMs(deadline_wall_));
  }
  st.set_strategy(config_.strategy.name);
  st.set_last_event_seq(events_.last_seq());
  return st;
}

std::vector<v1::SiteInfo> RoundEngine::Sites() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<v1::SiteInfo> out;
  const auto now = Clock::now();
  for (const auto& [name, s] : sites_) {
    v1::SiteInfo info;
    info.set_name(name);
    info.set_train_rows(s.train_rows);
    info.set_last_seen_unix_ms(UnixMs(s.last_seen_wall));
    info.set_rounds_contributed(s.rounds_contributed);
    info.set_last_round(s.last_round);
    std::string status;
    if ((phase_ == Phase::kTrain || phase_ == Phase::kAggregating) && selected_.count(name)) {
      status = reported_.count(name) ? "uploaded" : (now > deadline_ ? "late" : "selected");
    } else if (phase_ == Phase::kEvaluate && eval_expected_.count(name)) {
      status = eval_reports_.count(name) ? "evaluated" : "evaluating";
    } else if (!Alive(s)) {
      status = "disconnected";
    } else {
      status = s.dropped_last ? "dropped" : "idle";
    }
    info.set_status(status);
    out.push_back(std::move(info));
  }
  return out;
}

StatusOr<std::shared_ptr<const GlobalModel>> RoundEngine::ModelForDownload(int64_t version) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (version == -1 || version == global_->version) return global_;
    if (version < 0 || version > global_->version) {
      return NotFoundError("model version " + std::to_string(version) +
                           " does not exist; the latest is " + std::to_string(global_->version));
    }
    if (download_cache_ && download_cache_->version == version) return download_cache_;
  }
  if (!store_->HasCheckpoint(version)) {
    return NotFoundError("model version " + std::to_string(version) +
                         " is no longer kept (server.keep_checkpoints = " +
                         std::to_string(config_.keep_checkpoints) + ")");
  }
  DF_ASSIGN_OR_RETURN(ModelState state, store_->LoadGlobal(version));
  auto model = MakeGlobalModel(version, std::move(state));
  std::lock_guard<std::mutex> lock(mu_);
  download_cache_ = model;
  return model;
}

}  // namespace dermfed::coordinator
