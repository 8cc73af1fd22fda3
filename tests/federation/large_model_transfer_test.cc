// A VGG13-sized model (133,047,848 float32 values, 532 MB; its largest tensor alone is 411 MB)
// crosses the real wire both ways: an in-process coordinator (RoundEngine + SiteServiceImpl on
// 127.0.0.1, see in_process_federation.h) serves it to a FederationClient, which pushes back
// a delta of the same size; the round aggregates and checkpoints it.
//
// Why in process rather than dermfed-coordinator with model.backbone=vgg13: the engine and
// the service are the code under test either way, and a synthetic ModelState lets the test
// know every byte of the global model (so it can compare what was pulled and what was
// aggregated exactly) without building a 133M-parameter LibTorch module on two loaded cores.
//
// gRPC message limits stay at their 4 MiB defaults on both ends: the model moves only as
// ~2 MiB chunks. Peak RSS of the whole process (server and client together) is checked so a
// regression that buffers whole models per message or per chunk list shows up.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "common/model_state.h"
#include "tests/federation/in_process_federation.h"

namespace dermfed::fedtest {
namespace {

using Clock = std::chrono::steady_clock;

// torchvision's VGG13 (features + classifier) under the DualRefNet backbone prefix.
ModelState Vgg13SizedState() {
  std::vector<TensorSpec> specs;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    TensorSpec s;
    s.name = name;
    s.dtype = DType::kFloat32;
    s.shape = std::move(shape);
    specs.push_back(std::move(s));
  };
  const int convs[][3] = {{0, 3, 64},     {2, 64, 64},    {5, 64, 128},   {7, 128, 128},
                          {10, 128, 256}, {12, 256, 256}, {15, 256, 512}, {17, 512, 512},
                          {20, 512, 512}, {22, 512, 512}};
  for (const auto& c : convs) {
    const std::string p = "backbone.features." + std::to_string(c[0]);
    add(p + ".weight", {c[2], c[1], 3, 3});
    add(p + ".bias", {c[2]});
  }
  add("backbone.classifier.0.weight", {4096, 25088});
  add("backbone.classifier.0.bias", {4096});
  add("backbone.classifier.3.weight", {4096, 4096});
  add("backbone.classifier.3.bias", {4096});
  add("backbone.classifier.6.weight", {1000, 4096});
  add("backbone.classifier.6.bias", {1000});
  auto state = ModelState::Create(std::move(specs));
  EXPECT_TRUE(state.ok()) << state.status();
  // A value for every element that depends on its global position, so a chunk delivered at
  // the wrong offset, twice, or not at all changes the bytes.
  uint64_t i = 0;
  for (size_t t = 0; t < state->num_tensors(); ++t) {
    float* x = reinterpret_cast<float*>(state->TensorData(t));
    const int64_t n = state->manifest()[t].numel();
    for (int64_t j = 0; j < n; ++j, ++i) {
      x[j] =
          static_cast<float>(static_cast<int32_t>(static_cast<uint32_t>(i * 2654435761u))) * 1e-9f;
    }
  }
  return std::move(state).value();
}

// Peak resident set of this process (server and client), in MiB.
double PeakRssMiB() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return -1;
}

double MBps(uint64_t bytes, Clock::duration d) {
  return bytes / 1e6 / std::max(1e-9, std::chrono::duration<double>(d).count());
}

// Index of the first byte where a and b differ, or -1.
int64_t FirstDifference(const uint8_t* a, const uint8_t* b, uint64_t n) {
  if (std::memcmp(a, b, n) == 0) return -1;
  for (uint64_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return static_cast<int64_t>(i);
  }
  return -1;
}

TEST(LargeModelTransferTest, Vgg13SizedModelIsPulledUpdatedAndAggregated) {
  constexpr float kDelta = 0.25f;
  constexpr int64_t kExamples = 4;  // FedAvg with one site: (4 * 0.25) / 4, exact in float
  ModelState initial = Vgg13SizedState();
  ASSERT_GE(initial.TotalElements(), 133'000'000u);
  ASSERT_GT(initial.size_bytes(), 500u * 1000 * 1000);
  const uint64_t bytes = initial.size_bytes();

  InProcessOptions options;
  options.rounds = 1;
  options.min_sites = 1;
  auto fed = InProcessFederation::Start(options, std::move(initial));
  ASSERT_TRUE(fed.ok()) << fed.status();
  // Version 0, immutable and shared with the engine (no copy).
  std::shared_ptr<const coordinator::GlobalModel> before = (*fed)->engine().CurrentModel();
  ASSERT_EQ(before->version, 0);

  client::FederationClient site = (*fed)->NewClient("site-vgg");
  auto joined = site.Join(kExamples);
  ASSERT_TRUE(joined.ok()) << joined.status();
  auto task = NextTask(site, 0, std::chrono::seconds(60));
  ASSERT_TRUE(task.ok()) << task.status();
  ASSERT_EQ(task->kind(), v1::Task::TRAIN) << task->DebugString();
  ASSERT_EQ(task->round(), 1);
  ASSERT_EQ(task->model_version(), 0);

  {
    // Coordinator -> site. ChunkAssembler verifies the SHA-256 of the whole before handing
    // the state over; the test compares every byte on top of that.
    const auto t0 = Clock::now();
    auto pulled = site.PullModel(0, /*max_bytes=*/1ull << 30);
    const auto pull_time = Clock::now() - t0;
    ASSERT_TRUE(pulled.ok()) << pulled.status();
    ASSERT_TRUE(pulled->SameLayout(before->state)) << pulled->CheckSameLayout(before->state);
    ASSERT_EQ(pulled->size_bytes(), bytes);
    const int64_t diff = FirstDifference(pulled->data(), before->state.data(), bytes);
    ASSERT_EQ(diff, -1) << "the pulled model differs from the global model at byte " << diff;
    std::printf("pulled %.1f MB in %.2f s (%.0f MB/s)\n", bytes / 1e6,
                std::chrono::duration<double>(pull_time).count(), MBps(bytes, pull_time));

    // Site -> coordinator: a delta of the same size (reusing the pulled buffer).
    for (size_t t = 0; t < pulled->num_tensors(); ++t) {
      float* x = reinterpret_cast<float*>(pulled->TensorData(t));
      std::fill(x, x + pulled->manifest()[t].numel(), kDelta);
    }
    const auto t1 = Clock::now();
    Status pushed = site.PushUpdate(1, 0, kExamples, *pulled, {{"loss", 1.0}});
    const auto push_time = Clock::now() - t1;
    ASSERT_TRUE(pushed.ok()) << pushed;
    std::printf("pushed %.1f MB in %.2f s (%.0f MB/s)\n", bytes / 1e6,
                std::chrono::duration<double>(push_time).count(), MBps(bytes, push_time));
  }

  // The round aggregated: version 1 = version 0 + the delta, every element.
  task = NextTask(site, 1, std::chrono::seconds(120));
  ASSERT_TRUE(task.ok()) << task.status();
  ASSERT_EQ(task->kind(), v1::Task::EVALUATE) << task->DebugString();
  ASSERT_EQ(task->model_version(), 1);
  std::shared_ptr<const coordinator::GlobalModel> after = (*fed)->engine().CurrentModel();
  ASSERT_EQ(after->version, 1);
  ASSERT_TRUE(after->state.SameLayout(before->state));
  {
    int64_t wrong = 0, first_wrong = -1;
    for (size_t t = 0; t < after->state.num_tensors(); ++t) {
      const float* a = reinterpret_cast<const float*>(after->state.TensorData(t));
      const float* b = reinterpret_cast<const float*>(before->state.TensorData(t));
      const int64_t n = after->state.manifest()[t].numel();
      for (int64_t j = 0; j < n; ++j) {
        if (a[j] != b[j] + kDelta) {
          if (first_wrong < 0) first_wrong = static_cast<int64_t>(t);
          ++wrong;
        }
      }
    }
    ASSERT_EQ(wrong, 0) << wrong << " values of version 1 are not version 0 + " << kDelta
                        << "; first in tensor " << after->state.manifest()[first_wrong].name;
  }

  v1::MetricsReport report;
  report.set_site_name("site-vgg");
  report.set_round(1);
  report.set_model_version(1);
  report.set_num_examples(4);
  for (int64_t c : {2, 0, 0, 2}) report.add_confusion(c);
  Status reported = site.ReportMetrics(report);
  ASSERT_TRUE(reported.ok()) << reported;
  task = NextTask(site, 1, std::chrono::seconds(60));
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_EQ(task->kind(), v1::Task::DONE) << task->DebugString();
  ASSERT_TRUE((*fed)->WaitForRun(std::chrono::seconds(60))) << "the engine did not finish";
  EXPECT_TRUE((*fed)->run_status().ok()) << (*fed)->run_status();

  // The aggregated version is the committed round 1, checkpoint and all.
  auto rounds = (*fed)->store().Rounds();
  ASSERT_TRUE(rounds.ok()) << rounds.status();
  ASSERT_EQ(rounds->size(), 1u);
  EXPECT_EQ(rounds->back().round, 1);
  EXPECT_EQ(rounds->back().sites_reported, 1);
  EXPECT_EQ(rounds->back().digest, after->hex_digest);

  const double peak = PeakRssMiB();
  std::printf("peak RSS %.0f MiB for a %.0f MiB model\n", peak, bytes / 1048576.0);
  // Held at the peak, during the upload: version 0 (shared by the engine and this test), the
  // site's delta, the server's receive buffer and the aggregator's running sum — 4 models
  // (~2.1 GB), as client and server share this process.
  EXPECT_LT(peak, 4096.0) << "peak RSS " << peak << " MiB for a " << bytes / 1048576.0
                          << " MiB model: something holds too many copies";
}

}  // namespace
}  // namespace dermfed::fedtest
