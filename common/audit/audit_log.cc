#include "common/audit/audit_log.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace dermfed::audit {
namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kHexHashChars = 64;
// Every line ends with this, then the 64 hex digits of the line's own hash, then "\"}".
constexpr absl::string_view kHashPrefix = ",\"hash\":\"";
constexpr absl::string_view kHashSuffix = "\"}";
constexpr size_t kHashTrailerChars = kHashPrefix.size() + kHexHashChars + kHashSuffix.size();

const std::string& GenesisHash() {
  static const std::string* const kZeros = new std::string(kHexHashChars, '0');
  return *kZeros;
}

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) != 1) {
    return std::string();  // only on allocation failure; never equals a stored hash
  }
  static const char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * static_cast<size_t>(len));
  for (unsigned int i = 0; i < len; ++i) {
    hex += kDigits[digest[i] >> 4];
    hex += kDigits[digest[i] & 15];
  }
  return hex;
}

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string ErrnoMessage(int err) { return std::strerror(err); }

std::string NowUtc() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  gmtime_r(&ts.tv_sec, &utc);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &utc);
  return absl::StrFormat("%s.%06dZ", buf, static_cast<int>(ts.tv_nsec / 1000));
}

// At most `max` bytes of `s`; a cut is marked so a reader knows the field was longer. A cut
// inside a UTF-8 sequence is replaced by U+FFFD when written.
std::string Capped(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  return absl::StrCat(s.substr(0, max), "...[", s.size() - max, " more bytes]");
}

// Checks one line (without its '\n') at 1-based `line_no`, given the hash of the line
// before; on success returns this line's hash.
StatusOr<std::string> VerifyLine(const std::string& line, int64_t line_no,
                                 const std::string& prev_hash) {
  auto bad = [line_no](absl::string_view why) {
    return DataLossError(absl::StrCat("line ", line_no, ": ", why));
  };
  if (line.size() < kHashTrailerChars + 2 ||
      absl::string_view(line).substr(line.size() - kHashTrailerChars, kHashPrefix.size()) !=
          kHashPrefix ||
      absl::string_view(line).substr(line.size() - kHashSuffix.size()) != kHashSuffix) {
    return bad("does not end with its \"hash\" field (edited or cut off)");
  }
  const std::string stored_hash =
      line.substr(line.size() - kHexHashChars - kHashSuffix.size(), kHexHashChars);
  if (!IsLowerHex(stored_hash)) return bad("its \"hash\" field is not 64 hex digits");
  const std::string body = line.substr(0, line.size() - kHashTrailerChars) + "}";
  if (Sha256Hex(body) != stored_hash) {
    return bad("content does not match its hash (the line was edited)");
  }
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return bad("is not a JSON object");
  auto seq = j.find("seq");
  if (seq == j.end() || !seq->is_number_integer()) return bad("has no integer \"seq\"");
  if (seq->get<int64_t>() != line_no) {
    return bad(absl::StrCat("seq is ", seq->get<int64_t>(), ", expected ", line_no,
                            " (lines before it were deleted, inserted or reordered)"));
  }
  auto prev = j.find("prev");
  if (prev == j.end() || !prev->is_string()) return bad("has no string \"prev\"");
  if (prev->get<std::string>() != prev_hash) {
    return bad(line_no == 1 ? std::string("prev is not the genesis value (64 zeros)")
                            : absl::StrCat("prev does not match the SHA-256 of line ", line_no - 1,
                                           " (lines were removed or reordered)"));
  }
  for (const char* field :
       {"time", "actor", "role", "action", "site", "model_version", "outcome", "detail"}) {
    auto it = j.find(field);
    if (it == j.end() || !it->is_string()) {
      return bad(absl::StrCat("field \"", field, "\" is missing or not a string"));
    }
  }
  const std::string outcome = j["outcome"].get<std::string>();
  if (outcome != "ok" && outcome != "refused") {
    return bad(absl::StrCat("outcome \"", outcome, "\" is neither \"ok\" nor \"refused\""));
  }
  auto round = j.find("round");
  if (round == j.end() || !(round->is_null() || round->is_number_integer())) {
    return bad("field \"round\" is missing or neither an integer nor null");
  }
  return Sha256Hex(line);
}

struct ChainState {
  int64_t last_seq = 0;
  std::string head = GenesisHash();
};

StatusOr<ChainState> VerifyFile(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) return NotFoundError(absl::StrCat("audit log ", path, " does not exist"));
    return UnavailableError(absl::StrCat("audit log ", path, ": ", ErrnoMessage(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    return FailedPreconditionError(absl::StrCat("audit log ", path, " is not a regular file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return UnavailableError(absl::StrCat("audit log ", path, ": cannot open for reading"));
  ChainState state;
  std::string line;
  while (std::getline(in, line)) {
    const int64_t line_no = state.last_seq + 1;
    if (in.eof()) {  // characters were read but no '\n' followed them
      return DataLossError(
          absl::StrCat("audit log ", path, ": line ", line_no,
                       ": truncated (no final newline; the log was cut off mid-write or edited)"));
    }
    StatusOr<std::string> hash = VerifyLine(line, line_no, state.head);
    if (!hash.ok()) return Annotate(hash.status(), absl::StrCat("audit log ", path));
    state.head = *std::move(hash);
    state.last_seq = line_no;
  }
  if (in.bad()) {
    return UnavailableError(
        absl::StrCat("audit log ", path, ": read error after line ", state.last_seq));
  }
  return state;
}

Status FsyncParentDirectory(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    return UnavailableError(
        absl::StrCat("audit log: cannot open directory ", dir, ": ", ErrnoMessage(errno)));
  }
  const int rc = fsync(dfd);
  const int err = errno;
  close(dfd);
  if (rc != 0) {
    return UnavailableError(
        absl::StrCat("audit log: fsync of directory ", dir, ": ", ErrnoMessage(err)));
  }
  return OkStatus();
}

}  // namespace

absl::string_view OutcomeName(Outcome outcome) {
  return outcome == Outcome::kOk ? "ok" : "refused";
}

StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path) {
  constexpr int kFlags = O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW;
  bool created = true;
  int fd = open(path.c_str(), kFlags | O_CREAT | O_EXCL, 0600);
  if (fd < 0 && errno == EEXIST) {
    created = false;
    fd = open(path.c_str(), kFlags);
  }
  if (fd < 0) {
    const int err = errno;
    return UnavailableError(
        absl::StrCat("audit log ", path, ": cannot open: ",
                     err == ELOOP ? std::string("it is a symbolic link") : ErrnoMessage(err)));
  }
  auto fail = [fd](Status status) {
    close(fd);
    return status;
  };
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return fail(
        FailedPreconditionError(absl::StrCat("audit log ", path, " is not a regular file")));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    return fail(
        err == EWOULDBLOCK
            ? FailedPreconditionError(
                  absl::StrCat("audit log ", path, " is already open (another coordinator?)"))
            : UnavailableError(absl::StrCat("audit log ", path, ": flock: ", ErrnoMessage(err))));
  }
  if (created) {
    // The umask may have taken bits off; the log is for the coordinator's user only.
    if (fchmod(fd, 0600) != 0) {
      return fail(UnavailableError(
          absl::StrCat("audit log ", path, ": fchmod 0600: ", ErrnoMessage(errno))));
    }
    if (Status s = FsyncParentDirectory(path); !s.ok()) return fail(s);
  }
  StatusOr<ChainState> chain = VerifyFile(path);
  if (!chain.ok()) return fail(chain.status());
  return std::unique_ptr<AuditLog>(new AuditLog(path, fd, chain->last_seq, std::move(chain->head)));
}

Status AuditLog::Verify(const std::string& path) { return VerifyFile(path).status(); }

AuditLog::AuditLog(std::string path, int fd, int64_t last_seq, std::string head)
    : path_(std::move(path)), fd_(fd), last_seq_(last_seq), head_(std::move(head)) {}

AuditLog::~AuditLog() { close(fd_); }  // also releases the flock

int64_t AuditLog::last_seq() const {
  absl::MutexLock lock(&mu_);
  return last_seq_;
}

std::string AuditLog::head() const {
  absl::MutexLock lock(&mu_);
  return head_;
}

Status AuditLog::Record(const Entry& entry) {
  if (entry.actor.empty() || entry.role.empty() || entry.action.empty()) {
    return InvalidArgumentError(absl::StrCat(
        "audit entry needs an actor, a role and an action (got actor '", Capped(entry.actor, 64),
        "', role '", Capped(entry.role, 64), "', action '", Capped(entry.action, 64), "')"));
  }
  absl::MutexLock lock(&mu_);
  if (!broken_.ok()) return broken_;

  Json j;
  j["seq"] = last_seq_ + 1;
  j["time"] = NowUtc();
  j["actor"] = Capped(entry.actor, kMaxFieldBytes);
  j["role"] = Capped(entry.role, kMaxFieldBytes);
  j["action"] = Capped(entry.action, kMaxFieldBytes);
  j["site"] = Capped(entry.site, kMaxFieldBytes);
  j["round"] = entry.round.has_value() ? Json(*entry.round) : Json(nullptr);
  j["model_version"] = Capped(entry.model_version, kMaxFieldBytes);
  j["outcome"] = std::string(OutcomeName(entry.outcome));
  j["detail"] = Capped(entry.detail, kMaxDetailBytes);
  j["prev"] = head_;
  std::string body;
  try {
    body = j.dump(-1, ' ', /*ensure_ascii=*/true, Json::error_handler_t::replace);
  } catch (const std::exception& e) {
    return InternalError(absl::StrCat("audit log ", path_, ": encoding an entry: ", e.what()));
  }
  // body ends in '}': splice this line's own hash in as the last field.
  const std::string hash = Sha256Hex(body);
  std::string line = absl::StrCat(absl::string_view(body).substr(0, body.size() - 1), kHashPrefix,
                                  hash, kHashSuffix);
  const std::string line_hash = Sha256Hex(line);
  line += '\n';

  // Where this line starts: a write that fails half-way (a full disk) is cut back to here,
  // so the log on disk stays a whole chain and the coordinator can still restart on it.
  struct stat before {};
  if (fstat(fd_, &before) != 0) {
    return UnavailableError(
        absl::StrCat("audit log ", path_, ": fstat before seq ", last_seq_ + 1, ": ",
                     ErrnoMessage(errno)));
  }
  size_t written = 0;
  while (written < line.size()) {
    const ssize_t n = write(fd_, line.data() + written, line.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      Status error = UnavailableError(absl::StrCat("audit log ", path_, ": write of seq ",
                                                   last_seq_ + 1, ": ", ErrnoMessage(err)));
      if (written > 0 && ftruncate(fd_, before.st_size) != 0) {
        // A partial line stays on disk: the chain is cut, refuse everything after it.
        broken_ = UnavailableError(absl::StrCat(error.message(), "; cutting the partial line ",
                                                "back failed too: ", ErrnoMessage(errno)));
        return broken_;
      }
      return error;
    }
    written += static_cast<size_t>(n);
  }
  if (fsync(fd_) != 0) {
    // After a failed fsync the kernel may have dropped the dirty pages: nothing can be
    // assumed about what is on disk, so stop here.
    broken_ = UnavailableError(absl::StrCat("audit log ", path_, ": fsync after seq ",
                                            last_seq_ + 1, ": ", ErrnoMessage(errno)));
    return broken_;
  }
  last_seq_ += 1;
  head_ = line_hash;
  return OkStatus();
}

}  // namespace dermfed::audit
