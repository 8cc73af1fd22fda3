// The coordinator's append-only audit log: who did what to the federation, and whether it
// was allowed. One JSON object per line, appended with O_APPEND and fsync'd before Record
// returns, so an acknowledged event survives a crash.
//
// Each line is hash-chained:
//   {"seq":7,"time":"2025-05-01T12:00:00.000123Z","actor":"spiffe://dermfed/site/hospital-b",
//    "role":"site","action":"upload","site":"hospital-b","round":3,"model_version":"v12",
//    "outcome":"ok","detail":"","prev":"<hex SHA-256 of line 6>","hash":"<hex SHA-256>"}
// where `prev` is the SHA-256 of the previous line's bytes (64 zeros for line 1) and `hash`
// the SHA-256 of this line without its `,"hash":"..."` suffix. `seq` equals the line
// number. Editing a line breaks its hash, deleting or reordering lines breaks `seq` and
// `prev`, and a cut-off last line has no newline; Verify names the first bad line.
//
// What a hash chain cannot see: someone who rewrites the chain from the edit onwards, or
// who removes whole lines from the end. Publish head() (e.g. in the coordinator's status
// and checkpoints) to anchor it.
//
// Open() on an existing file verifies the whole chain and continues it; a broken chain
// makes Open fail (the operator must look; a new chain is never started silently). Only
// one AuditLog may hold a file at a time (flock), so two processes cannot interleave
// chains. The file is created with mode 0600 and opened with O_NOFOLLOW.
//
// Strings may come from the network (site names, error details): they are written with
// nlohmann-json, ASCII-only (\uXXXX escapes), invalid UTF-8 replaced by U+FFFD, and cut to
// kMaxFieldBytes (detail: kMaxDetailBytes), so no field can break a line or flood the log.
//
// Thread-safe: Record may be called from any thread.
#ifndef DERMFED_COMMON_AUDIT_AUDIT_LOG_H_
#define DERMFED_COMMON_AUDIT_AUDIT_LOG_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"

namespace dermfed::audit {

enum class Outcome { kOk, kRefused };

// "ok" or "refused".
absl::string_view OutcomeName(Outcome outcome);

struct Entry {
  // Certificate identity (e.g. a SPIFFE URI) of whoever acted, or "coordinator".
  std::string actor;
  // The actor's role: "site", "monitor", "admin", "coordinator", ...
  std::string role;
  // join, upload, reject, role_violation, pause, resume, stop, revoke_reload, ...
  std::string action;
  // The site concerned, if any.
  std::string site;
  // The round concerned, if any (written as null otherwise).
  std::optional<int64_t> round;
  std::string model_version;
  Outcome outcome = Outcome::kOk;
  std::string detail;
};

class AuditLog {
 public:
  static constexpr size_t kMaxFieldBytes = 1024;
  static constexpr size_t kMaxDetailBytes = 16 * 1024;

  // Opens (creating if absent) the log at `path`, verifies any existing chain and
  // continues it. Errors: a broken chain (DataLoss, naming the line), the file already
  // held by another AuditLog (FailedPrecondition), I/O failures (naming the path).
  static StatusOr<std::unique_ptr<AuditLog>> Open(const std::string& path);

  // Checks the whole chain of the log at `path` without modifying it. OK for an empty
  // file; NotFound if it does not exist; DataLoss naming the first bad line otherwise.
  static Status Verify(const std::string& path);

  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Appends `entry` with the next seq, the current UTC time and the chain fields, and
  // fsyncs. REQUIRES actor, role and action non-empty (else InvalidArgument). If a write
  // or fsync fails part-way the log refuses every later Record (the file may now end in a
  // partial line; reopening it will say so).
  Status Record(const Entry& entry) ABSL_LOCKS_EXCLUDED(mu_);

  // The seq of the last line (0 for an empty log).
  int64_t last_seq() const ABSL_LOCKS_EXCLUDED(mu_);
  // Hex SHA-256 of the last line (64 zeros for an empty log): the value to publish.
  std::string head() const ABSL_LOCKS_EXCLUDED(mu_);
  const std::string& path() const { return path_; }

 private:
  AuditLog(std::string path, int fd, int64_t last_seq, std::string head);

  const std::string path_;
  const int fd_;
  mutable absl::Mutex mu_;
  int64_t last_seq_ ABSL_GUARDED_BY(mu_);
  std::string head_ ABSL_GUARDED_BY(mu_);
  Status broken_ ABSL_GUARDED_BY(mu_);
};

}  // namespace dermfed::audit

#endif  // DERMFED_COMMON_AUDIT_AUDIT_LOG_H_
