#include "common/audit/audit_log.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"

namespace dermfed::audit {
namespace {

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/audit_log_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/audit.jsonl";
  }
  void TearDown() override {
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }

  std::vector<std::string> Lines() const {
    std::ifstream in(path_);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }
  void WriteLines(const std::vector<std::string>& lines, bool final_newline = true) const {
    std::ofstream out(path_, std::ios::trunc | std::ios::binary);
    for (size_t i = 0; i < lines.size(); ++i) {
      out << lines[i];
      if (i + 1 < lines.size() || final_newline) out << '\n';
    }
  }
  // Writes `count` entries through a fresh AuditLog and closes it.
  void RecordEntries(int count, int first_round = 1) {
    auto log = AuditLog::Open(path_);
    ASSERT_TRUE(log.ok()) << log.status();
    for (int i = 0; i < count; ++i) ASSERT_TRUE((*log)->Record(Upload(first_round + i)).ok());
  }
  static Entry Upload(int round) {
    Entry e;
    e.actor = "spiffe://dermfed/site/hospital-a";
    e.role = "site";
    e.action = "upload";
    e.site = "hospital-a";
    e.round = round;
    e.model_version = "v" + std::to_string(round);
    return e;
  }
  // The status Open and Verify give for the file as it is now; both must agree.
  Status OpenAndVerify() const {
    Status verify = AuditLog::Verify(path_);
    auto open = AuditLog::Open(path_);
    EXPECT_EQ(verify.code(), open.status().code()) << verify << " vs " << open.status();
    return verify;
  }

  std::string dir_;
  std::string path_;
};

nlohmann::json Parse(const std::string& line) { return nlohmann::json::parse(line); }

void ExpectNamesLine(const Status& status, int line) {
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_NE(status.message().find("line " + std::to_string(line) + ":"), std::string::npos)
      << "message should name line " << line << ": " << status.message();
}

TEST_F(AuditLogTest, RecordsOneChainedJsonLinePerEntry) {
  RecordEntries(3);
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 3u);
  const nlohmann::json first = Parse(lines[0]);
  EXPECT_EQ(first["seq"], 1);
  EXPECT_EQ(first["prev"], std::string(64, '0'));
  EXPECT_EQ(first["actor"], "spiffe://dermfed/site/hospital-a");
  EXPECT_EQ(first["role"], "site");
  EXPECT_EQ(first["action"], "upload");
  EXPECT_EQ(first["site"], "hospital-a");
  EXPECT_EQ(first["round"], 1);
  EXPECT_EQ(first["model_version"], "v1");
  EXPECT_EQ(first["outcome"], "ok");
  EXPECT_EQ(first["detail"], "");
  EXPECT_EQ(first["time"].get<std::string>().back(), 'Z') << "time is UTC";
  EXPECT_EQ(first["hash"].get<std::string>().size(), 64u);
  EXPECT_EQ(Parse(lines[2])["seq"], 3);
  EXPECT_TRUE(AuditLog::Verify(path_).ok());
}

TEST_F(AuditLogTest, ReopeningContinuesTheSequence) {
  RecordEntries(3);
  std::string head_before;
  {
    auto log = AuditLog::Open(path_);
    ASSERT_TRUE(log.ok()) << log.status();
    EXPECT_EQ((*log)->last_seq(), 3);
    head_before = (*log)->head();
    Entry pause;
    pause.actor = "coordinator";
    pause.role = "coordinator";
    pause.action = "pause";
    pause.outcome = Outcome::kOk;
    ASSERT_TRUE((*log)->Record(pause).ok());
    EXPECT_EQ((*log)->last_seq(), 4);
    EXPECT_NE((*log)->head(), head_before);
  }
  RecordEntries(1, 9);
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Parse(lines[i])["seq"], i + 1);
  EXPECT_TRUE(Parse(lines[3])["round"].is_null()) << "no round is written as null";
  EXPECT_TRUE(AuditLog::Verify(path_).ok());
}

TEST_F(AuditLogTest, EditedLineIsDetectedByLineNumber) {
  RecordEntries(5);
  std::vector<std::string> lines = Lines();
  const size_t at = lines[2].find("\"outcome\":\"ok\"");
  ASSERT_NE(at, std::string::npos);
  lines[2].replace(at, 14, "\"outcome\":\"no\"");
  WriteLines(lines);
  ExpectNamesLine(OpenAndVerify(), 3);
}

TEST_F(AuditLogTest, EditedLastLineIsDetected) {
  RecordEntries(3);
  std::vector<std::string> lines = Lines();
  const size_t at = lines[2].find("hospital-a");
  lines[2].replace(at, 10, "hospital-b");
  WriteLines(lines);
  ExpectNamesLine(OpenAndVerify(), 3);
}

TEST_F(AuditLogTest, RehashedEditIsCaughtByTheNextLinesPrev) {
  // Someone who recomputes the edited line's own hash still breaks the next line's prev.
  RecordEntries(4);
  std::vector<std::string> lines = Lines();
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(lines[1]);
  j["outcome"] = "refused";
  j.erase("hash");
  std::string body = j.dump();
  // Re-splice a correct self-hash computed the same way the log does.
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  ASSERT_EQ(EVP_Digest(body.data(), body.size(), digest, &len, EVP_sha256(), nullptr), 1);
  std::string hash;
  for (unsigned int i = 0; i < len; ++i) {
    static const char kDigits[] = "0123456789abcdef";
    hash += kDigits[digest[i] >> 4];
    hash += kDigits[digest[i] & 15];
  }
  lines[1] = body.substr(0, body.size() - 1) + ",\"hash\":\"" + hash + "\"}";
  WriteLines(lines);
  ExpectNamesLine(OpenAndVerify(), 3);
}

TEST_F(AuditLogTest, DeletedLineIsDetectedByLineNumber) {
  RecordEntries(5);
  std::vector<std::string> lines = Lines();
  lines.erase(lines.begin() + 1);  // line 2 goes; old line 3 is now line 2
  WriteLines(lines);
  Status status = OpenAndVerify();
  ExpectNamesLine(status, 2);
  EXPECT_NE(status.message().find("seq is 3, expected 2"), std::string::npos) << status;
}

TEST_F(AuditLogTest, TruncatedLastLineIsDetectedByLineNumber) {
  RecordEntries(4);
  std::vector<std::string> lines = Lines();
  lines[3] = lines[3].substr(0, lines[3].size() / 2);
  WriteLines(lines, /*final_newline=*/false);
  Status status = OpenAndVerify();
  ExpectNamesLine(status, 4);
  EXPECT_NE(status.message().find("truncated"), std::string::npos) << status;
}

// A disk that fills up half-way through an entry (here: a file-size limit that lets only part
// of the line through) must not leave a partial line behind: the write fails, the log stays a
// whole chain that a restarted coordinator can open, and once there is room again entries go on.
TEST_F(AuditLogTest, WriteCutOffMidLineLeavesAWholeChain) {
  RecordEntries(2);
  auto log = AuditLog::Open(path_);
  ASSERT_TRUE(log.ok()) << log.status();
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  struct rlimit old_limit {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  struct sigaction ignore {}, old_action {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGXFSZ, &ignore, &old_action), 0);  // EFBIG instead of a signal
  struct rlimit limit = old_limit;
  limit.rlim_cur = static_cast<rlim_t>(st.st_size) + 40;  // room for 40 bytes of the line
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  Status cut = (*log)->Record(Upload(3));
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
  ASSERT_EQ(sigaction(SIGXFSZ, &old_action, nullptr), 0);
  EXPECT_FALSE(cut.ok());
  EXPECT_NE(cut.message().find("write of seq 3"), std::string::npos) << cut;
  struct stat after {};
  ASSERT_EQ(stat(path_.c_str(), &after), 0);
  EXPECT_EQ(after.st_size, st.st_size) << "the partial line was not cut back";
  EXPECT_TRUE(AuditLog::Verify(path_).ok()) << AuditLog::Verify(path_);
  // The same log carries on, and so does a restarted one.
  ASSERT_TRUE((*log)->Record(Upload(3)).ok());
  EXPECT_EQ((*log)->last_seq(), 3);
  log->reset();
  RecordEntries(1, 4);
  EXPECT_TRUE(AuditLog::Verify(path_).ok()) << AuditLog::Verify(path_);
  EXPECT_EQ(Lines().size(), 4u);
}

TEST_F(AuditLogTest, LastLineMissingOnlyItsNewlineIsDetected) {
  RecordEntries(2);
  WriteLines(Lines(), /*final_newline=*/false);
  ExpectNamesLine(OpenAndVerify(), 2);
}

TEST_F(AuditLogTest, BrokenChainIsNotRestartedOrAppended) {
  RecordEntries(3);
  std::vector<std::string> lines = Lines();
  lines.erase(lines.begin());
  WriteLines(lines);
  struct stat before {};
  ASSERT_EQ(stat(path_.c_str(), &before), 0);
  EXPECT_FALSE(AuditLog::Open(path_).ok());
  struct stat after {};
  ASSERT_EQ(stat(path_.c_str(), &after), 0);
  EXPECT_EQ(after.st_size, before.st_size) << "a failed Open must not write";
}

TEST_F(AuditLogTest, ConcurrentRecordsFormOneValidChain) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  {
    auto log = AuditLog::Open(path_);
    ASSERT_TRUE(log.ok()) << log.status();
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&log, t] {
        for (int i = 0; i < kPerThread; ++i) {
          Entry e = Upload(i);
          e.site = "hospital-" + std::to_string(t);
          EXPECT_TRUE((*log)->Record(e).ok());
        }
      });
    }
    for (std::thread& th : threads) th.join();
    EXPECT_EQ((*log)->last_seq(), kThreads * kPerThread);
  }
  EXPECT_TRUE(AuditLog::Verify(path_).ok()) << AuditLog::Verify(path_);
  EXPECT_EQ(Lines().size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST_F(AuditLogTest, FileIsPrivateToItsOwner) {
  const mode_t old_umask = umask(0);  // even a permissive umask must not widen it
  auto log = AuditLog::Open(path_);
  umask(old_umask);
  ASSERT_TRUE(log.ok()) << log.status();
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(AuditLogTest, SecondOpenOfTheSameFileIsRefused) {
  auto first = AuditLog::Open(path_);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = AuditLog::Open(path_);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
  first->reset();
  EXPECT_TRUE(AuditLog::Open(path_).ok()) << "the lock goes with the first log";
}

TEST_F(AuditLogTest, SymlinkIsRefused) {
  const std::string target = dir_ + "/elsewhere";
  const std::string link = dir_ + "/link.jsonl";
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  EXPECT_FALSE(AuditLog::Open(link).ok());
  unlink(link.c_str());
  unlink(target.c_str());
}

TEST_F(AuditLogTest, NetworkStringsCannotBreakALine) {
  auto log = AuditLog::Open(path_);
  ASSERT_TRUE(log.ok());
  Entry e = Upload(1);
  e.site = "evil\"},{\"outcome\":\"ok\"\nseq 99\r\x1b[31m\u2028";
  e.detail = std::string("bad utf8 \xff\xfe end");
  e.outcome = Outcome::kRefused;
  e.action = "reject";
  ASSERT_TRUE((*log)->Record(e).ok());
  ASSERT_TRUE((*log)->Record(Upload(2)).ok());
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  for (char c : lines[0]) {
    ASSERT_TRUE(c >= 0x20 && c < 0x7f) << "lines are printable ASCII; got byte " << int(c);
  }
  const nlohmann::json j = Parse(lines[0]);
  EXPECT_EQ(j["site"], e.site) << "valid UTF-8 round-trips exactly";
  EXPECT_EQ(j["detail"], "bad utf8 \xEF\xBF\xBD\xEF\xBF\xBD end") << "invalid bytes become U+FFFD";
  EXPECT_EQ(j["outcome"], "refused");
  EXPECT_TRUE(AuditLog::Verify(path_).ok());
}

TEST_F(AuditLogTest, OversizedFieldsAreCut) {
  auto log = AuditLog::Open(path_);
  ASSERT_TRUE(log.ok());
  Entry e = Upload(1);
  e.detail = std::string(1 << 20, 'x');
  ASSERT_TRUE((*log)->Record(e).ok());
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_LT(lines[0].size(), AuditLog::kMaxDetailBytes + 2048);
  EXPECT_NE(Parse(lines[0])["detail"].get<std::string>().find("more bytes]"), std::string::npos);
}

TEST_F(AuditLogTest, EntriesNeedActorRoleAndAction) {
  auto log = AuditLog::Open(path_);
  ASSERT_TRUE(log.ok());
  Entry e = Upload(1);
  e.action.clear();
  EXPECT_EQ((*log)->Record(e).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*log)->last_seq(), 0);
  EXPECT_TRUE(Lines().empty());
}

TEST_F(AuditLogTest, VerifyOfAMissingFileIsNotFound) {
  EXPECT_EQ(AuditLog::Verify(dir_ + "/nope.jsonl").code(), absl::StatusCode::kNotFound);
}

TEST_F(AuditLogTest, EmptyFileIsAValidEmptyChain) {
  WriteLines({}, false);
  EXPECT_TRUE(AuditLog::Verify(path_).ok());
  auto log = AuditLog::Open(path_);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ((*log)->last_seq(), 0);
  EXPECT_EQ((*log)->head(), std::string(64, '0'));
}

}  // namespace
}  // namespace dermfed::audit
