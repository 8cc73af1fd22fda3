// The bad-input catalogue at the coordinator's wire boundary (issue 7). One real
// dermfed-coordinator process (tiny DualRefNet, FedAvg, mutual TLS with a throwaway PKI, its
// real 8 MiB gRPC receive limit) and three sites that join; each test sends one kind of bad
// input the way a broken or hostile site could — oversized messages, wrong dtypes and
// shapes, NaN, missing and extra tensors, path-like tensor names, unknown rounds and
// versions, replays, chunks out of order, wrong digests, bad evaluation reports — and checks
// two things: the answer is a gRPC status whose code and message name the problem, and
// nothing observable changed (state, round, model version and SHA-256, sites selected and
// reported, rounds in the store, rows in the store's site_metrics, the coordinator alive).
// Last, the coordinator is stopped and restarted on a truncated and on a corrupted
// checkpoint: it refuses to start, naming the file, and leaves the state folder as it was.
//
// The tests run in declaration order against the one coordinator (round 1 training, then
// its evaluation, then the restarts); do not shuffle them. Every answer is printed as a row
// of the catalogue table at the end (and written to $DERMFED_CATALOGUE_OUT if set).
//
// usage: wire_catalogue_test DERMFED_COORDINATOR CERTS_DIR [gtest flags]
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/federation/federation_client.h"
#include "client/federation/monitor_client.h"
#include "common/model_state_file.h"
#include "common/model_transfer.h"
#include "common/tls/tls.h"

namespace dermfed::catalogue {
namespace {

namespace fs = std::filesystem;

std::string g_coordinator_bin;
std::string g_certs_dir;

// ---- the catalogue table ----
struct Row {
  std::string input, boundary, answer;
};
std::vector<Row>& Rows() {
  static std::vector<Row> rows;
  return rows;
}
std::string Answer(const Status& s) {
  if (s.ok()) return "OK (accepted)";
  return std::string(absl::StatusCodeToString(s.code())) + ": " + std::string(s.message());
}
void Record(const std::string& input, const std::string& boundary, const std::string& answer) {
  Rows().push_back({input, boundary, answer});
}

// Success when `s` has `code` and a message containing every one of `parts`; records the row.
::testing::AssertionResult Refused(const std::string& input, const std::string& boundary,
                                   const Status& s, absl::StatusCode code,
                                   const std::vector<std::string>& parts) {
  Record(input, boundary, Answer(s));
  if (s.code() != code) {
    return ::testing::AssertionFailure()
           << input << ": want " << absl::StatusCodeToString(code) << ", got " << s;
  }
  for (const auto& p : parts) {
    if (s.message().find(p) == std::string::npos) {
      return ::testing::AssertionFailure()
             << input << ": the answer does not say '" << p << "': " << s;
    }
  }
  return ::testing::AssertionSuccess();
}

// ---- processes ----
std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

pid_t Spawn(const std::vector<std::string>& args, const std::string& out, const std::string& err) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o >= 0) dup2(o, 1);
    if (e >= 0) dup2(e, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// Waits up to `seconds` for `pid` to exit; its exit status, or -1 if it is still running.
int WaitExit(pid_t pid, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return -1;
}

// ---- what "no state changed" means ----
struct Observed {
  v1::FederationStatus::State state = v1::FederationStatus::STATE_UNSPECIFIED;
  int64_t round = 0, model_version = 0;
  std::string sha256;
  int sites_selected = 0, sites_reported = 0;
  size_t stored_rounds = 0;
  std::string last_stored_digest;
  int64_t site_metrics_rows = 0;
  std::string contributions;  // each site's rounds_contributed

  bool operator==(const Observed& o) const {
    return state == o.state && round == o.round && model_version == o.model_version &&
           sha256 == o.sha256 && sites_selected == o.sites_selected &&
           sites_reported == o.sites_reported && stored_rounds == o.stored_rounds &&
           last_stored_digest == o.last_stored_digest && site_metrics_rows == o.site_metrics_rows &&
           contributions == o.contributions;
  }
  std::string DebugString() const {
    std::ostringstream s;
    s << "state " << v1::FederationStatus::State_Name(state) << ", round " << round << ", version "
      << model_version << ", sha256 " << sha256.substr(0, 12) << ", selected " << sites_selected
      << ", reported " << sites_reported << ", stored rounds " << stored_rounds << " (last "
      << last_stored_digest.substr(0, 12) << "), site_metrics rows " << site_metrics_rows
      << ", contributions " << contributions;
    return s.str();
  }
};

int64_t CountRows(const std::string& db_path, const std::string& table) {
  sqlite3* db = nullptr;
  int64_t n = -1;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* st = nullptr;
    const std::string sql = "SELECT count(*) FROM " + table;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return n;
}

// ---- the fixture: one coordinator, three sites, a researcher ----
class WireCatalogue : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* tmp = getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/dermfed-catalogue-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    work_ = pattern;
    pki_ = work_ + "/pki";
    const std::string make_pki = "bash '" + g_certs_dir + "/make-test-pki.sh' '" + pki_ +
                                 "' --sites 3 >'" + work_ + "/pki.log' 2>&1";
    ASSERT_EQ(std::system(make_pki.c_str()), 0) << ReadFile(work_ + "/pki.log");
    StartCoordinator();
    ASSERT_GT(port_, 0) << "the coordinator did not listen: "
                        << ReadFile(work_ + "/coordinator.log");
    for (int i = 1; i <= 3; ++i) {
      const std::string name = "site-" + std::to_string(i);
      auto channel = Channel("site/" + name);
      ASSERT_NE(channel, nullptr);
      channels_.push_back(channel);
      sites_.push_back(std::make_unique<client::FederationClient>(channel, name));
      auto joined = sites_.back()->Join(40);
      ASSERT_TRUE(joined.ok()) << joined.status();
      spec_ = joined->spec();
    }
    auto monitor = Channel("researcher/researcher-1");
    ASSERT_NE(monitor, nullptr);
    monitor_ = std::make_unique<client::MonitorClient>(monitor);
    ASSERT_TRUE(WaitForState(v1::FederationStatus::TRAINING, 1));
    auto global = sites_[0]->PullModel(0, 1ull << 30);
    ASSERT_TRUE(global.ok()) << global.status();
    global_ = std::make_unique<ModelState>(std::move(global).value());
  }

  static void TearDownTestSuite() {
    sites_.clear();
    channels_.clear();
    monitor_.reset();
    global_.reset();
    if (coordinator_ > 0) {
      kill(coordinator_, SIGKILL);
      WaitExit(coordinator_, 10);
    }
    if (!::testing::UnitTest::GetInstance()->Passed() || getenv("DERMFED_TEST_KEEP")) {
      std::printf("----- coordinator log (last 4000 bytes)\n%s\n",
                  ReadFile(work_ + "/coordinator.log")
                      .substr(std::max<long>(
                          0, static_cast<long>(ReadFile(work_ + "/coordinator.log").size()) - 4000))
                      .c_str());
    }
    if (getenv("DERMFED_TEST_KEEP")) {
      std::printf("kept %s\n", work_.c_str());
    } else {
      std::error_code ec;
      fs::remove_all(work_, ec);
    }
  }

  static std::vector<std::string> CoordinatorArgs() {
    return {g_coordinator_bin,
            "--server.listen=127.0.0.1:0",
            "--server.port_file=" + work_ + "/port",
            "--server.state_dir=" + work_ + "/state",
            "--server.threads=1",
            "--federation.min_sites=3",
            "--federation.rounds=2",
            "--federation.round_deadline_s=600",
            "--federation.eval_deadline_s=600",
            // The stand-in sites never ask for a task after a stop: do not wait for them.
            "--server.stop_grace_s=1",
            "--model.backbone=tiny",
            "--tls.ca=" + pki_ + "/ca/ca.crt",
            "--tls.cert=" + pki_ + "/coordinator/coordinator.crt",
            "--tls.key=" + pki_ + "/coordinator/coordinator.key",
            "--tls.crl=" + pki_ + "/crl/crl.pem"};
  }

  static void StartCoordinator() {
    fs::remove(work_ + "/port");
    coordinator_ = Spawn(CoordinatorArgs(), work_ + "/coordinator.out", work_ + "/coordinator.log");
    for (int i = 0; i < 1200 && port_ == 0; ++i) {
      const std::string p = ReadFile(work_ + "/port");
      if (!p.empty())
        port_ = std::atoi(p.c_str());
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  // A channel with the certificate PKI/<who>.crt.
  static std::shared_ptr<grpc::Channel> Channel(const std::string& who) {
    tls::TlsFiles files;
    files.ca = pki_ + "/ca/ca.crt";
    files.cert = pki_ + "/" + who + ".crt";
    files.key = pki_ + "/" + who + ".key";
    auto creds = tls::ChannelCredentials(files);
    EXPECT_TRUE(creds.ok()) << creds.status();
    if (!creds.ok()) return nullptr;
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port_), *creds, args);
  }

  static bool WaitForState(v1::FederationStatus::State state, int64_t round) {
    for (int i = 0; i < 600; ++i) {
      auto st = monitor_->GetStatus();
      if (st.ok() && st->state() == state && st->round() == round) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  static Observed Observe() {
    Observed o;
    auto st = monitor_->GetStatus();
    EXPECT_TRUE(st.ok()) << "the coordinator does not answer (did it crash?): " << st.status();
    if (st.ok()) {
      o.state = st->state();
      o.round = st->round();
      o.model_version = st->model_version();
      o.sha256 = st->model_sha256_hex();
      o.sites_selected = st->sites_selected();
      o.sites_reported = st->sites_reported();
    }
    auto rounds = monitor_->Rounds();
    EXPECT_TRUE(rounds.ok()) << rounds.status();
    if (rounds.ok()) {
      o.stored_rounds = rounds->size();
      if (!rounds->empty()) o.last_stored_digest = rounds->back().model_sha256_hex();
    }
    auto sites = monitor_->Sites();
    if (sites.ok()) {
      for (const auto& s : *sites) {
        o.contributions += s.name() + "=" + std::to_string(s.rounds_contributed()) + " ";
      }
    }
    o.site_metrics_rows = CountRows(work_ + "/state/coordinator.db", "site_metrics");
    return o;
  }

  // Runs `send` and checks that nothing observable changed.
  template <typename F>
  static void ExpectNoChange(const std::string& what, F send) {
    const Observed before = Observe();
    send();
    const Observed after = Observe();
    EXPECT_EQ(before, after) << what << " changed the coordinator's state:\n  before: "
                             << before.DebugString() << "\n  after:  " << after.DebugString();
  }

  // A state with `specs`' layout, all zeros.
  static ModelState Zeros(std::vector<TensorSpec> specs) {
    auto s = ModelState::Create(std::move(specs));
    EXPECT_TRUE(s.ok()) << s.status();
    return std::move(s).value();
  }
  static std::vector<TensorSpec> Layout() { return global_->manifest(); }
  // The index of the first float32 tensor with at least two dimensions of different sizes.
  static size_t MatrixTensor() {
    const auto& m = global_->manifest();
    for (size_t i = 0; i < m.size(); ++i) {
      if (m[i].dtype == DType::kFloat32 && m[i].shape.size() >= 2 &&
          m[i].shape[0] != m[i].shape[1]) {
        return i;
      }
    }
    return 0;
  }

  // Sends `messages` as one PushUpdate stream from site `i` and returns the answer.
  static Status SendRaw(size_t i, const std::vector<v1::ModelChunk>& messages) {
    auto stub = v1::SiteService::NewStub(channels_[i]);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::PushAck ack;
    auto writer = stub->PushUpdate(&ctx, &ack);
    for (const auto& m : messages) {
      if (!writer->Write(m)) break;  // the server already answered
    }
    writer->WritesDone();
    return client::FromGrpc(writer->Finish(), "push");
  }
  // A header for `state` as site `i` would send it for round 1, version 0.
  static v1::ModelChunk Header(size_t i, const ModelState& state, int64_t round = 1,
                               int64_t version = 0) {
    v1::ModelChunk c;
    v1::ModelHeader* h = c.mutable_header();
    h->set_round(round);
    h->set_model_version(version);
    h->set_site_name("site-" + std::to_string(i + 1));
    h->set_num_examples(40);
    *h->mutable_manifest() = ManifestToProto(state);
    const auto digest = BufferDigest(state);
    h->set_sha256(reinterpret_cast<const char*>(digest.data()), digest.size());
    return c;
  }
  static v1::ModelChunk Data(const ModelState& state, uint64_t offset, uint64_t n) {
    v1::ModelChunk c;
    c.set_offset(offset);
    c.set_data(reinterpret_cast<const char*>(state.data()) + offset, n);
    return c;
  }

  static std::string work_, pki_;
  static int port_;
  static pid_t coordinator_;
  static std::vector<std::shared_ptr<grpc::Channel>> channels_;
  static std::vector<std::unique_ptr<client::FederationClient>> sites_;
  static std::unique_ptr<client::MonitorClient> monitor_;
  static std::unique_ptr<ModelState> global_;
  static v1::FederationSpec spec_;
};

std::string WireCatalogue::work_, WireCatalogue::pki_;
int WireCatalogue::port_ = 0;
pid_t WireCatalogue::coordinator_ = 0;
std::vector<std::shared_ptr<grpc::Channel>> WireCatalogue::channels_;
std::vector<std::unique_ptr<client::FederationClient>> WireCatalogue::sites_;
std::unique_ptr<client::MonitorClient> WireCatalogue::monitor_;
std::unique_ptr<ModelState> WireCatalogue::global_;
v1::FederationSpec WireCatalogue::spec_;

constexpr char kPush[] = "PushUpdate (site -> coordinator)";
constexpr char kPull[] = "PullModel (site -> coordinator)";
constexpr char kReport[] = "ReportMetrics (site -> coordinator)";

// ---------------------------------------------------------------- round 1, training phase

TEST_F(WireCatalogue, MessageOverTheReceiveLimitIsRefusedByGrpc) {
  ModelState update = Zeros(Layout());
  ExpectNoChange("a 9 MiB message", [&] {
    v1::ModelChunk big;
    big.set_offset(0);
    big.set_data(std::string(9u << 20, '\0'));
    Status s = SendRaw(0, {Header(0, update), big});
    EXPECT_TRUE(Refused("one 9 MiB chunk message (limit 8 MiB)", kPush, s,
                        absl::StatusCode::kResourceExhausted, {"larger than max"}));
  });
}

TEST_F(WireCatalogue, ManifestLargerThanTheModelIsRefusedBeforeAllocating) {
  ExpectNoChange("a manifest claiming 1 TiB", [&] {
    ModelState update = Zeros(Layout());
    // The right tensors in a buffer said to be 1 TiB long.
    v1::ModelChunk h = Header(0, update);
    h.mutable_header()->mutable_manifest()->set_buffer_bytes(1ull << 40);
    Status s = SendRaw(0, {h});
    EXPECT_TRUE(Refused("manifest with buffer_bytes = 1 TiB", kPush, s,
                        absl::StatusCode::kInvalidArgument,
                        {"site 'site-1'", "round 1", "1099511627776 bytes exceeds the limit"}));
  });
}

TEST_F(WireCatalogue, WrongDtypeIsRefusedNamingTheTensor) {
  std::vector<TensorSpec> specs = Layout();
  const size_t i = MatrixTensor();
  specs[i].dtype = DType::kFloat64;
  ExpectNoChange("a float64 tensor", [&] {
    Status s = sites_[0]->PushUpdate(1, 0, 40, Zeros(specs), {});
    EXPECT_TRUE(Refused(
        "tensor '" + specs[i].name + "' sent as float64", kPush, s,
        absl::StatusCode::kInvalidArgument,
        {"site 'site-1'", "tensor '" + specs[i].name + "' is float64", "expected float32"}));
  });
}

TEST_F(WireCatalogue, WrongShapeIsRefusedNamingTheTensor) {
  std::vector<TensorSpec> specs = Layout();
  const size_t i = MatrixTensor();
  std::swap(specs[i].shape[0], specs[i].shape[1]);  // same byte count, other shape
  ExpectNoChange("a transposed tensor", [&] {
    Status s = sites_[0]->PushUpdate(1, 0, 40, Zeros(specs), {});
    EXPECT_TRUE(Refused("tensor '" + specs[i].name + "' with its first two dimensions swapped",
                        kPush, s, absl::StatusCode::kInvalidArgument,
                        {"tensor '" + specs[i].name + "' is float32 [", "expected float32 ["}));
  });
}

TEST_F(WireCatalogue, NaNAndInfinityAreRefusedNamingTensorAndElement) {
  const size_t i = MatrixTensor();
  const std::string name = Layout()[i].name;
  for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
    ModelState update = Zeros(Layout());
    reinterpret_cast<float*>(update.TensorData(i))[3] = bad;
    ExpectNoChange("a non-finite value", [&] {
      Status s = sites_[0]->PushUpdate(1, 0, 40, update, {});
      const std::string what = std::isnan(bad) ? "NaN" : (bad > 0 ? "+Inf" : "-Inf");
      EXPECT_TRUE(Refused(
          what + " at element 3 of '" + name + "'", kPush, s, absl::StatusCode::kInvalidArgument,
          {"site 'site-1'", "round 1", "tensor '" + name + "'", "non-finite", "element 3"}));
    });
  }
}

TEST_F(WireCatalogue, MissingTensorIsRefused) {
  std::vector<TensorSpec> specs = Layout();
  const std::string dropped = specs.back().name;
  specs.pop_back();
  ExpectNoChange("a missing tensor", [&] {
    Status s = sites_[0]->PushUpdate(1, 0, 40, Zeros(specs), {});
    EXPECT_TRUE(Refused("update without its last tensor '" + dropped + "'", kPush, s,
                        absl::StatusCode::kInvalidArgument,
                        {"site 'site-1'", std::to_string(specs.size()) + " tensors, expected " +
                                              std::to_string(specs.size() + 1) + ": '" + dropped +
                                              "' is missing"}));
  });
  specs = Layout();
  const std::string middle = specs[1].name;
  specs.erase(specs.begin() + 1);
  ExpectNoChange("a missing tensor", [&] {
    Status s = sites_[0]->PushUpdate(1, 0, 40, Zeros(specs), {});
    EXPECT_TRUE(Refused("update without tensor '" + middle + "' (the second of " +
                            std::to_string(specs.size() + 1) + ")",
                        kPush, s, absl::StatusCode::kInvalidArgument,
                        {"'" + middle + "' is missing"}));
  });
}

TEST_F(WireCatalogue, ExtraTensorIsRefused) {
  std::vector<TensorSpec> specs = Layout();
  TensorSpec extra;
  extra.name = "extra.weight";
  extra.shape = {4};
  specs.push_back(extra);
  ExpectNoChange("an extra tensor", [&] {
    Status s = sites_[0]->PushUpdate(1, 0, 40, Zeros(specs), {});
    EXPECT_TRUE(Refused(
        "update with an extra tensor 'extra.weight'", kPush, s, absl::StatusCode::kInvalidArgument,
        {std::to_string(specs.size()) + " tensors, expected " + std::to_string(specs.size() - 1) +
         ": 'extra.weight' is not in the model"}));
  });
}

TEST_F(WireCatalogue, PathLikeTensorNamesAreRefusedAndNeverBecomeFiles) {
  const std::string target = work_ + "/escaped-" + std::to_string(getpid());
  for (const std::string& name :
       {std::string("../../../../../../../..") + target, target, std::string("a/../../b")}) {
    std::vector<TensorSpec> specs = Layout();
    specs[0].name = name;
    ExpectNoChange("a path-like tensor name", [&] {
      Status s = sites_[0]->PushUpdate(1, 0, 40, Zeros(specs), {});
      EXPECT_TRUE(Refused("tensor name '" + name + "'", kPush, s,
                          absl::StatusCode::kInvalidArgument,
                          {"tensor 0 is '" + name + "', expected '" + Layout()[0].name + "'"}));
    });
    EXPECT_FALSE(fs::exists(target)) << "a tensor name became a file: " << target;
  }
}

TEST_F(WireCatalogue, MalformedManifestsAreRefusedNamingTheEntry) {
  ModelState update = Zeros(Layout());
  struct Case {
    std::string input;
    std::function<void(v1::Manifest*)> edit;
    std::vector<std::string> says;
  };
  const std::string t0 = Layout()[0].name, t1 = Layout()[1].name;
  std::vector<Case> cases = {
      {"manifest entry with a negative dimension",
       [](v1::Manifest* m) { m->mutable_tensors(0)->set_shape(0, -3); },
       {"'" + t0 + "' has negative dimension"}},
      {"manifest entry with unknown dtype 99",
       [](v1::Manifest* m) { m->mutable_tensors(0)->set_dtype(static_cast<v1::DType>(99)); },
       {"'" + t0 + "' has unknown dtype 99"}},
      {"manifest entries overlapping (tensor 1 at tensor 0's offset)",
       [](v1::Manifest* m) { m->mutable_tensors(1)->set_offset(m->tensors(0).offset()); },
       {"'" + t1 + "'", "overlaps the previous tensor"}},
      {"manifest entry with nbytes not matching dtype x shape",
       [](v1::Manifest* m) { m->mutable_tensors(0)->set_nbytes(m->tensors(0).nbytes() + 4); },
       {"'" + t0 + "': nbytes is"}},
      {"manifest naming the same tensor twice",
       [t0](v1::Manifest* m) { m->mutable_tensors(1)->set_name(t0); },
       {"appears twice"}},
      {"manifest with an empty tensor name",
       [](v1::Manifest* m) { m->mutable_tensors(0)->set_name(""); },
       {"has an empty name"}},
      {"manifest whose buffer_bytes disagrees with its tensors",
       [](v1::Manifest* m) { m->set_buffer_bytes(m->buffer_bytes() - 64); },
       {"lie outside the"}},
  };
  for (const auto& c : cases) {
    ExpectNoChange(c.input, [&] {
      v1::ModelChunk h = Header(0, update);
      c.edit(h.mutable_header()->mutable_manifest());
      Status s = SendRaw(0, {h, Data(update, 0, update.size_bytes())});
      EXPECT_TRUE(Refused(c.input, kPush, s, absl::StatusCode::kInvalidArgument, c.says));
    });
  }
}

TEST_F(WireCatalogue, UnknownStaleAndFutureRoundsAreRefusedNamingBoth) {
  for (int64_t round : {0, 2, 7, -1}) {
    ExpectNoChange("round " + std::to_string(round), [&] {
      Status s = sites_[0]->PushUpdate(round, 0, 40, Zeros(Layout()), {});
      EXPECT_TRUE(Refused("update for round " + std::to_string(round) + " while round 1 trains",
                          kPush, s, absl::StatusCode::kFailedPrecondition,
                          {"site 'site-1'", "update for round " + std::to_string(round),
                           "stale or early", "round 1 is collecting updates"}));
    });
  }
}

TEST_F(WireCatalogue, WrongModelVersionIsRefusedNamingBoth) {
  ExpectNoChange("version 5", [&] {
    Status s = sites_[0]->PushUpdate(1, 5, 40, Zeros(Layout()), {});
    EXPECT_TRUE(Refused("update trained from model version 5 (round 1 uses 0)", kPush, s,
                        absl::StatusCode::kFailedPrecondition,
                        {"model version 5", "the round uses version 0"}));
  });
}

TEST_F(WireCatalogue, NonPositiveNumExamplesIsRefused) {
  for (int64_t n : {0, -40}) {
    ExpectNoChange("num_examples", [&] {
      Status s = sites_[0]->PushUpdate(1, 0, n, Zeros(Layout()), {});
      EXPECT_TRUE(Refused("update with num_examples " + std::to_string(n), kPush, s,
                          absl::StatusCode::kInvalidArgument,
                          {"has num_examples " + std::to_string(n)}));
    });
  }
}

TEST_F(WireCatalogue, ChunkStreamsOutOfOrderOverlappingBeyondOrShortAreRefused) {
  ModelState update = Zeros(Layout());
  const uint64_t total = update.size_bytes();
  const uint64_t third = total / 3 / 64 * 64;
  ASSERT_GT(third, 0u);
  struct Case {
    std::string input;
    std::vector<v1::ModelChunk> chunks;
    absl::StatusCode code;
    std::vector<std::string> says;
  };
  std::vector<Case> cases = {
      {"chunks out of order (second third first)",
       {Data(update, third, third), Data(update, 0, third)},
       absl::StatusCode::kInvalidArgument,
       {"chunk at byte " + std::to_string(third) + ", expected byte 0"}},
      {"overlapping chunks (second starts inside the first)",
       {Data(update, 0, third), Data(update, third / 2, third)},
       absl::StatusCode::kInvalidArgument,
       {"chunk at byte " + std::to_string(third / 2) + ", expected byte " + std::to_string(third)}},
      {"chunk beyond the model's size",
       {Data(update, 0, total), Data(update, 0, 16)},
       absl::StatusCode::kInvalidArgument,
       {"chunk at byte 0, expected byte " + std::to_string(total)}},
      {"chunk that overruns the model's end",
       {Data(update, 0, third),
        [&] {
          v1::ModelChunk c;
          c.set_offset(third);
          c.set_data(std::string(total, '\0'));
          return c;
        }()},
       absl::StatusCode::kInvalidArgument,
       {"overruns the " + std::to_string(total) + "-byte model"}},
      {"stream that ends early (one third of the bytes)",
       {Data(update, 0, third)},
       absl::StatusCode::kDataLoss,
       {"stream ended after " + std::to_string(third) + " of " + std::to_string(total) + " bytes"}},
  };
  for (const auto& c : cases) {
    ExpectNoChange(c.input, [&] {
      std::vector<v1::ModelChunk> messages = {Header(0, update)};
      messages.insert(messages.end(), c.chunks.begin(), c.chunks.end());
      Status s = SendRaw(0, messages);
      EXPECT_TRUE(Refused(c.input, kPush, s, c.code, c.says));
    });
  }
}

TEST_F(WireCatalogue, DigestMismatchAndMissingDigestAreRefused) {
  ModelState update = Zeros(Layout());
  ExpectNoChange("a flipped byte", [&] {
    v1::ModelChunk h = Header(0, update);
    update.data()[update.size_bytes() / 2] ^= 1;  // flipped after the digest was taken
    Status s = SendRaw(0, {h, Data(update, 0, update.size_bytes())});
    update.data()[update.size_bytes() / 2] ^= 1;
    EXPECT_TRUE(Refused("one byte flipped after the digest was taken", kPush, s,
                        absl::StatusCode::kDataLoss,
                        {"site 'site-1'", "round 1", "SHA-256 mismatch"}));
  });
  ExpectNoChange("no digest", [&] {
    v1::ModelChunk h = Header(0, update);
    h.mutable_header()->set_sha256("short");
    Status s = SendRaw(0, {h, Data(update, 0, update.size_bytes())});
    EXPECT_TRUE(Refused("header with a 5-byte sha256", kPush, s, absl::StatusCode::kInvalidArgument,
                        {"no valid SHA-256 digest"}));
  });
}

TEST_F(WireCatalogue, StreamsWithoutOrWithTwoHeadersAreRefused) {
  ModelState update = Zeros(Layout());
  ExpectNoChange("no header", [&] {
    Status s = SendRaw(0, {Data(update, 0, update.size_bytes())});
    EXPECT_TRUE(Refused("data chunk before any header", kPush, s,
                        absl::StatusCode::kInvalidArgument, {"must start with a header"}));
  });
  ExpectNoChange("two headers", [&] {
    Status s = SendRaw(0, {Header(0, update), Header(0, update)});
    EXPECT_TRUE(Refused("a second header mid-stream", kPush, s, absl::StatusCode::kInvalidArgument,
                        {"a second header"}));
  });
}

TEST_F(WireCatalogue, MaskedUpdateToAPlaintextRoundIsRefused) {
  ModelState update = Zeros(Layout());
  ExpectNoChange("secagg_masked", [&] {
    v1::ModelChunk h = Header(0, update);
    h.mutable_header()->set_secagg_masked(true);
    h.mutable_header()->set_num_examples(0);
    Status s = SendRaw(0, {h, Data(update, 0, update.size_bytes())});
    EXPECT_TRUE(Refused("header marked secagg_masked in a plaintext round", kPush, s,
                        absl::StatusCode::kInvalidArgument,
                        {"is masked, but this round is not securely aggregated"}));
  });
}

TEST_F(WireCatalogue, UpdateInAnEncodingNotNegotiatedIsRefused) {
  ModelState update = Zeros(Layout());
  ExpectNoChange("encoding", [&] {
    v1::ModelChunk h = Header(0, update);
    h.mutable_header()->set_encoding("int8");
    Status s = SendRaw(0, {h, Data(update, 0, update.size_bytes())});
    EXPECT_TRUE(Refused("header says int8, the federation negotiated none", kPush, s,
                        absl::StatusCode::kInvalidArgument,
                        {"encoded as 'int8'", "negotiated update compression 'none'"}));
  });
}

TEST_F(WireCatalogue, SiteActingAsAnotherSiteIsRefused) {
  ModelState update = Zeros(Layout());
  ExpectNoChange("claimed identity", [&] {
    v1::ModelChunk h = Header(0, update);
    h.mutable_header()->set_site_name("site-2");
    Status s = SendRaw(0, {h, Data(update, 0, update.size_bytes())});
    EXPECT_TRUE(Refused("site-1's certificate, header says site-2", kPush, s,
                        absl::StatusCode::kPermissionDenied,
                        {"site 'site-1' (by its certificate) may not act as 'site-2'"}));
  });
}

TEST_F(WireCatalogue, PullOfUnknownVersionOrBeyondTheEndIsRefused) {
  ExpectNoChange("version 99", [&] {
    auto s = sites_[0]->PullModel(99, 1ull << 30);
    EXPECT_TRUE(Refused("PullModel of version 99 (current 0)", kPull, s.status(),
                        absl::StatusCode::kFailedPrecondition,
                        {"asked for model version 99", "the current version is 0"}));
  });
  ExpectNoChange("offset beyond", [&] {
    auto stub = v1::SiteService::NewStub(channels_[0]);
    grpc::ClientContext ctx;
    v1::PullRequest req;
    req.set_model_version(0);
    req.set_offset(global_->size_bytes() + 1);
    auto reader = stub->PullModel(&ctx, req);
    v1::ModelChunk c;
    while (reader->Read(&c)) {
    }
    Status s = client::FromGrpc(reader->Finish(), "pull");
    EXPECT_TRUE(
        Refused("PullModel from offset size+1", kPull, s, absl::StatusCode::kOutOfRange,
                {"is beyond the " + std::to_string(global_->size_bytes()) + "-byte model"}));
  });
}

TEST_F(WireCatalogue, EvaluationReportDuringTrainingIsRefused) {
  ExpectNoChange("early report", [&] {
    v1::MetricsReport r;
    r.set_round(1);
    r.set_model_version(1);
    r.set_num_examples(1);
    Status s = sites_[0]->ReportMetrics(r);
    EXPECT_TRUE(Refused("evaluation report for round 1 while it trains", kReport, s,
                        absl::StatusCode::kFailedPrecondition,
                        {"evaluation of round 1 (version 1) is not being collected"}));
  });
}

TEST_F(WireCatalogue, DuplicateUploadIsRefusedAsAReplay) {
  ModelState update = Zeros(Layout());
  Status first = sites_[2]->PushUpdate(1, 0, 40, update, {{"loss", 1.0}});
  ASSERT_TRUE(first.ok()) << first;
  Record("a valid update from site-3 (for contrast)", kPush, Answer(first));
  ExpectNoChange("a replay", [&] {
    Status s = sites_[2]->PushUpdate(1, 0, 40, update, {{"loss", 1.0}});
    EXPECT_TRUE(Refused("the same update from site-3 again", kPush, s,
                        absl::StatusCode::kAlreadyExists,
                        {"site 'site-3'", "round 1", "already received (replay?)"}));
  });
}

// ---------------------------------------------------------------- round 1, evaluation phase

TEST_F(WireCatalogue, BadEvaluationReportsAreRefusedNamingTheProblem) {
  for (size_t i : {0, 1}) {
    Status s = sites_[i]->PushUpdate(1, 0, 40, Zeros(Layout()), {{"loss", 1.0}});
    ASSERT_TRUE(s.ok()) << s;
  }
  ASSERT_TRUE(WaitForState(v1::FederationStatus::EVALUATING, 1));
  const int64_t k = spec_.num_classes();
  // A good report: `per_class` rows of each class, all predicted right.
  auto report = [&](int64_t per_class) {
    v1::MetricsReport r;
    r.set_round(1);
    r.set_model_version(1);
    r.set_num_examples(per_class * k);
    for (int64_t t = 0; t < k; ++t) {
      for (int64_t p = 0; p < k; ++p) r.add_confusion(t == p ? per_class : 0);
    }
    (*r.mutable_metrics())["loss"] = 1.25;
    return r;
  };
  struct Case {
    std::string input;
    std::function<void(v1::MetricsReport*)> edit;
    absl::StatusCode code;
    std::vector<std::string> says;
  };
  const std::string cells = std::to_string(k * k);
  std::vector<Case> cases = {
      {"confusion matrix with k*k+1 cells",
       [](v1::MetricsReport* r) { r->add_confusion(1); },
       absl::StatusCode::kInvalidArgument,
       {"site 'site-1'",
        "confusion matrix has " + std::to_string(k * k + 1) + " cells, expected " + cells}},
      {"a negative confusion count",
       [](v1::MetricsReport* r) { r->set_confusion(1, -5); },
       absl::StatusCode::kInvalidArgument,
       {"site 'site-1'", "negative confusion count"}},
      {"a confusion count of 10^15 rows",
       [](v1::MetricsReport* r) {
         r->set_confusion(0, 1'000'000'000'000'000);
         r->set_num_examples(r->num_examples() + 1'000'000'000'000'000);
       },
       absl::StatusCode::kInvalidArgument,
       {"site 'site-1'", "rows"}},
      {"num_examples that disagrees with the confusion matrix",
       [](v1::MetricsReport* r) { r->set_num_examples(r->num_examples() + 7); },
       absl::StatusCode::kInvalidArgument,
       {"site 'site-1'", "num_examples"}},
      {"evaluation of an unknown round (9)",
       [](v1::MetricsReport* r) { r->set_round(9); },
       absl::StatusCode::kFailedPrecondition,
       {"evaluation of round 9 (version 1) is not being collected"}},
      {"evaluation of the wrong model version (0)",
       [](v1::MetricsReport* r) { r->set_model_version(0); },
       absl::StatusCode::kFailedPrecondition,
       {"evaluation of round 1 (version 0) is not being collected"}},
  };
  for (const auto& c : cases) {
    ExpectNoChange(c.input, [&] {
      v1::MetricsReport r = report(2);
      c.edit(&r);
      Status s = sites_[0]->ReportMetrics(r);
      EXPECT_TRUE(Refused(c.input, kReport, s, c.code, c.says));
    });
  }
  // NaN metrics from one site: accepted (its confusion matrix is good), but they do not
  // turn the global loss into NaN.
  {
    v1::MetricsReport r = report(2);
    (*r.mutable_metrics())["loss"] = std::nan("");
    (*r.mutable_metrics())["macro_auc"] = INFINITY;
    Status s = sites_[0]->ReportMetrics(r);
    Record("evaluation report with loss = NaN, macro_auc = +Inf", kReport,
           Answer(s) + "; the global loss/AUC skip non-finite values");
    EXPECT_TRUE(s.ok()) << s;
  }
  ExpectNoChange("a second report", [&] {
    Status s = sites_[0]->ReportMetrics(report(2));
    EXPECT_TRUE(Refused("a second evaluation report from site-1", kReport, s,
                        absl::StatusCode::kAlreadyExists,
                        {"site 'site-1'", "round 1", "already received"}));
  });
  for (size_t i : {1, 2}) {
    Status s = sites_[i]->ReportMetrics(report(2));
    ASSERT_TRUE(s.ok()) << s;
  }
  ASSERT_TRUE(WaitForState(v1::FederationStatus::TRAINING, 2));
  auto rounds = monitor_->Rounds();
  ASSERT_TRUE(rounds.ok()) << rounds.status();
  ASSERT_EQ(rounds->back().round(), 1);
  const std::string& metrics = rounds->back().metrics_json();
  EXPECT_NE(metrics.find("\"sites_reporting\": 3"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\"loss\": 1.25"), std::string::npos)
      << "one site's NaN loss poisoned the global loss: " << metrics;
  EXPECT_NE(metrics.find("\"num_examples\": " + std::to_string(3 * 2 * k)), std::string::npos)
      << metrics;
}

// ---------------------------------------------------------------- restart on a bad checkpoint

TEST_F(WireCatalogue, TruncatedOrCorruptCheckpointAtRestartIsRefusedNamingTheFile) {
  kill(coordinator_, SIGTERM);
  ASSERT_GE(WaitExit(coordinator_, 30), 0) << "the coordinator did not stop on SIGTERM";
  coordinator_ = 0;
  const std::string state = work_ + "/state";
  const std::string checkpoint = state + "/checkpoints/global-000001.dfs";
  ASSERT_TRUE(fs::exists(checkpoint));
  const std::string original = ReadFile(checkpoint);
  const int64_t rounds_before = CountRows(state + "/coordinator.db", "rounds");

  struct Case {
    std::string input;
    std::string contents;
    std::vector<std::string> says;
  };
  std::string flipped = original;
  flipped[flipped.size() - 100] ^= 1;
  // A well-formed file (its own digest matches) of a model without its last tensor.
  std::string smaller;
  std::string dropped;
  {
    auto loaded = LoadModelState(checkpoint);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    std::vector<TensorSpec> specs = loaded->manifest();
    dropped = specs.back().name;
    specs.pop_back();
    ASSERT_TRUE(SaveModelState(Zeros(specs), work_ + "/smaller.dfs").ok());
    smaller = ReadFile(work_ + "/smaller.dfs");
  }
  std::vector<Case> cases = {
      {"checkpoint global-000001.dfs truncated to half at restart",
       original.substr(0, original.size() / 2),
       {"global-000001.dfs"}},
      {"checkpoint global-000001.dfs with one byte flipped at restart",
       flipped,
       {"global-000001.dfs"}},
      {"checkpoint global-000001.dfs empty at restart", "", {"global-000001.dfs"}},
      {"checkpoint global-000001.dfs, a valid file of a model without tensor '" + dropped + "'",
       smaller,
       {"round 1", "'" + dropped + "' is missing"}},
  };
  for (const auto& c : cases) {
    std::ofstream(checkpoint, std::ios::binary | std::ios::trunc) << c.contents;
    const pid_t pid = Spawn(CoordinatorArgs(), work_ + "/restart.out", work_ + "/restart.log");
    const int rc = WaitExit(pid, 60);
    if (rc < 0) kill(pid, SIGKILL), WaitExit(pid, 10);
    std::string said = ReadFile(work_ + "/restart.log");
    while (!said.empty() && said.back() == '\n') said.pop_back();
    const std::string last_line =
        said.substr(said.rfind("dermfed-coordinator:") == std::string::npos
                        ? 0
                        : said.rfind("dermfed-coordinator:"));
    Record(c.input, "dermfed-coordinator start-up (state dir)",
           "exit " + std::to_string(rc) + ": " + last_line);
    EXPECT_EQ(rc, 1) << c.input << ": the coordinator did not refuse to start: " << said;
    for (const auto& p : c.says) {
      EXPECT_NE(said.find(p), std::string::npos)
          << c.input << ": does not name " << p << ": " << said;
    }
    EXPECT_EQ(ReadFile(checkpoint), c.contents) << c.input << ": the checkpoint was rewritten";
    EXPECT_EQ(CountRows(state + "/coordinator.db", "rounds"), rounds_before)
        << c.input << ": the store's rounds changed";
  }
  std::ofstream(checkpoint, std::ios::binary | std::ios::trunc) << original;
}

// Prints the catalogue after the last test.
class CatalogueTable : public ::testing::Environment {
 public:
  void TearDown() override {
    std::ostringstream t;
    t << "\n| input | boundary | answer |\n| --- | --- | --- |\n";
    for (const Row& r : Rows()) {
      std::string answer = r.answer;
      for (char& ch : answer) {
        if (ch == '\n') ch = ' ';
        if (ch == '|') ch = '/';
      }
      t << "| " << r.input << " | " << r.boundary << " | " << answer << " |\n";
    }
    std::fputs(t.str().c_str(), stdout);
    if (const char* out = getenv("DERMFED_CATALOGUE_OUT"))
      std::ofstream(out, std::ios::app) << t.str();
  }
};

}  // namespace
}  // namespace dermfed::catalogue

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s DERMFED_COORDINATOR CERTS_DIR [gtest flags]\n", argv[0]);
    return 2;
  }
  dermfed::catalogue::g_coordinator_bin = argv[1];
  dermfed::catalogue::g_certs_dir = argv[2];
  ::testing::AddGlobalTestEnvironment(new dermfed::catalogue::CatalogueTable);
  return RUN_ALL_TESTS();
}
