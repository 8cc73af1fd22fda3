#include "coordinator/store.h"

#include <signal.h>
#include <sqlite3.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "common/log.h"
#include "common/model_state_file.h"

namespace dermfed::coordinator {
namespace {

namespace fs = std::filesystem;

// RAII prepared statement.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Status ok() const {
    return rc_ == SQLITE_OK ? OkStatus() : InternalError(std::string("sqlite: ") + sqlite3_errmsg(db_));
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Stmt& Bind(int i, double v) {
    sqlite3_bind_double(stmt_, i, v);
    return *this;
  }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(stmt_); }
  Status Run() {
    DF_RETURN_IF_ERROR(ok());
    const int rc = Step();
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
      return InternalError(std::string("sqlite: ") + sqlite3_errmsg(db_));
    }
    return OkStatus();
  }
  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }
  double Double(int col) { return sqlite3_column_double(stmt_, col); }
  std::string Text(int col) {
    const unsigned char* t = sqlite3_column_text(stmt_, col);
    return t ? reinterpret_cast<const char*>(t) : "";
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

// A checkpoint write is a temporary file NAME.tmp.PID renamed over NAME (SaveModelState); a
// coordinator killed mid-write leaves it behind, model-sized, and nothing else would ever
// remove it. Removes those whose writer is gone.
void RemoveInterruptedWrites(const fs::path& dir) {
  std::error_code ec;
  int removed = 0;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const auto at = name.rfind(".tmp.");
    if (at == std::string::npos) continue;
    char* end = nullptr;
    const long pid = std::strtol(name.c_str() + at + 5, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // still writing
    std::error_code rm;
    if (fs::remove(entry.path(), rm)) ++removed;
  }
  if (removed > 0) {
    LogWarning("coordinator", "removed %d temporary checkpoint file(s) left in %s by an interrupted "
               "write", removed, dir.string());
  }
}

RoundRecord ReadRound(Stmt& s) {
  RoundRecord r;
  r.round = s.Int(0);
  r.model_version = s.Int(1);
  r.digest = s.Text(2);
  r.sites_selected = static_cast<int>(s.Int(3));
  r.sites_reported = static_cast<int>(s.Int(4));
  r.started_unix_s = s.Double(5);
  r.finished_unix_s = s.Double(6);
  return r;
}

}  // namespace

StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& state_dir) {
  std::error_code ec;
  fs::create_directories(fs::path(state_dir) / "checkpoints", ec);
  if (ec) return InternalError(state_dir + ": cannot create state folder: " + ec.message());
  RemoveInterruptedWrites(fs::path(state_dir) / "checkpoints");
  const std::string path = (fs::path(state_dir) / "coordinator.db").string();
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return InternalError(path + ": cannot open database: " + msg);
  }
  std::unique_ptr<Store> store(new Store(state_dir, db));
  sqlite3_busy_timeout(db, 5000);
  DF_RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"));
  DF_RETURN_IF_ERROR(store->Exec(
      "CREATE TABLE IF NOT EXISTS rounds (round INTEGER PRIMARY KEY, model_version INTEGER NOT "
      "NULL, digest TEXT NOT NULL, sites_selected INTEGER, sites_reported INTEGER, started REAL, "
      "finished REAL);"
      "CREATE TABLE IF NOT EXISTS sites (name TEXT PRIMARY KEY, train_rows INTEGER, status TEXT, "
      "last_seen REAL);"
      "CREATE TABLE IF NOT EXISTS site_metrics (round INTEGER, site TEXT, kind TEXT, num_examples "
      "INTEGER, metrics TEXT, PRIMARY KEY (round, site, kind));"
      "CREATE TABLE IF NOT EXISTS global_metrics (round INTEGER PRIMARY KEY, metrics TEXT);"));
  return store;
}

Store::~Store() { sqlite3_close(db_); }

Status Store::Exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return InternalError(dir_ + "/coordinator.db: " + msg);
  }
  return OkStatus();
}

std::string Store::GlobalPath(int64_t round) const {
  char name[64];
  std::snprintf(name, sizeof(name), "global-%06lld.dfs", static_cast<long long>(round));
  return (fs::path(dir_) / "checkpoints" / name).string();
}

std::string Store::StrategyPath(int64_t round) const {
  char name[64];
  std::snprintf(name, sizeof(name), "strategy-%06lld.dfs", static_cast<long long>(round));
  return (fs::path(dir_) / "checkpoints" / name).string();
}

bool Store::HasCheckpoint(int64_t round) const {
  std::error_code ec;
  return fs::exists(GlobalPath(round), ec);
}

Status Store::CompleteRound(const RoundRecord& r, const ModelState& global,
                            const ModelState& strategy_state) {
  // Files first (each written atomically), the row last: the row is the commit point.
  DF_RETURN_IF_ERROR(WriteCheckpoint(r.round, global, strategy_state));
  return CommitRound(r);
}

Status Store::WriteCheckpoint(int64_t round, const ModelState& global,
                              const ModelState& strategy_state) {
  std::lock_guard<std::mutex> lock(mu_);
  DF_RETURN_IF_ERROR(SaveModelState(global, GlobalPath(round)));
  return SaveModelState(strategy_state, StrategyPath(round));
}

Status Store::CommitRound(const RoundRecord& r) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_, "INSERT OR REPLACE INTO rounds VALUES (?, ?, ?, ?, ?, ?, ?)");
  s.Bind(1, r.round).Bind(2, r.model_version).Bind(3, r.digest);
  s.Bind(4, static_cast<int64_t>(r.sites_selected)).Bind(5, static_cast<int64_t>(r.sites_reported));
  s.Bind(6, r.started_unix_s).Bind(7, r.finished_unix_s);
  Status st = s.Run();
  if (!st.ok()) return Annotate(st, "recording round " + std::to_string(r.round));
  // Keep the newest keep_ checkpoints (at least two: a restart needs the last one whole);
  // older ones are history the database already has.
  if (keep_ == 0) return OkStatus();
  const int64_t keep = std::max<int64_t>(2, keep_);
  for (int64_t old = r.round - keep; old >= 0 && old >= r.round - keep - 2; --old) {
    std::error_code ec;
    fs::remove(GlobalPath(old), ec);
    fs::remove(StrategyPath(old), ec);
  }
  return OkStatus();
}

StatusOr<std::optional<RoundRecord>> Store::LastCompleted() {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_, "SELECT * FROM rounds ORDER BY round DESC LIMIT 1");
  DF_RETURN_IF_ERROR(s.ok());
  if (s.Step() != SQLITE_ROW) return std::optional<RoundRecord>();
  return std::optional<RoundRecord>(ReadRound(s));
}

StatusOr<std::vector<RoundRecord>> Store::Rounds() {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_, "SELECT * FROM rounds ORDER BY round");
  DF_RETURN_IF_ERROR(s.ok());
  std::vector<RoundRecord> out;
  while (s.Step() == SQLITE_ROW) out.push_back(ReadRound(s));
  return out;
}

StatusOr<ModelState> Store::LoadGlobal(int64_t round) { return LoadModelState(GlobalPath(round)); }
StatusOr<ModelState> Store::LoadStrategyState(int64_t round) {
  return LoadModelState(StrategyPath(round));
}

Status Store::UpsertSite(const std::string& site, int64_t train_rows, const std::string& status) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_, "INSERT INTO sites VALUES (?, ?, ?, strftime('%s','now')) ON CONFLICT(name) DO "
              "UPDATE SET train_rows=excluded.train_rows, status=excluded.status, "
              "last_seen=excluded.last_seen");
  s.Bind(1, site).Bind(2, train_rows).Bind(3, status);
  return s.Run();
}

Status Store::RecordSiteMetrics(const SiteMetricsRecord& r) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_, "INSERT OR REPLACE INTO site_metrics VALUES (?, ?, ?, ?, ?)");
  s.Bind(1, r.round).Bind(2, r.site).Bind(3, r.kind).Bind(4, r.num_examples).Bind(5, r.metrics_json);
  return s.Run();
}

Status Store::RecordGlobalMetrics(int64_t round, const std::string& metrics_json) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_, "INSERT OR REPLACE INTO global_metrics VALUES (?, ?)");
  s.Bind(1, round).Bind(2, metrics_json);
  return s.Run();
}

StatusOr<std::vector<std::pair<int64_t, std::string>>> Store::GlobalMetrics() {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_, "SELECT round, metrics FROM global_metrics ORDER BY round");
  DF_RETURN_IF_ERROR(s.ok());
  std::vector<std::pair<int64_t, std::string>> out;
  while (s.Step() == SQLITE_ROW) out.emplace_back(s.Int(0), s.Text(1));
  return out;
}

}  // namespace dermfed::coordinator
