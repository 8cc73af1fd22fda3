// aggregation_bench: how fast the coordinator folds site updates, against this machine's
// memory bandwidth measured in the same process.
//
// For a DenseNet-121-shaped model (7.98M parameters, its real tensor list including the
// BatchNorm buffers and int64 counters) and a ResNet-50-shaped one (25.6M), it folds K float32
// deltas through FedAvg's streaming aggregator (the linear strategies' hot path: validation,
// finiteness check and the weighted fold) and reports parameters folded per second. The
// baseline is a STREAM triad a[i] = b[i] + s·c[i] over arrays of the model's size, in
// elements per second; a fold reads the accumulator and the delta and writes the
// accumulator, so it moves the same three streams per element. Best of --reps for both,
// interleaved so background load hits both alike.
//
// Prints one JSON line per model:
//   {"name":"aggregation_vs_membw", "model":"densenet121", "value":..., "unit":"params/s",
//    "baseline":"STREAM triad ...", "baseline_value":..., "ratio":..., "detail":...}
// (the ResNet-50 line is named aggregation_vs_membw_resnet50).
//
// Usage: aggregation_bench [--sites=K] [--reps=R]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/model_state.h"
#include "coordinator/strategy.h"
#include "tests/common/tensor_spec.h"

namespace dermfed::coordinator {
namespace {

using ::dermfed::test_util::Spec;

void AddBatchNorm(std::vector<TensorSpec>& specs, const std::string& prefix, int64_t c) {
  for (const char* p : {"weight", "bias", "running_mean", "running_var"}) {
    specs.push_back(Spec(prefix + "." + p, DType::kFloat32, {c}));
  }
  specs.push_back(Spec(prefix + ".num_batches_tracked", DType::kInt64, {}));
}

// torchvision densenet121: growth 32, blocks (6, 12, 24, 16), bn_size 4, 1000 classes.
std::vector<TensorSpec> DenseNet121() {
  std::vector<TensorSpec> s;
  s.push_back(Spec("features.conv0.weight", DType::kFloat32, {64, 3, 7, 7}));
  AddBatchNorm(s, "features.norm0", 64);
  int64_t c = 64;
  const int blocks[] = {6, 12, 24, 16};
  for (int b = 0; b < 4; ++b) {
    for (int l = 0; l < blocks[b]; ++l) {
      const std::string p =
          "features.denseblock" + std::to_string(b + 1) + ".denselayer" + std::to_string(l + 1);
      AddBatchNorm(s, p + ".norm1", c);
      s.push_back(Spec(p + ".conv1.weight", DType::kFloat32, {128, c, 1, 1}));
      AddBatchNorm(s, p + ".norm2", 128);
      s.push_back(Spec(p + ".conv2.weight", DType::kFloat32, {32, 128, 3, 3}));
      c += 32;
    }
    if (b < 3) {
      const std::string p = "features.transition" + std::to_string(b + 1);
      AddBatchNorm(s, p + ".norm", c);
      s.push_back(Spec(p + ".conv.weight", DType::kFloat32, {c / 2, c, 1, 1}));
      c /= 2;
    }
  }
  AddBatchNorm(s, "features.norm5", c);
  s.push_back(Spec("classifier.weight", DType::kFloat32, {1000, c}));
  s.push_back(Spec("classifier.bias", DType::kFloat32, {1000}));
  return s;
}

// torchvision resnet50: bottleneck blocks (3, 4, 6, 3), 1000 classes.
std::vector<TensorSpec> ResNet50() {
  std::vector<TensorSpec> s;
  s.push_back(Spec("conv1.weight", DType::kFloat32, {64, 3, 7, 7}));
  AddBatchNorm(s, "bn1", 64);
  int64_t in = 64;
  const int blocks[] = {3, 4, 6, 3};
  for (int l = 0; l < 4; ++l) {
    const int64_t planes = 64 << l;
    for (int b = 0; b < blocks[l]; ++b) {
      const std::string p = "layer" + std::to_string(l + 1) + "." + std::to_string(b);
      s.push_back(Spec(p + ".conv1.weight", DType::kFloat32, {planes, in, 1, 1}));
      AddBatchNorm(s, p + ".bn1", planes);
      s.push_back(Spec(p + ".conv2.weight", DType::kFloat32, {planes, planes, 3, 3}));
      AddBatchNorm(s, p + ".bn2", planes);
      s.push_back(Spec(p + ".conv3.weight", DType::kFloat32, {planes * 4, planes, 1, 1}));
      AddBatchNorm(s, p + ".bn3", planes * 4);
      if (b == 0) {
        s.push_back(Spec(p + ".downsample.0.weight", DType::kFloat32, {planes * 4, in, 1, 1}));
        AddBatchNorm(s, p + ".downsample.1", planes * 4);
      }
      in = planes * 4;
    }
  }
  s.push_back(Spec("fc.weight", DType::kFloat32, {1000, in}));
  s.push_back(Spec("fc.bias", DType::kFloat32, {1000}));
  return s;
}

// Fills every float32 tensor with small pseudo-random values (a cheap LCG; the values only
// need to be finite and not all equal).
void FillDelta(ModelState& state, uint32_t seed) {
  uint32_t x = seed * 2654435761u + 1;
  for (size_t t = 0; t < state.num_tensors(); ++t) {
    if (state.manifest()[t].dtype != DType::kFloat32) continue;
    auto* p = reinterpret_cast<float*>(state.TensorData(t));
    for (int64_t i = 0; i < state.manifest()[t].numel(); ++i) {
      x = x * 1664525u + 1013904223u;
      p[i] = static_cast<float>(static_cast<int32_t>(x >> 8) - (1 << 23)) * 1e-9f;
    }
  }
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

__attribute__((noinline)) void Triad(float* __restrict a, const float* __restrict b,
                                     const float* __restrict c, float s, size_t n) {
  for (size_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
}

struct Result {
  double fold_params_per_s = 0;
  double triad_elems_per_s = 0;
  double finish_s = 0;
  uint64_t params = 0;
};

Result Measure(const std::vector<TensorSpec>& layout, int sites, int reps) {
  Result r;
  StatusOr<ModelState> global = ModelState::Create(layout);
  if (!global.ok()) {
    std::fprintf(stderr, "aggregation_bench: %s\n", std::string(global.status().message()).c_str());
    std::exit(1);
  }
  r.params = global->TotalElements();
  std::vector<ModelState> deltas;
  for (int k = 0; k < sites; ++k) {
    deltas.push_back(global->Clone());
    FillDelta(deltas.back(), static_cast<uint32_t>(k + 1));
  }
  StrategyConfig config;  // fedavg
  auto strategy = MakeStrategy(config);
  if (!strategy.ok()) std::exit(1);

  const size_t n = r.params;
  std::vector<float> a(n, 0.0f), b(n, 1.0f), c(n, 2.0f);

  double best_fold = 1e300, best_triad = 1e300, best_finish = 1e300;
  for (int rep = 0; rep <= reps; ++rep) {  // rep 0 warms up (page faults, caches)
    auto agg = (*strategy)->NewAggregator(*global);
    double fold = 0;
    for (int k = 0; k < sites; ++k) {
      const double t0 = Now();
      Status s = agg->Fold("site-" + std::to_string(k), 100 + k, deltas[k]);
      fold += Now() - t0;
      if (!s.ok()) {
        std::fprintf(stderr, "aggregation_bench: %s\n", std::string(s.message()).c_str());
        std::exit(1);
      }
    }
    const double t1 = Now();
    StatusOr<ModelState> mean = agg->Finish();
    const double finish = Now() - t1;
    if (!mean.ok()) std::exit(1);

    double triad = 0;
    for (int k = 0; k < sites; ++k) {
      const double t0 = Now();
      Triad(a.data(), b.data(), c.data(), 0.5f + k, n);
      triad += Now() - t0;
    }
    if (rep == 0) continue;
    best_fold = std::min(best_fold, fold);
    best_triad = std::min(best_triad, triad);
    best_finish = std::min(best_finish, finish);
  }
  volatile float sink = a[n / 2];
  (void)sink;
  r.fold_params_per_s = static_cast<double>(sites) * n / best_fold;
  r.triad_elems_per_s = static_cast<double>(sites) * n / best_triad;
  r.finish_s = best_finish;
  return r;
}

int Main(int argc, char** argv) {
  int sites = 8, reps = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--sites=", 0) == 0) {
      sites = std::atoi(arg.c_str() + 8);
    } else if (arg.rfind("--reps=", 0) == 0) {
      reps = std::atoi(arg.c_str() + 7);
    } else {
      std::fprintf(stderr, "usage: aggregation_bench [--sites=K] [--reps=R]\n");
      return 2;
    }
  }
  if (sites < 1 || reps < 1) {
    std::fprintf(stderr, "aggregation_bench: --sites and --reps must be >= 1\n");
    return 2;
  }
  const struct {
    const char* model;
    std::vector<TensorSpec> layout;
  } models[] = {{"densenet121", DenseNet121()}, {"resnet50", ResNet50()}};
  for (const auto& m : models) {
    const Result r = Measure(m.layout, sites, reps);
    // The first model's record is the suite's aggregation_vs_membw (tests/bench/run.sh).
    const std::string name = std::string("aggregation_vs_membw") +
                             (&m == &models[0] ? "" : std::string("_") + m.model);
    std::printf(
        "{\"name\": \"%s\", \"model\": \"%s\", \"params\": %llu, "
        "\"sites\": %d, \"value\": %.4g, \"unit\": \"params/s\", "
        "\"baseline\": \"STREAM triad elements/s (same process)\", "
        "\"baseline_value\": %.4g, \"ratio\": %.3f, \"finish_ms\": %.2f, "
        "\"detail\": \"%s, %llu parameters, %d sites, FedAvg fold; Finish %.1f ms\"}\n",
        name.c_str(), m.model, static_cast<unsigned long long>(r.params), sites,
        r.fold_params_per_s, r.triad_elems_per_s, r.fold_params_per_s / r.triad_elems_per_s,
        r.finish_s * 1e3, m.model, static_cast<unsigned long long>(r.params), sites,
        r.finish_s * 1e3);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace dermfed::coordinator

int main(int argc, char** argv) { return dermfed::coordinator::Main(argc, argv); }
