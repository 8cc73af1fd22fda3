// RoundEngine: the federation's state machine. A driver thread (Run) moves through the
// rounds — wait for sites, select, collect updates, aggregate, checkpoint, evaluate — while
// gRPC handler threads call the site-facing methods. Everything that changes state checks
// that the message names the current round and model version, and refuses anything stale
// with a status saying why.
//
// Phases of one round r (global model version r-1 going in, r coming out):
//   kTrain     selected sites pull version r-1 and push deltas; each is folded on arrival
//   kEvaluate  sites pull version r and report confusion matrices; combined exactly
// Secure aggregation (issue 5) adds its key/share/unmask phases between these.
//
// Thread-safe: all state is guarded by mu_.
#ifndef DERMFED_COORDINATOR_ROUND_ENGINE_H_
#define DERMFED_COORDINATOR_ROUND_ENGINE_H_

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/audit/audit_log.h"
#include "common/dp/noise.h"
#include "common/dp/rdp_accountant.h"
#include "common/model_state.h"
#include "common/secagg/model_vector.h"
#include "common/secagg/server.h"
#include "common/secagg/upload_seal.h"
#include "common/crypto/x25519.h"
#include "common/status.h"
#include "common/update_codec.h"
#include "coordinator/coordinator_config.h"
#include "coordinator/event_log.h"
#include "coordinator/server_metrics.h"
#include "coordinator/store.h"
#include "coordinator/strategy.h"
#include "dermfed/v1/federation.pb.h"
#include "dermfed/v1/monitor.pb.h"

namespace dermfed::coordinator {

// An immutable global model version, shared by concurrent downloads without copying.
struct GlobalModel {
  int64_t version = 0;
  ModelState state;
  std::string sha256;  // raw 32 bytes of the buffer's digest
  std::string hex_digest;
  v1::Manifest manifest;
};

class RoundEngine {
 public:
  // `global` is the model after round `completed_round` (0 = the initial model).
  RoundEngine(CoordinatorConfig config, v1::FederationSpec spec, ModelState global,
              int64_t completed_round, std::unique_ptr<Strategy> strategy, Store* store);

  // ---- site-facing (gRPC handlers) ----
  StatusOr<v1::JoinResponse> Join(const std::string& site, int64_t train_rows);
  // Blocks until the site has something to do or `wait` passes (then kind WAIT).
  StatusOr<v1::Task> WaitForTask(const std::string& site, std::chrono::milliseconds wait);
  StatusOr<std::shared_ptr<const GlobalModel>> GetModel(const std::string& site, int64_t version);
  // Called with an update's header before its bytes are received: refuses stale, unknown,
  // duplicate or unselected uploads without reading them.
  // `masked`: the update is a secure-aggregation masked vector (then num_examples is 0).
  Status CheckUpdate(const std::string& site, int64_t round, int64_t version,
                     int64_t num_examples, bool masked = false);
  // An upload that passed CheckUpdate but was given up before it could be folded (its stream
  // broke or was cancelled, a chunk or its digest was wrong): logged, published and audited
  // as refused, like any other refusal, so that nothing is dropped silently. Returns `why`.
  Status RejectUpdate(const std::string& site, int64_t round, int64_t version, const Status& why);
  // Under secure aggregation: the words of this round's masked vector (0 when off).
  size_t MaskedUpdateWords();
  // Opens the seal on `site`'s masked upload for `round` (its header's site key).
  StatusOr<secagg::UploadOpener> UploadOpenerFor(const std::string& site, int64_t round,
                                                 int64_t version, const std::string& site_key);
  // The layout an update must have (the current global model).
  std::shared_ptr<const GlobalModel> CurrentModel();
  // The update compression the federation negotiated (its spec's compression).
  CodecOptions UpdateCompression() const;
  Status SubmitUpdate(const std::string& site, int64_t round, int64_t version,
                      int64_t num_examples, const ModelState& delta,
                      const std::map<std::string, double>& train_metrics, bool masked = false);
  // A site's advertisement, share bundle or unmask response (secure aggregation).
  Status SubmitSecAgg(const std::string& site, const v1::SecAggMessage& message);
  Status SubmitEvaluation(const v1::MetricsReport& report, const std::string& site);

  // ---- monitor-facing ----
  // A snapshot of the engine's state (the store adds rounds and metrics).
  v1::FederationStatus Snapshot();
  std::vector<v1::SiteInfo> Sites();
  // Global model `version` (-1 = the latest checkpointed one), from memory or the store.
  StatusOr<std::shared_ptr<const GlobalModel>> ModelForDownload(int64_t version);
  // Pause: the round in progress finishes; no new round starts until Resume.
  v1::ControlResponse Pause(const std::string& who, const std::string& reason);
  v1::ControlResponse Resume(const std::string& who, const std::string& reason);
  // Stop: ends the federation now. The round in progress is abandoned (completed rounds are
  // on disk); sites are told DONE. A restarted coordinator resumes after the last completed
  // round.
  v1::ControlResponse Stop(const std::string& who, const std::string& reason);
  // After Run returned: waits up to `grace` until every site seen lately (within two round
  // deadlines, at least 120 s) has asked for a task and been told DONE — a site busy
  // training, evaluating or uploading when the federation ended asks once it is done.
  // Returns the names of the sites that were not told.
  std::vector<std::string> AwaitSitesToldDone(std::chrono::duration<double> grace);
  EventLog& events() { return events_; }
  // Counters for /metrics (the services add their bytes).
  ServerMetrics& metrics() { return metrics_; }

  // ---- audit ----
  // The append-only audit log (joins, uploads, rejections, role violations, controls);
  // null = none. Set before Run.
  void set_audit(audit::AuditLog* log) { audit_ = log; }
  // Records one entry (round < 0: none); a failure to write is logged, never fatal.
  void Audit(const std::string& actor, const std::string& role, const std::string& action,
             const std::string& site, int64_t round, bool ok, const std::string& detail);

  // ---- driver ----
  // Runs the remaining rounds; returns when the federation is over or Stop() is called.
  Status Run();
  void Stop();

 private:
  enum class Phase {
    kWaiting,
    kSecAggAdvertise,  // secure aggregation: sites send their round keys
    kSecAggShare,      // ... and their encrypted key shares
    kTrain,            // (under secure aggregation the updates are masked)
    kSecAggUnmask,     // survivors send the shares that remove the masks
    kAggregating,
    kEvaluate,
    kDone
  };
  struct Site {
    std::string name;
    int64_t train_rows = 0;
    std::chrono::steady_clock::time_point last_seen;
    std::chrono::system_clock::time_point last_seen_wall;
    int64_t rounds_contributed = 0;
    int64_t last_round = 0;
    bool dropped_last = false;  // selected for the last round and dropped as a straggler
  };

  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::chrono::steady_clock::time_point t,
                 const std::function<bool()>& done);
  Status RunRound(int64_t round);
  Status EvaluateRound(int64_t round);
  // Sites that joined with their training rows counted (a site first joins with 0 to learn
  // the federation's schema, then again once its data is read); only these are selected.
  int ReadySites() const;
  std::vector<std::string> SelectSites(int64_t round);
  Status Touch(const std::string& site);
  // Sites seen within the last two round deadlines (at least 120 s): those expected to
  // evaluate a round and to hear that the federation is over. REQUIRES mu_ held.
  std::vector<std::string> LiveSites() const;
  void FinishEvaluation(int64_t round);
  v1::FederationStatus::State StateLocked() const;
  Status CheckUpdateLocked(const std::string& site, int64_t round, int64_t version,
                           int64_t num_examples, bool masked);
  // Logs, publishes and audits a refused update; returns `why`.
  Status RejectLocked(const std::string& site, int64_t round, int64_t version, const Status& why);
  // Secure aggregation around the train phase: keys and shares before (selected_ becomes
  // the sites that shared), unmasking after; returns the weighted mean delta.
  Status SecAggSetup(std::unique_lock<std::mutex>& lock, int64_t round);
  StatusOr<ModelState> SecAggUnmask(std::unique_lock<std::mutex>& lock, int64_t round);
  // Waits for every site in secagg_expected_ to answer the current phase, or the deadline.
  void SecAggWait(std::unique_lock<std::mutex>& lock);
  bool Alive(const Site& s) const;

  const CoordinatorConfig config_;
  const v1::FederationSpec spec_;
  std::unique_ptr<Strategy> strategy_;
  Store* store_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool paused_ = false;  // pause requested (takes effect between rounds)
  bool idle_ = false;    // the driver is between rounds, waiting for the pause to end
  Phase phase_ = Phase::kWaiting;
  int64_t round_ = 0;  // the round in progress (or last completed when waiting)
  std::shared_ptr<const GlobalModel> global_;
  std::map<std::string, Site> sites_;
  std::set<std::string> selected_;
  std::set<std::string> reported_;
  std::unique_ptr<Aggregator> aggregator_;
  std::chrono::steady_clock::time_point deadline_;
  // Evaluation of the current round.
  std::set<std::string> eval_expected_;
  std::map<std::string, v1::MetricsReport> eval_reports_;
  // Sites whose WaitForTask was answered DONE.
  std::set<std::string> told_done_;
  std::chrono::system_clock::time_point deadline_wall_{};
  EventLog events_;
  ServerMetrics metrics_;
  audit::AuditLog* audit_ = nullptr;
  // Secure aggregation of the current round.
  std::optional<secagg::Server> secagg_;
  std::optional<crypto::KeyPair> upload_key_;  // this round's key the uploads are sealed to
  secagg::VectorLayout secagg_layout_;
  secagg::QuantParams secagg_params_;
  std::map<std::string, double> secagg_config_;  // sent with every secagg task
  std::string secagg_request_;                    // the phase's request (serialized)
  std::set<std::string> secagg_expected_;
  std::set<std::string> secagg_answered_;
  // Differential privacy (dp.mode).
  dp::RdpAccountant accountant_;
  std::optional<dp::SecureRng> dp_rng_;
  double dp_sample_rate_ = 1;          // of the round in progress
  std::map<int64_t, std::pair<double, double>> dp_spent_;  // round -> (epsilon, sample rate)
  bool budget_exhausted_ = false;
  // DP bookkeeping after a round's aggregate: accountant step, report, budget.
  void AccountRound(int64_t round);
  // The last older version a researcher downloaded, so a resumed download does not reload it.
  std::shared_ptr<const GlobalModel> download_cache_;
};

// Builds a GlobalModel (digest, manifest) from a state.
std::shared_ptr<const GlobalModel> MakeGlobalModel(int64_t version, ModelState state);

}  // namespace dermfed::coordinator

#endif  // DERMFED_COORDINATOR_ROUND_ENGINE_H_
