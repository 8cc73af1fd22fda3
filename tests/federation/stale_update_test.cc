// Stale, replayed, unselected and malformed messages reach a real coordinator over gRPC
// (in process, on 127.0.0.1) and are refused with a status whose code and message say why —
// naming the round, the version or the site — and a refused update leaves no trace in the
// aggregate.
#include <cmath>
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <string>

#include "common/model_transfer.h"
#include "common/update_codec.h"
#include "tests/federation/in_process_federation.h"

namespace dermfed::fedtest {
namespace {

constexpr int64_t kValues = 1000;

ModelState SmallState(int64_t values, float fill) {
  TensorSpec spec;
  spec.name = "w";
  spec.shape = {values};
  auto s = ModelState::Create({spec});
  EXPECT_TRUE(s.ok()) << s.status();
  float* x = reinterpret_cast<float*>(s->data());
  for (int64_t i = 0; i < values; ++i) x[i] = fill == 0 ? 0.001f * i : fill;
  return std::move(s).value();
}

// Success when `s` has `code` and a message containing every one of `parts`.
::testing::AssertionResult Refused(const Status& s, absl::StatusCode code,
                                   std::vector<std::string> parts) {
  if (s.code() != code) {
    return ::testing::AssertionFailure()
           << "want " << absl::StatusCodeToString(code) << ", got " << s;
  }
  for (const auto& p : parts) {
    if (s.message().find(p) == std::string::npos) {
      return ::testing::AssertionFailure() << "the refusal does not say '" << p << "': " << s;
    }
  }
  return ::testing::AssertionSuccess();
}

// A coordinator with `sites` joined sites, all selected for round 1 and holding its TRAIN task.
class StaleUpdateTest : public ::testing::Test {
 protected:
  void StartRound(std::vector<std::string> sites, const std::string& compression = "") {
    InProcessOptions options;
    options.compression = compression;
    options.rounds = 1;
    options.min_sites = static_cast<int>(sites.size());
    auto fed = InProcessFederation::Start(options, SmallState(kValues, 0));
    ASSERT_TRUE(fed.ok()) << fed.status();
    fed_ = std::move(fed).value();
    for (const auto& name : sites) {
      clients_.push_back(std::make_unique<client::FederationClient>(fed_->NewClient(name)));
      auto j = clients_.back()->Join(2);
      ASSERT_TRUE(j.ok()) << j.status();
    }
    for (auto& c : clients_) {
      auto task = NextTask(*c, 0, std::chrono::seconds(30));
      ASSERT_TRUE(task.ok()) << task.status();
      ASSERT_EQ(task->kind(), v1::Task::TRAIN) << task->DebugString();
      ASSERT_EQ(task->round(), 1);
      ASSERT_EQ(task->model_version(), 0);
      tasks_.push_back(*task);
    }
  }
  client::FederationClient& site(size_t i) { return *clients_[i]; }
  // Everyone who is asked evaluates round 1 (version 1); then the federation is done.
  void FinishEvaluation() {
    for (auto& c : clients_) {
      auto task = NextTask(*c, 1, std::chrono::seconds(30));
      ASSERT_TRUE(task.ok()) << task.status();
      if (task->kind() != v1::Task::EVALUATE) continue;
      v1::MetricsReport r;
      r.set_site_name(c->site_name());
      r.set_round(1);
      r.set_model_version(1);
      r.set_num_examples(2);
      for (int64_t x : {1, 0, 0, 1}) r.add_confusion(x);
      Status s = c->ReportMetrics(r);
      ASSERT_TRUE(s.ok()) << s;
    }
    ASSERT_TRUE(fed_->WaitForRun(std::chrono::seconds(30)));
    EXPECT_TRUE(fed_->run_status().ok()) << fed_->run_status();
  }

  std::unique_ptr<InProcessFederation> fed_;
  std::vector<std::unique_ptr<client::FederationClient>> clients_;
  std::vector<v1::Task> tasks_;  // each site's TRAIN task of round 1
};

// A site that evaluated version N trains round N+1 from the model it holds instead of pulling
// it again (client/federation/site_daemon.cc, ObtainGlobal): that is safe only because
// TRAIN and EVALUATE tasks name the exact bytes, as the SHA-256 the download carries.
TEST_F(StaleUpdateTest, TrainAndEvaluateTasksNameTheSha256OfTheModelTheySendForDownload) {
  StartRound({"site-a"});
  v1::ModelHeader v0;
  auto pulled = site(0).PullModel(0, 1 << 20, &v0);
  ASSERT_TRUE(pulled.ok()) << pulled.status();
  ASSERT_EQ(v0.sha256().size(), 32u);
  EXPECT_EQ(tasks_[0].model_sha256(), v0.sha256());

  Status pushed = site(0).PushUpdate(1, 0, 2, SmallState(kValues, 1), {});
  ASSERT_TRUE(pushed.ok()) << pushed;
  auto task = NextTask(site(0), 1, std::chrono::seconds(30));
  ASSERT_TRUE(task.ok()) << task.status();
  ASSERT_EQ(task->kind(), v1::Task::EVALUATE);
  v1::ModelHeader v1;
  pulled = site(0).PullModel(1, 1 << 20, &v1);
  ASSERT_TRUE(pulled.ok()) << pulled.status();
  EXPECT_EQ(task->model_sha256(), v1.sha256());
  EXPECT_NE(v1.sha256(), v0.sha256());  // the update moved the model
  FinishEvaluation();
}

TEST_F(StaleUpdateTest, UpdateFromASiteThatNeverJoinedIsRefused) {
  StartRound({"site-a"});
  client::FederationClient ghost = fed_->NewClient("ghost");
  EXPECT_TRUE(Refused(ghost.PushUpdate(1, 0, 2, SmallState(kValues, 1), {}),
                      absl::StatusCode::kFailedPrecondition, {"ghost", "has not joined"}));
}

TEST_F(StaleUpdateTest, UpdateForAnotherRoundIsRefusedNamingBothRounds) {
  StartRound({"site-a"});
  EXPECT_TRUE(Refused(site(0).PushUpdate(2, 0, 2, SmallState(kValues, 1), {}),
                      absl::StatusCode::kFailedPrecondition,
                      {"site 'site-a'", "update for round 2", "round 1 is collecting"}));
  EXPECT_TRUE(Refused(site(0).PushUpdate(0, 0, 2, SmallState(kValues, 1), {}),
                      absl::StatusCode::kFailedPrecondition, {"update for round 0", "stale"}));
}

TEST_F(StaleUpdateTest, UpdateTrainedFromAnotherModelVersionIsRefusedNamingBoth) {
  StartRound({"site-a"});
  EXPECT_TRUE(Refused(site(0).PushUpdate(1, 7, 2, SmallState(kValues, 1), {}),
                      absl::StatusCode::kFailedPrecondition,
                      {"round 1", "model version 7", "uses version 0"}));
}

TEST_F(StaleUpdateTest, UpdateFromASiteNotSelectedForTheRoundIsRefused) {
  StartRound({"site-a"});
  client::FederationClient late = fed_->NewClient("site-late");
  ASSERT_TRUE(late.Join(2).ok());  // joined after round 1's selection
  EXPECT_TRUE(Refused(late.PushUpdate(1, 0, 2, SmallState(kValues, 1), {}),
                      absl::StatusCode::kPermissionDenied,
                      {"site-late", "round 1", "not selected"}));
}

TEST_F(StaleUpdateTest, SecondUpdateFromTheSameSiteIsRefusedAsAReplay) {
  StartRound({"site-a", "site-b"});
  Status first = site(0).PushUpdate(1, 0, 2, SmallState(kValues, 1), {});
  ASSERT_TRUE(first.ok()) << first;
  EXPECT_TRUE(Refused(site(0).PushUpdate(1, 0, 2, SmallState(kValues, 1), {}),
                      absl::StatusCode::kAlreadyExists, {"site-a", "round 1", "already received"}));
}

TEST_F(StaleUpdateTest, MalformedUpdatesAreRefusedAndLeaveNoTraceInTheAggregate) {
  StartRound({"site-a", "site-b"});
  std::shared_ptr<const coordinator::GlobalModel> before = fed_->engine().CurrentModel();

  // Wrong layout: refused from the header, before any byte is buffered.
  EXPECT_TRUE(Refused(site(1).PushUpdate(1, 0, 2, SmallState(kValues + 1, 5), {}),
                      absl::StatusCode::kInvalidArgument, {"site 'site-b'", "round 1"}));
  // No examples: nothing to weight it by.
  EXPECT_TRUE(Refused(site(1).PushUpdate(1, 0, 0, SmallState(kValues, 5), {}),
                      absl::StatusCode::kInvalidArgument, {"round 1", "num_examples 0"}));
  // Corrupted in transit: the bytes do not match the header's digest.
  {
    auto stub = v1::SiteService::NewStub(fed_->NewChannel());
    grpc::ClientContext ctx;
    v1::PushAck ack;
    auto writer = stub->PushUpdate(&ctx, &ack);
    ModelState update = SmallState(kValues, 5);
    v1::ModelChunk header;
    v1::ModelHeader* h = header.mutable_header();
    h->set_round(1);
    h->set_model_version(0);
    h->set_site_name("site-b");
    h->set_num_examples(2);
    *h->mutable_manifest() = ManifestToProto(update);
    const auto digest = BufferDigest(update);
    h->set_sha256(reinterpret_cast<const char*>(digest.data()), digest.size());
    ASSERT_TRUE(writer->Write(header));
    reinterpret_cast<float*>(update.data())[17] = 6;  // flipped after the digest was taken
    v1::ModelChunk data;
    data.set_offset(0);
    data.set_data(reinterpret_cast<const char*>(update.data()), update.size_bytes());
    writer->Write(data);
    writer->WritesDone();
    EXPECT_TRUE(Refused(client::FromGrpc(writer->Finish(), "push"), absl::StatusCode::kDataLoss,
                        {"site 'site-b'", "round 1", "SHA-256 mismatch"}));
  }
  // Not a number: one poisoned element is enough, and the refusal names the tensor.
  {
    ModelState poisoned = SmallState(kValues, 5);
    reinterpret_cast<float*>(poisoned.data())[123] = std::nanf("");
    EXPECT_TRUE(Refused(site(1).PushUpdate(1, 0, 2, poisoned, {}), absl::StatusCode::kInvalidArgument,
                        {"site 'site-b'", "round 1", "tensor 'w'", "non-finite", "element 123"}));
    reinterpret_cast<float*>(poisoned.data())[123] = INFINITY;
    EXPECT_TRUE(Refused(site(1).PushUpdate(1, 0, 2, poisoned, {}), absl::StatusCode::kInvalidArgument,
                        {"non-finite", "element 123"}));
  }
  // The good updates: Δa = 1, Δb = 3, two examples each, so FedAvg adds exactly 2.
  Status a = site(0).PushUpdate(1, 0, 2, SmallState(kValues, 1), {});
  ASSERT_TRUE(a.ok()) << a;
  Status b = site(1).PushUpdate(1, 0, 2, SmallState(kValues, 3), {});
  ASSERT_TRUE(b.ok()) << b;
  auto task = NextTask(site(0), 1, std::chrono::seconds(30));
  ASSERT_TRUE(task.ok()) << task.status();
  ASSERT_EQ(task->kind(), v1::Task::EVALUATE);
  std::shared_ptr<const coordinator::GlobalModel> after = fed_->engine().CurrentModel();
  ASSERT_EQ(after->version, 1);
  const float* x0 = reinterpret_cast<const float*>(before->state.data());
  const float* x1 = reinterpret_cast<const float*>(after->state.data());
  for (int64_t i = 0; i < kValues; ++i) {
    ASSERT_EQ(x1[i], x0[i] + 2.0f) << "element " << i << ": a refused update was folded";
  }
  FinishEvaluation();
  auto rounds = fed_->store().Rounds();
  ASSERT_TRUE(rounds.ok()) << rounds.status();
  ASSERT_EQ(rounds->size(), 1u);
  EXPECT_EQ(rounds->back().sites_reported, 2);
}

// Update compression: the federation negotiated int8; any other encoding, and any int8
// encoding that is hostile, is refused naming the site, the round (and the tensor); the
// good int8 updates are decoded before folding.
TEST_F(StaleUpdateTest, UpdatesNotInTheNegotiatedEncodingAreRefused) {
  StartRound({"site-a", "site-b"}, "int8");
  std::shared_ptr<const coordinator::GlobalModel> before = fed_->engine().CurrentModel();
  CodecOptions int8;
  int8.codec = UpdateCodec::kInt8;
  auto encode = [](float fill, const CodecOptions& o) {
    auto e = EncodeUpdate(SmallState(kValues, fill), o);
    EXPECT_TRUE(e.ok()) << e.status();
    return std::move(e).value();
  };
  // Raw, or another codec: refused from the header.
  EXPECT_TRUE(Refused(site(1).PushUpdate(1, 0, 2, SmallState(kValues, 3), {}),
                      absl::StatusCode::kInvalidArgument,
                      {"site 'site-b'", "round 1", "encoded as 'none'",
                       "negotiated update compression 'int8'"}));
  CodecOptions fp16;
  fp16.codec = UpdateCodec::kFp16;
  EXPECT_TRUE(Refused(site(1).PushUpdate(1, 0, 2, encode(3, fp16), {}, false, nullptr, "fp16"),
                      absl::StatusCode::kInvalidArgument, {"encoded as 'fp16'"}));
  EXPECT_TRUE(Refused(site(1).PushUpdate(1, 0, 2, encode(3, int8), {}, false, nullptr, "gzip"),
                      absl::StatusCode::kInvalidArgument, {"encoded as 'gzip'"}));
  // Labelled int8 but shaped like fp16: refused before a byte is read.
  EXPECT_TRUE(Refused(site(1).PushUpdate(1, 0, 2, encode(3, fp16), {}, false, nullptr, "int8"),
                      absl::StatusCode::kInvalidArgument,
                      {"site 'site-b'", "round 1", "one uint8 tensor 'codec/int8'"}));
  // A hostile int8 encoding (a NaN scale): refused naming the tensor.
  {
    ModelState hostile = encode(3, int8);
    const float nan = std::nanf("");
    std::memcpy(hostile.data() + 12, &nan, sizeof nan);
    EXPECT_TRUE(Refused(site(1).PushUpdate(1, 0, 2, hostile, {}, false, nullptr, "int8"),
                        absl::StatusCode::kInvalidArgument,
                        {"site 'site-b'", "round 1", "tensor 'w'", "int8 scale"}));
  }
  // The good updates: Δa = 1 and Δb = 3 are exact in int8 up to float rounding of the scale.
  Status a = site(0).PushUpdate(1, 0, 2, encode(1, int8), {}, false, nullptr, "int8");
  ASSERT_TRUE(a.ok()) << a;
  Status b = site(1).PushUpdate(1, 0, 2, encode(3, int8), {}, false, nullptr, "int8");
  ASSERT_TRUE(b.ok()) << b;
  auto task = NextTask(site(0), 1, std::chrono::seconds(30));
  ASSERT_TRUE(task.ok()) << task.status();
  ASSERT_EQ(task->kind(), v1::Task::EVALUATE);
  std::shared_ptr<const coordinator::GlobalModel> after = fed_->engine().CurrentModel();
  const float* x0 = reinterpret_cast<const float*>(before->state.data());
  const float* x1 = reinterpret_cast<const float*>(after->state.data());
  for (int64_t i = 0; i < kValues; ++i) {
    ASSERT_NEAR(x1[i], x0[i] + 2.0f, 1e-5) << "element " << i;
  }
  FinishEvaluation();
}

TEST_F(StaleUpdateTest, MessagesForAClosedRoundAreRefusedNamingIt) {
  StartRound({"site-a"});
  Status pushed = site(0).PushUpdate(1, 0, 2, SmallState(kValues, 1), {});
  ASSERT_TRUE(pushed.ok()) << pushed;
  auto task = NextTask(site(0), 1, std::chrono::seconds(30));
  ASSERT_TRUE(task.ok()) << task.status();
  ASSERT_EQ(task->kind(), v1::Task::EVALUATE);  // round 1 is aggregated: version 1 is current

  EXPECT_TRUE(Refused(site(0).PushUpdate(1, 0, 2, SmallState(kValues, 1), {}),
                      absl::StatusCode::kFailedPrecondition,
                      {"update for round 1", "not collecting updates"}));
  auto old = site(0).PullModel(0, 1 << 20);
  EXPECT_TRUE(Refused(old.status(), absl::StatusCode::kFailedPrecondition,
                      {"model version 0", "current version is 1"}));
  v1::MetricsReport r;
  r.set_site_name("site-a");
  r.set_round(1);
  r.set_model_version(0);
  r.set_num_examples(2);
  for (int64_t x : {1, 0, 0, 1}) r.add_confusion(x);
  EXPECT_TRUE(Refused(site(0).ReportMetrics(r), absl::StatusCode::kFailedPrecondition,
                      {"evaluation of round 1", "version 0"}));
  r.set_model_version(1);
  r.add_confusion(1);
  EXPECT_TRUE(Refused(site(0).ReportMetrics(r), absl::StatusCode::kInvalidArgument,
                      {"site-a", "5 cells, expected 4"}));
  FinishEvaluation();
}

}  // namespace
}  // namespace dermfed::fedtest
