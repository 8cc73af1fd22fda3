// The coordinator's durable state: a SQLite database (sites, rounds, per-round and per-site
// metrics, model versions) and the global checkpoints next to it. A round counts as
// completed only once its checkpoint files are whole on disk AND its row is committed, in
// that order, so a crash at any point leaves either the previous round or the new one —
// never a row without its checkpoint. A restarted coordinator resumes from LastCompleted().
//
//   STATE_DIR/coordinator.db
//   STATE_DIR/checkpoints/global-<round>.dfs     the global model after <round>
//   STATE_DIR/checkpoints/strategy-<round>.dfs   the strategy's server state after <round>
//
// Thread-safe: every method takes the store's mutex.
#ifndef DERMFED_COORDINATOR_STORE_H_
#define DERMFED_COORDINATOR_STORE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/model_state.h"
#include "common/status.h"

struct sqlite3;

namespace dermfed::coordinator {

struct RoundRecord {
  int64_t round = 0;          // 0 = the initial model
  int64_t model_version = 0;  // equals round: version v is the model after round v
  std::string digest;         // SHA-256 of the global model state
  int sites_selected = 0;
  int sites_reported = 0;
  double started_unix_s = 0;
  double finished_unix_s = 0;
};

struct SiteMetricsRecord {
  int64_t round = 0;
  std::string site;
  std::string kind;  // "train" or "eval"
  int64_t num_examples = 0;
  std::string metrics_json;
};

class Store {
 public:
  // Also removes the temporary files of checkpoint writes a crash interrupted.
  static StatusOr<std::unique_ptr<Store>> Open(const std::string& state_dir);
  ~Store();

  // Writes the checkpoints, then commits the round's row. On failure the previous round's
  // files and row are untouched.
  Status CompleteRound(const RoundRecord& record, const ModelState& global,
                       const ModelState& strategy_state);
  // CompleteRound in its two steps, for a caller that stamps the round's end between them
  // (once its checkpoint is durable): the files of `round`, each written atomically and
  // fsync'ed, then the row, which is the commit point.
  Status WriteCheckpoint(int64_t round, const ModelState& global, const ModelState& strategy_state);
  Status CommitRound(const RoundRecord& record);
  // The last completed round, if any.
  StatusOr<std::optional<RoundRecord>> LastCompleted();
  StatusOr<std::vector<RoundRecord>> Rounds();
  // Reads and verifies the checkpoints of `round`.
  StatusOr<ModelState> LoadGlobal(int64_t round);
  StatusOr<ModelState> LoadStrategyState(int64_t round);

  Status UpsertSite(const std::string& site, int64_t train_rows, const std::string& status);
  Status RecordSiteMetrics(const SiteMetricsRecord& record);
  // Global (aggregated) evaluation metrics of a round, as JSON.
  Status RecordGlobalMetrics(int64_t round, const std::string& metrics_json);
  StatusOr<std::vector<std::pair<int64_t, std::string>>> GlobalMetrics();

  const std::string& state_dir() const { return dir_; }
  // Global checkpoints kept: the newest n (at least 2), or all when n is 0. Default 10.
  void set_keep_checkpoints(int n) { keep_ = n; }
  // Whether round's checkpoint is still on disk.
  bool HasCheckpoint(int64_t round) const;

 private:
  Store(std::string dir, sqlite3* db) : dir_(std::move(dir)), db_(db) {}
  Status Exec(const std::string& sql);
  std::string GlobalPath(int64_t round) const;
  std::string StrategyPath(int64_t round) const;

  std::mutex mu_;
  std::string dir_;
  sqlite3* db_;
  int keep_ = 10;
};

}  // namespace dermfed::coordinator

#endif  // DERMFED_COORDINATOR_STORE_H_
