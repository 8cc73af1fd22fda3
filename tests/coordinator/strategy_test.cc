// The aggregation strategies as a specification: hand-computed aggregates, the server
// optimizers against a reference written from Reddi et al. 2021 (Algorithm 2), the robust
// rules, and every refusal naming the site and tensor.
#include "coordinator/strategy.h"

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "coordinator/strategies/tensor_ops.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/tensor_spec.h"

namespace dermfed::coordinator {
namespace {

using ::testing::AllOf;
using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::FloatNear;
using ::testing::HasSubstr;
using ::testing::Pointwise;

using ::dermfed::test_util::Spec;

// A small model: two float32 tensors, a BatchNorm weight and num_batches_tracked (int64).
std::vector<TensorSpec> SmallLayout() {
  return {Spec("conv.weight", DType::kFloat32, {2, 2}), Spec("fc.bias", DType::kFloat32, {3}),
          Spec("bn.weight", DType::kFloat32, {2}),
          Spec("bn.num_batches_tracked", DType::kInt64, {})};
}

ModelState Make(const std::vector<TensorSpec>& specs) {
  StatusOr<ModelState> s = ModelState::Create(specs);
  EXPECT_TRUE(s.ok()) << s.status();
  return std::move(s).value();
}

int Index(const ModelState& s, const std::string& name) {
  const int i = s.Find(name);
  EXPECT_GE(i, 0) << "no tensor " << name;
  return i;
}

void SetF32(ModelState& s, const std::string& name, const std::vector<float>& values) {
  const int i = Index(s, name);
  ASSERT_EQ(static_cast<int64_t>(values.size()), s.manifest()[i].numel()) << name;
  std::memcpy(s.TensorData(i), values.data(), values.size() * sizeof(float));
}

std::vector<float> GetF32(const ModelState& s, const std::string& name) {
  const int i = Index(s, name);
  std::vector<float> v(s.manifest()[i].numel());
  std::memcpy(v.data(), s.TensorData(i), v.size() * sizeof(float));
  return v;
}

void SetI64(ModelState& s, const std::string& name, int64_t value) {
  std::memcpy(s.TensorData(Index(s, name)), &value, sizeof value);
}

int64_t GetI64(const ModelState& s, const std::string& name) {
  int64_t v;
  std::memcpy(&v, s.TensorData(Index(s, name)), sizeof v);
  return v;
}

// A SmallLayout state whose float values are `conv`, `fc`, `bn` and counter `count`.
ModelState Small(std::vector<float> conv, std::vector<float> fc, std::vector<float> bn,
                 int64_t count = 0) {
  ModelState s = Make(SmallLayout());
  SetF32(s, "conv.weight", conv);
  SetF32(s, "fc.bias", fc);
  SetF32(s, "bn.weight", bn);
  SetI64(s, "bn.num_batches_tracked", count);
  return s;
}

std::unique_ptr<Strategy> MustMake(StrategyConfig config) {
  auto s = MakeStrategy(config);
  EXPECT_TRUE(s.ok()) << s.status();
  return std::move(s).value();
}

std::unique_ptr<Strategy> MustMake(const std::string& name) {
  StrategyConfig c;
  c.name = name;
  return MustMake(c);
}

ModelState MustFinish(Aggregator& agg) {
  StatusOr<ModelState> out = agg.Finish();
  EXPECT_TRUE(out.ok()) << out.status();
  return std::move(out).value();
}

// ---------------------------------------------------------------- FedAvg and the fold

TEST(FedAvgTest, AggregateIsTheExampleWeightedMeanOfThreeSites) {
  auto fedavg = MustMake("fedavg");
  ModelState global = Small({1, 1, 1, 1}, {0, 0, 0}, {1, 1}, 7);
  auto agg = fedavg->NewAggregator(global);
  // Weights 1, 2, 3 (Σ = 6).
  ASSERT_TRUE(agg->Fold("site-a", 1, Small({6, 0, 12, -6}, {1, 2, 3}, {0, 6})).ok());
  ASSERT_TRUE(agg->Fold("site-b", 2, Small({3, 3, 0, 0}, {4, 5, 6}, {3, 0})).ok());
  ASSERT_TRUE(agg->Fold("site-c", 3, Small({2, -2, 0, 4}, {7, 8, 9}, {2, 2})).ok());
  EXPECT_EQ(agg->num_folded(), 3);
  ModelState mean = MustFinish(*agg);
  // conv: (1·6 + 2·3 + 3·2)/6 = 3, (0 + 6 − 6)/6 = 0, (12 + 0 + 0)/6 = 2, (−6 + 0 + 12)/6 = 1
  EXPECT_THAT(GetF32(mean, "conv.weight"), Pointwise(FloatNear(1e-6), {3.f, 0.f, 2.f, 1.f}));
  // fc: (1 + 8 + 21)/6 = 5, (2 + 10 + 24)/6 = 6, (3 + 12 + 27)/6 = 7
  EXPECT_THAT(GetF32(mean, "fc.bias"), Pointwise(FloatNear(1e-6), {5.f, 6.f, 7.f}));
  // bn: (0 + 6 + 6)/6 = 2, (6 + 0 + 6)/6 = 2
  EXPECT_THAT(GetF32(mean, "bn.weight"), Pointwise(FloatNear(1e-6), {2.f, 2.f}));

  ASSERT_TRUE(fedavg->Apply(mean, &global).ok());
  EXPECT_THAT(GetF32(global, "conv.weight"), Pointwise(FloatNear(1e-6), {4.f, 1.f, 3.f, 2.f}));
  EXPECT_THAT(GetF32(global, "fc.bias"), Pointwise(FloatNear(1e-6), {5.f, 6.f, 7.f}));
  EXPECT_EQ(GetI64(global, "bn.num_batches_tracked"), 7);
}

TEST(FedAvgTest, FoldOrderDoesNotChangeTheAggregate) {
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.f, 1.f);
  const std::vector<TensorSpec> layout = {Spec("w", DType::kFloat32, {1000}),
                                          Spec("b", DType::kFloat32, {17})};
  std::vector<ModelState> deltas;
  for (int k = 0; k < 6; ++k) {
    ModelState d = Make(layout);
    for (const char* name : {"w", "b"}) {
      std::vector<float> v(d.manifest()[d.Find(name)].numel());
      for (float& x : v) x = normal(rng);
      SetF32(d, name, v);
    }
    deltas.push_back(std::move(d));
  }
  const ModelState global = Make(layout);
  auto fedavg = MustMake("fedavg");
  auto forward = fedavg->NewAggregator(global);
  auto backward = fedavg->NewAggregator(global);
  for (int k = 0; k < 6; ++k) {
    ASSERT_TRUE(forward->Fold("site-" + std::to_string(k), 10 + 7 * k, deltas[k]).ok());
    const int r = 5 - k;
    ASSERT_TRUE(backward->Fold("site-" + std::to_string(r), 10 + 7 * r, deltas[r]).ok());
  }
  ModelState a = MustFinish(*forward), b = MustFinish(*backward);
  for (const char* name : {"w", "b"}) {
    EXPECT_THAT(GetF32(a, name), Pointwise(FloatNear(1e-5), GetF32(b, name))) << name;
  }
}

TEST(FedAvgTest, AggregatesFloat64Float16AndBFloat16Tensors) {
  const std::vector<TensorSpec> layout = {Spec("d", DType::kFloat64, {2}),
                                          Spec("h", DType::kFloat16, {2}),
                                          Spec("bf", DType::kBFloat16, {2})};
  auto make = [&](double d0, double d1, float h0, float h1) {
    ModelState s = Make(layout);
    StoreFromDouble(d0, DType::kFloat64, 0, s.TensorData(0));
    StoreFromDouble(d1, DType::kFloat64, 1, s.TensorData(0));
    for (int t : {1, 2}) {
      StoreFromDouble(h0, layout[t].dtype, 0, s.TensorData(t));
      StoreFromDouble(h1, layout[t].dtype, 1, s.TensorData(t));
    }
    return s;
  };
  ModelState global = make(0.5, 0.5, 0.5f, 0.5f);
  auto fedavg = MustMake("fedavg");
  auto agg = fedavg->NewAggregator(global);
  ASSERT_TRUE(agg->Fold("a", 1, make(1.0, -4.0, 1.0f, -4.0f)).ok());
  ASSERT_TRUE(agg->Fold("b", 3, make(3.0, 0.0, 3.0f, 0.0f)).ok());
  ModelState mean = MustFinish(*agg);  // (1 + 9)/4 = 2.5, −4/4 = −1
  for (size_t t = 0; t < 3; ++t) {
    EXPECT_DOUBLE_EQ(LoadAsDouble(mean.TensorData(t), layout[t].dtype, 0), 2.5) << layout[t].name;
    EXPECT_DOUBLE_EQ(LoadAsDouble(mean.TensorData(t), layout[t].dtype, 1), -1.0) << layout[t].name;
  }
  ASSERT_TRUE(fedavg->Apply(mean, &global).ok());
  for (size_t t = 0; t < 3; ++t) {
    EXPECT_DOUBLE_EQ(LoadAsDouble(global.TensorData(t), layout[t].dtype, 0), 3.0);
    EXPECT_DOUBLE_EQ(LoadAsDouble(global.TensorData(t), layout[t].dtype, 1), -0.5);
  }
}

TEST(FedAvgTest, IntegerTensorsAreNotAggregatedAndKeepTheirGlobalValue) {
  auto fedavg = MustMake("fedavg");
  ModelState global = Small({0, 0, 0, 0}, {0, 0, 0}, {0, 0}, 41);
  auto agg = fedavg->NewAggregator(global);
  ASSERT_TRUE(agg->Fold("a", 5, Small({1, 1, 1, 1}, {1, 1, 1}, {1, 1}, 100)).ok());
  ModelState mean = MustFinish(*agg);
  EXPECT_EQ(GetI64(mean, "bn.num_batches_tracked"), 0) << "integer tensors come out as zeros";
  ASSERT_TRUE(fedavg->Apply(mean, &global).ok());
  EXPECT_EQ(GetI64(global, "bn.num_batches_tracked"), 41);
  EXPECT_THAT(GetF32(global, "fc.bias"), ElementsAre(1.f, 1.f, 1.f));
}

TEST(FedAvgTest, LocalTensorsKeepTheirGlobalValue) {
  auto fedavg = MustMake("fedavg");
  fedavg->set_local_tensors({"bn.weight"});
  ModelState global = Small({0, 0, 0, 0}, {0, 0, 0}, {9, 9});
  auto agg = fedavg->NewAggregator(global);
  ASSERT_TRUE(agg->Fold("a", 1, Small({1, 2, 3, 4}, {1, 1, 1}, {5, 5})).ok());
  ASSERT_TRUE(fedavg->Apply(MustFinish(*agg), &global).ok());
  EXPECT_THAT(GetF32(global, "bn.weight"), ElementsAre(9.f, 9.f));
  EXPECT_THAT(GetF32(global, "conv.weight"), ElementsAre(1.f, 2.f, 3.f, 4.f));
}

// ---------------------------------------------------------------- refusals

// Folds `bad` (expecting an error containing every string in `needles`), then a good update,
// and checks the aggregate is that good update alone: the refused one left no trace.
void ExpectRefusedWithoutTrace(const std::string& strategy, int64_t n, const ModelState& bad,
                               const std::vector<std::string>& needles) {
  SCOPED_TRACE(strategy);
  auto s = MustMake(strategy);
  ModelState global = Make(SmallLayout());
  auto agg = s->NewAggregator(global);
  Status st = agg->Fold("hospital-b", n, bad);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  for (const std::string& needle : needles)
    EXPECT_THAT(std::string(st.message()), HasSubstr(needle));
  EXPECT_EQ(agg->num_folded(), 0);
  ASSERT_TRUE(agg->Fold("hospital-c", 2, Small({1, 2, 3, 4}, {5, 6, 7}, {8, 9})).ok());
  ModelState out = MustFinish(*agg);
  EXPECT_THAT(GetF32(out, "conv.weight"), ElementsAre(1.f, 2.f, 3.f, 4.f));
  EXPECT_THAT(GetF32(out, "fc.bias"), ElementsAre(5.f, 6.f, 7.f));
  EXPECT_THAT(GetF32(out, "bn.weight"), ElementsAre(8.f, 9.f));
}

TEST(FoldTest, RefusesLayoutMismatchNamingSiteAndTensor) {
  std::vector<TensorSpec> other = SmallLayout();
  other[1].shape = {4};
  ModelState bad = Make(other);
  for (const char* s : {"fedavg", "fedmedian"}) {
    ExpectRefusedWithoutTrace(s, 3, bad, {"hospital-b", "fc.bias", "[4]", "[3]"});
  }
}

TEST(FoldTest, RefusesNonFiniteValueNamingSiteAndTensor) {
  // NaN in the last tensor: earlier tensors were fine and must not have been folded either.
  ModelState nan = Small({1, 1, 1, 1}, {1, 1, 1}, {1, std::nanf("")});
  ModelState inf = Small({1, 1, 1, 1}, {1, -INFINITY, 1}, {1, 1});
  for (const char* s : {"fedavg", "fedadam", "trimmed_mean"}) {
    ExpectRefusedWithoutTrace(s, 3, nan, {"hospital-b", "bn.weight", "NaN", "element 1"});
    ExpectRefusedWithoutTrace(s, 3, inf, {"hospital-b", "fc.bias", "-Inf", "element 1"});
  }
}

TEST(FoldTest, RefusesZeroOrNegativeExamplesNamingSite) {
  ModelState ok = Small({1, 1, 1, 1}, {1, 1, 1}, {1, 1});
  for (const char* s : {"fedavg", "fedmedian"}) {
    ExpectRefusedWithoutTrace(s, 0, ok, {"hospital-b", "num_examples", "got 0"});
    ExpectRefusedWithoutTrace(s, -5, ok, {"hospital-b", "num_examples", "got -5"});
  }
}

TEST(FoldTest, RefusesASecondUpdateFromTheSameSite) {
  auto fedavg = MustMake("fedavg");
  ModelState global = Make(SmallLayout());
  auto agg = fedavg->NewAggregator(global);
  ASSERT_TRUE(agg->Fold("a", 1, Small({1, 1, 1, 1}, {1, 1, 1}, {1, 1})).ok());
  Status st = agg->Fold("a", 1, Small({3, 3, 3, 3}, {3, 3, 3}, {3, 3}));
  EXPECT_THAT(std::string(st.message()), AllOf(HasSubstr("site a"), HasSubstr("already")));
  EXPECT_THAT(GetF32(MustFinish(*agg), "fc.bias"), ElementsAre(1.f, 1.f, 1.f));
}

TEST(FoldTest, FinishNeedsAnUpdateAndHappensOnce) {
  for (const std::string& name : StrategyNames()) {
    auto s = MustMake(name);
    ModelState global = Make(SmallLayout());
    auto agg = s->NewAggregator(global);
    EXPECT_EQ(agg->Finish().status().code(), absl::StatusCode::kFailedPrecondition) << name;
  }
  auto fedavg = MustMake("fedavg");
  ModelState global = Make(SmallLayout());
  auto agg = fedavg->NewAggregator(global);
  ASSERT_TRUE(agg->Fold("a", 1, Small({1, 1, 1, 1}, {1, 1, 1}, {1, 1})).ok());
  ASSERT_TRUE(agg->Finish().ok());
  EXPECT_EQ(agg->Finish().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(agg->Fold("b", 1, Small({1, 1, 1, 1}, {1, 1, 1}, {1, 1})).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ApplyTest, RefusesAnAggregateOfAnotherLayoutAndLeavesGlobalUnchanged) {
  auto fedadam = MustMake("fedadam");
  ModelState global = Small({1, 2, 3, 4}, {5, 6, 7}, {8, 9});
  std::vector<TensorSpec> other = SmallLayout();
  other.pop_back();
  Status st = fedadam->Apply(Make(other), &global);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("aggregate delta"));
  EXPECT_THAT(GetF32(global, "conv.weight"), ElementsAre(1.f, 2.f, 3.f, 4.f));
}

// ---------------------------------------------------------------- FedProx

TEST(FedProxTest, SendsProximalMuAndAggregatesLikeFedAvg) {
  StrategyConfig c;
  c.name = "fedprox";
  c.proximal_mu = 0.05;
  auto fedprox = MustMake(c);
  EXPECT_TRUE(fedprox->IsLinear());
  EXPECT_EQ(fedprox->ConfigureFit(3), (std::map<std::string, double>{{"proximal_mu", 0.05}}));
  EXPECT_TRUE(MustMake("fedavg")->ConfigureFit(3).empty());

  ModelState global = Small({0, 0, 0, 0}, {0, 0, 0}, {0, 0});
  auto agg = fedprox->NewAggregator(global);
  ASSERT_TRUE(agg->Fold("a", 1, Small({4, 0, 0, 0}, {0, 0, 0}, {0, 0})).ok());
  ASSERT_TRUE(agg->Fold("b", 3, Small({0, 0, 0, 8}, {0, 0, 0}, {0, 0})).ok());
  ASSERT_TRUE(fedprox->Apply(MustFinish(*agg), &global).ok());
  EXPECT_THAT(GetF32(global, "conv.weight"), Pointwise(FloatNear(1e-6), {1.f, 0.f, 0.f, 6.f}));
}

// ---------------------------------------------------------------- FedAdagrad / FedAdam / FedYogi

// Reddi et al. 2021, Algorithm 2, in double, one coordinate vector: m_{-1} = 0, v_{-1} = τ².
struct ReferenceOptimizer {
  std::string rule;
  double eta, beta1, beta2, tau;
  std::vector<double> m, v;

  void Step(std::vector<double>& x, const std::vector<double>& delta) {
    if (m.empty()) {
      m.assign(x.size(), 0.0);
      v.assign(x.size(), tau * tau);
    }
    for (size_t i = 0; i < x.size(); ++i) {
      const double d = delta[i], d2 = d * d;
      m[i] = beta1 * m[i] + (1 - beta1) * d;
      if (rule == "fedadagrad") {
        v[i] = v[i] + d2;
      } else if (rule == "fedadam") {
        v[i] = beta2 * v[i] + (1 - beta2) * d2;
      } else {
        const double sign = v[i] > d2 ? 1.0 : (v[i] < d2 ? -1.0 : 0.0);
        v[i] = v[i] - (1 - beta2) * d2 * sign;
      }
      x[i] += eta * m[i] / (std::sqrt(v[i]) + tau);
    }
  }
};

TEST(FedOptTest, FirstStepMatchesHandComputation) {
  // Δ = 1 for one coordinate, η = 0.1, β1 = 0.9, β2 = 0.99, τ = 1e-3, v_{-1} = τ²:
  //   m = 0.1
  //   Adam:    v = 0.99e-6 + 0.01         -> η·m/(√v + τ) = 0.0990050489
  //   Adagrad: v = 1e-6 + 1               -> 0.0099900050
  //   Yogi:    v = 1e-6 + 0.01·1 (v < Δ²) -> 0.0990049999
  const std::map<std::string, double> expected = {{"fedadam", 0.09900504888254243},
                                                  {"fedadagrad", 0.009990004999998752},
                                                  {"fedyogi", 0.09900499987500623}};
  for (const auto& [name, step] : expected) {
    StrategyConfig c;
    c.name = name;
    c.server_learning_rate = 0.1;
    auto s = MustMake(c);
    ModelState global = Make(SmallLayout());
    auto agg = s->NewAggregator(global);
    ASSERT_TRUE(agg->Fold("a", 1, Small({1, 0, 0, 0}, {0, 0, 0}, {0, 0})).ok());
    ASSERT_TRUE(s->Apply(MustFinish(*agg), &global).ok());
    EXPECT_NEAR(GetF32(global, "conv.weight")[0], step, 1e-7) << name;
    EXPECT_EQ(GetF32(global, "conv.weight")[1], 0.f) << name << ": Δ = 0 moves nothing";
  }
}

TEST(FedOptTest, TwoRoundsMatchTheReference) {
  // Two sites per round with unequal weights; values chosen so Yogi's sign flips between
  // coordinates (v above and below Δ²).
  const std::vector<float> a1 = {0.5f, -0.02f, 0.0f, 2.0f}, b1 = {0.1f, -0.04f, 0.001f, -1.0f};
  const std::vector<float> a2 = {-0.3f, 0.01f, 0.2f, 0.0005f}, b2 = {0.2f, 0.03f, 0.0f, 0.0f};
  const std::vector<float> x0 = {1.0f, -1.0f, 0.25f, 0.0f};
  for (const char* name : {"fedadagrad", "fedadam", "fedyogi"}) {
    SCOPED_TRACE(name);
    StrategyConfig c;
    c.name = name;
    c.server_learning_rate = 0.05;
    c.beta1 = 0.8;
    c.beta2 = 0.9;
    c.tau = 0.01;
    auto s = MustMake(c);
    ReferenceOptimizer ref{name, 0.05, 0.8, 0.9, 0.01, {}, {}};
    std::vector<double> x(x0.begin(), x0.end());
    ModelState global = Small(x0, {0, 0, 0}, {0, 0});
    for (const auto& [a, b] : {std::pair(a1, b1), std::pair(a2, b2)}) {
      auto agg = s->NewAggregator(global);
      ASSERT_TRUE(agg->Fold("a", 1, Small(a, {0, 0, 0}, {0, 0})).ok());
      ASSERT_TRUE(agg->Fold("b", 3, Small(b, {0, 0, 0}, {0, 0})).ok());
      ASSERT_TRUE(s->Apply(MustFinish(*agg), &global).ok());
      std::vector<double> mean(4);
      for (int i = 0; i < 4; ++i) mean[i] = (1.0 * a[i] + 3.0 * b[i]) / 4.0;
      ref.Step(x, mean);
      const std::vector<float> got = GetF32(global, "conv.weight");
      for (int i = 0; i < 4; ++i) EXPECT_NEAR(got[i], x[i], 1e-5 * (1 + std::abs(x[i]))) << i;
    }
    // The saved state is the reference's m and v.
    StatusOr<ModelState> state = s->SaveState();
    ASSERT_TRUE(state.ok());
    const std::vector<float> m = GetF32(*state, "m/conv.weight");
    const std::vector<float> v = GetF32(*state, "v/conv.weight");
    for (int i = 0; i < 4; ++i) {
      EXPECT_NEAR(m[i], ref.m[i], 1e-6 * (1 + std::abs(ref.m[i])));
      EXPECT_NEAR(v[i], ref.v[i], 1e-6 * (1 + std::abs(ref.v[i])));
    }
  }
}

TEST(FedOptTest, SkipsIntegerAndLocalTensorsAndKeepsNoStateForThem) {
  StrategyConfig c;
  c.name = "fedyogi";
  auto s = MustMake(c);
  s->set_local_tensors({"bn.weight"});
  ModelState global = Small({0, 0, 0, 0}, {0, 0, 0}, {3, 3}, 12);
  auto agg = s->NewAggregator(global);
  ASSERT_TRUE(agg->Fold("a", 1, Small({1, 1, 1, 1}, {1, 1, 1}, {1, 1}, 99)).ok());
  ASSERT_TRUE(s->Apply(MustFinish(*agg), &global).ok());
  EXPECT_THAT(GetF32(global, "bn.weight"), ElementsAre(3.f, 3.f));
  EXPECT_EQ(GetI64(global, "bn.num_batches_tracked"), 12);
  EXPECT_GT(GetF32(global, "fc.bias")[0], 0.f);
  StatusOr<ModelState> state = s->SaveState();
  ASSERT_TRUE(state.ok());
  std::vector<std::string> names;
  for (const TensorSpec& t : state->manifest()) names.push_back(t.name);
  EXPECT_THAT(names, ElementsAre("m/conv.weight", "v/conv.weight", "m/fc.bias", "v/fc.bias"));
}

TEST(FedOptTest, SaveAndRestoreContinueIdentically) {
  for (const char* name : {"fedadagrad", "fedadam", "fedyogi"}) {
    SCOPED_TRACE(name);
    auto first = MustMake(name);
    StatusOr<ModelState> empty = first->SaveState();
    ASSERT_TRUE(empty.ok());
    EXPECT_EQ(empty->num_tensors(), 0u) << "no state before the first round";

    ModelState global = Small({1, 2, 3, 4}, {0, 0, 0}, {1, 1});
    auto round = [&](Strategy& s, ModelState& g, float scale) {
      auto agg = s.NewAggregator(g);
      ASSERT_TRUE(agg->Fold("a", 2, Small({scale, -scale, 0.5f, 0}, {1, 2, 3}, {0, 1})).ok());
      ASSERT_TRUE(agg->Fold("b", 1, Small({0, scale, 1, 2}, {3, 2, 1}, {1, 0})).ok());
      ASSERT_TRUE(s.Apply(MustFinish(*agg), &g).ok());
    };
    round(*first, global, 0.3f);
    StatusOr<ModelState> saved = first->SaveState();
    ASSERT_TRUE(saved.ok());
    ModelState resumed_global = global.Clone();

    auto second = MustMake(name);  // as after a coordinator restart
    ASSERT_TRUE(second->RestoreState(*saved).ok());
    round(*first, global, -0.7f);
    round(*second, resumed_global, -0.7f);
    EXPECT_EQ(std::memcmp(global.data(), resumed_global.data(), global.size_bytes()), 0)
        << "a restored optimizer must continue bit for bit";
  }
}

TEST(FedOptTest, RestoreRefusesMalformedState) {
  auto s = MustMake("fedadam");
  ModelState stray = Make({Spec("w", DType::kFloat32, {2})});
  EXPECT_THAT(std::string(s->RestoreState(stray).message()), HasSubstr("'w'"));
  ModelState lonely = Make({Spec("m/w", DType::kFloat32, {2})});
  EXPECT_THAT(std::string(s->RestoreState(lonely).message()), HasSubstr("v/w"));
  ModelState negative =
      Make({Spec("m/w", DType::kFloat32, {2}), Spec("v/w", DType::kFloat32, {2})});
  SetF32(negative, "v/w", {1.f, -1.f});
  EXPECT_THAT(std::string(s->RestoreState(negative).message()), HasSubstr("negative"));

  // State of another model is caught by the next Apply, before anything changes.
  ModelState other = Make({Spec("m/w", DType::kFloat32, {2}), Spec("v/w", DType::kFloat32, {2})});
  ASSERT_TRUE(s->RestoreState(other).ok());
  ModelState global = Small({1, 2, 3, 4}, {0, 0, 0}, {1, 1});
  auto agg = s->NewAggregator(global);
  ASSERT_TRUE(agg->Fold("a", 1, Small({1, 1, 1, 1}, {1, 1, 1}, {1, 1})).ok());
  Status st = s->Apply(MustFinish(*agg), &global);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(st.message()), HasSubstr("m/conv.weight"));
  EXPECT_THAT(GetF32(global, "conv.weight"), ElementsAre(1.f, 2.f, 3.f, 4.f));
}

TEST(StatelessStrategyTest, SavesEmptyStateAndRefusesAnotherStrategysState) {
  auto fedavg = MustMake("fedavg");
  StatusOr<ModelState> state = fedavg->SaveState();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->num_tensors(), 0u);
  EXPECT_TRUE(fedavg->RestoreState(*state).ok());
  Status st = fedavg->RestoreState(Make({Spec("m/w", DType::kFloat32, {2})}));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), AllOf(HasSubstr("fedavg"), HasSubstr("m/w")));
}

// ---------------------------------------------------------------- robust strategies

// Folds one single-tensor update per row of `values` (all with a different example count,
// which robust rules ignore) and returns the aggregate's values.
std::vector<float> RobustAggregate(Strategy& s, const std::vector<std::vector<float>>& values) {
  const std::vector<TensorSpec> layout = {Spec("w", DType::kFloat32, {3}),
                                          Spec("n", DType::kInt32, {1})};
  ModelState global = Make(layout);
  auto agg = s.NewAggregator(global);
  for (size_t k = 0; k < values.size(); ++k) {
    ModelState d = Make(layout);
    SetF32(d, "w", values[k]);
    EXPECT_TRUE(agg->Fold("site-" + std::to_string(k), 1 + 1000 * k, d).ok());
  }
  return GetF32(MustFinish(*agg), "w");
}

TEST(FedMedianTest, CoordinateWiseMedianOfOddAndEvenCounts) {
  auto median = MustMake("fedmedian");
  EXPECT_FALSE(median->IsLinear());
  EXPECT_THAT(RobustAggregate(*median, {{1, 9, -1}, {5, 2, -3}, {2, 7, 100}}),
              ElementsAre(2.f, 7.f, -1.f));
  // Even: the mean of the two middle values.
  EXPECT_THAT(RobustAggregate(*median, {{1, 9, -1}, {5, 2, -3}, {2, 7, 100}, {10, 0, -2}}),
              ElementsAre(3.5f, 4.5f, -1.5f));
}

TEST(TrimmedMeanTest, CutsFloorBetaNAtEachEnd) {
  StrategyConfig c;
  c.name = "trimmed_mean";
  c.trim_fraction = 0.2;
  auto trimmed = MustMake(c);
  EXPECT_FALSE(trimmed->IsLinear());
  // n = 5: ⌊0.2·5⌋ = 1 cut at each end -> mean of the middle three.
  EXPECT_THAT(
      RobustAggregate(*trimmed, {{1, 0, 4}, {2, 0, 4}, {3, 30, 4}, {4, 60, 4}, {100, -1000, 4}}),
      ElementsAre(3.f, 10.f, 4.f));
  // n = 4: ⌊0.2·4⌋ = 0 -> plain mean.
  EXPECT_THAT(RobustAggregate(*trimmed, {{1, 0, 4}, {2, 0, 8}, {3, 4, 4}, {6, 4, 8}}),
              ElementsAre(3.f, 2.f, 6.f));
  c.trim_fraction = 0.25;
  auto quarter = MustMake(c);
  // n = 4: ⌊0.25·4⌋ = 1 -> mean of the middle two.
  EXPECT_THAT(RobustAggregate(*quarter, {{1, 0, 4}, {2, 0, 8}, {3, 4, 4}, {60, 4, 8}}),
              ElementsAre(2.5f, 2.f, 6.f));
}

TEST(KrumTest, PicksTheHonestUpdateWhenOneSiteIsAnOutlier) {
  StrategyConfig c;
  c.name = "krum";
  c.krum_byzantine = 1;
  auto krum = MustMake(c);
  EXPECT_FALSE(krum->IsLinear());
  // n = 5, f = 1: scores sum the n − f − 2 = 2 nearest squared distances.
  // h1 = (1,1,1): 1 + 4 = 5; h2 = (2,1,1): 1 + 5 = 6; h3 = (1,3,1): 4 + 5 = 9;
  // h4 = (1,1,4): 9 + 10 = 19; the outlier: huge. Krum returns h1.
  const std::vector<std::vector<float>> updates = {
      {2, 1, 1}, {1, 3, 1}, {100, -100, 50}, {1, 1, 1}, {1, 1, 4}};
  EXPECT_THAT(RobustAggregate(*krum, updates), ElementsAre(1.f, 1.f, 1.f));

  c.krum_select = 3;  // Multi-Krum: mean of h1, h2, h3
  auto multi = MustMake(c);
  EXPECT_THAT(RobustAggregate(*multi, updates),
              Pointwise(FloatNear(1e-6), {4.f / 3, 5.f / 3, 1.f}));
}

TEST(KrumTest, IgnoresLocalTensorsInDistances) {
  StrategyConfig c;
  c.name = "krum";
  auto krum = MustMake(c);
  krum->set_local_tensors({"bn.weight"});
  ModelState global = Make(SmallLayout());
  auto agg = krum->NewAggregator(global);
  // Site "a" is the most central by conv/fc, but has wildly site-specific BatchNorm weights.
  const std::vector<std::pair<std::string, ModelState>> updates = [] {
    std::vector<std::pair<std::string, ModelState>> u;
    u.emplace_back("a", Small({1, 1, 1, 1}, {1, 1, 1}, {500, -500}));
    u.emplace_back("b", Small({2, 1, 1, 1}, {1, 1, 1}, {0, 0}));
    u.emplace_back("c", Small({1, 3, 1, 1}, {1, 1, 1}, {0, 0}));
    u.emplace_back("d", Small({1, 1, 4, 1}, {1, 1, 1}, {0, 0}));
    u.emplace_back("e", Small({1, 1, 1, 50}, {1, 1, 1}, {0, 0}));
    return u;
  }();
  for (const auto& [site, delta] : updates) ASSERT_TRUE(agg->Fold(site, 10, delta).ok());
  EXPECT_THAT(GetF32(MustFinish(*agg), "conv.weight"), ElementsAre(1.f, 1.f, 1.f, 1.f));
}

TEST(KrumTest, NeedsMoreThanTwoFPlusTwoUpdates) {
  StrategyConfig c;
  c.name = "krum";
  c.krum_byzantine = 1;
  auto krum = MustMake(c);
  const std::vector<TensorSpec> layout = {Spec("w", DType::kFloat32, {3})};
  ModelState global = Make(layout);
  auto agg = krum->NewAggregator(global);
  for (int k = 0; k < 4; ++k) ASSERT_TRUE(agg->Fold("s" + std::to_string(k), 1, global).ok());
  Status st = agg->Finish().status();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(st.message()), AllOf(HasSubstr("2f + 2 = 4"), HasSubstr("got 4")));
}

TEST(RobustStrategyTest, IntegerAndLocalTensorsKeepTheirGlobalValue) {
  for (const char* name : {"fedmedian", "trimmed_mean", "krum"}) {
    SCOPED_TRACE(name);
    StrategyConfig c;
    c.name = name;
    c.krum_byzantine = 0;
    auto s = MustMake(c);
    s->set_local_tensors({"bn.weight"});
    ModelState global = Small({0, 0, 0, 0}, {0, 0, 0}, {7, 7}, 3);
    auto agg = s->NewAggregator(global);
    for (int k = 0; k < 3; ++k) {
      ASSERT_TRUE(
          agg->Fold("s" + std::to_string(k), 1, Small({1, 1, 1, 1}, {2, 2, 2}, {5, 5}, 9)).ok());
    }
    ModelState out = MustFinish(*agg);
    EXPECT_EQ(GetI64(out, "bn.num_batches_tracked"), 0);
    ASSERT_TRUE(s->Apply(out, &global).ok());
    EXPECT_THAT(GetF32(global, "fc.bias"), ElementsAre(2.f, 2.f, 2.f));
    EXPECT_THAT(GetF32(global, "bn.weight"), ElementsAre(7.f, 7.f));
    EXPECT_EQ(GetI64(global, "bn.num_batches_tracked"), 3);
  }
}

// ---------------------------------------------------------------- MakeStrategy

TEST(MakeStrategyTest, BuildsEveryNamedStrategyWithDefaults) {
  const std::map<std::string, bool> linear = {
      {"fedavg", true},     {"fedprox", true},    {"fedadam", true},       {"fedyogi", true},
      {"fedadagrad", true}, {"fedmedian", false}, {"trimmed_mean", false}, {"krum", false}};
  ASSERT_EQ(StrategyNames().size(), linear.size());
  for (const std::string& name : StrategyNames()) {
    auto s = MustMake(name);
    EXPECT_EQ(s->name(), name);
    EXPECT_EQ(s->IsLinear(), linear.at(name)) << name;
  }
}

TEST(MakeStrategyTest, RefusesBadParametersNamingTheKey) {
  struct Case {
    std::string name;
    void (*set)(StrategyConfig&);
    std::string message;
  };
  const std::vector<Case> cases = {
      {"trimmed_mean", [](StrategyConfig& c) { c.trim_fraction = 0.7; },
       "strategy.trim_fraction must be in [0, 0.5), got 0.7"},
      {"trimmed_mean", [](StrategyConfig& c) { c.trim_fraction = 0.5; },
       "strategy.trim_fraction must be in [0, 0.5), got 0.5"},
      {"trimmed_mean", [](StrategyConfig& c) { c.trim_fraction = std::nan(""); },
       "strategy.trim_fraction must be in [0, 0.5), got nan"},
      {"fedprox", [](StrategyConfig& c) { c.proximal_mu = -0.1; },
       "strategy.proximal_mu must be a finite number >= 0, got -0.1"},
      {"fedadam", [](StrategyConfig& c) { c.beta1 = 1; },
       "strategy.beta1 must be in [0, 1), got 1"},
      {"fedyogi", [](StrategyConfig& c) { c.beta2 = -0.5; },
       "strategy.beta2 must be in [0, 1), got -0.5"},
      {"fedadagrad", [](StrategyConfig& c) { c.tau = 0; },
       "strategy.tau must be a finite number > 0, got 0"},
      {"fedadam", [](StrategyConfig& c) { c.server_learning_rate = INFINITY; },
       "strategy.server_learning_rate must be a finite number > 0, got inf"},
      {"krum", [](StrategyConfig& c) { c.krum_byzantine = -1; },
       "strategy.krum_byzantine must be an integer >= 0, got -1"},
      {"krum", [](StrategyConfig& c) { c.krum_select = 0; },
       "strategy.krum_select must be an integer >= 1, got 0"},
      {"fedsgd", [](StrategyConfig&) {}, "strategy.name 'fedsgd'"},
  };
  for (const Case& k : cases) {
    StrategyConfig c;
    c.name = k.name;
    k.set(c);
    auto s = MakeStrategy(c);
    ASSERT_FALSE(s.ok()) << k.message;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.status().message()), HasSubstr(k.message));
  }
  // FedAdagrad has no β2, so any β2 is accepted there.
  StrategyConfig adagrad;
  adagrad.name = "fedadagrad";
  adagrad.beta2 = 5;
  EXPECT_TRUE(MakeStrategy(adagrad).ok());
}

// ---------------------------------------------------------------- conversions

TEST(TensorOpsTest, HalfAndBFloat16RoundTripEveryFiniteValue) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const uint16_t bits = static_cast<uint16_t>(b);
    if ((bits & 0x7c00) != 0x7c00) {
      ASSERT_EQ(FloatToHalf(HalfToFloat(bits)), bits) << std::hex << b;
    }
    if ((bits & 0x7f80) != 0x7f80) {
      ASSERT_EQ(FloatToBFloat16(BFloat16ToFloat(bits)), bits) << std::hex << b;
    }
  }
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00) << "rounds to +Inf";
  EXPECT_EQ(FloatToHalf(1.0f + 1.0f / 2048), 0x3c00) << "a tie rounds to even";
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000)
      << "half of the smallest subnormal ties to 0";
  EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(std::nanf("")))));
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(FloatToBFloat16(std::nanf("")))));
}

TEST(TensorOpsTest, FirstNonFiniteFindsTheFirstBadElement) {
  std::vector<float> v(5000, 1.0f);
  EXPECT_EQ(FirstNonFinite(reinterpret_cast<uint8_t*>(v.data()), DType::kFloat32, 5000), -1);
  v[4097] = INFINITY;
  v[4999] = std::nanf("");
  EXPECT_EQ(FirstNonFinite(reinterpret_cast<uint8_t*>(v.data()), DType::kFloat32, 5000), 4097);
  v[3] = -INFINITY;
  EXPECT_EQ(FirstNonFinite(reinterpret_cast<uint8_t*>(v.data()), DType::kFloat32, 5000), 3);
}

TEST(TensorOpsTest, ClampRunningVariancesSetsOnlyNegativeVariancesToZero) {
  // A FedAvg step whose (noised) aggregate takes one BatchNorm variance below zero.
  ModelState global = Make({Spec("bn.running_mean", DType::kFloat32, {3}),
                            Spec("bn.running_var", DType::kFloat32, {3}),
                            Spec("head.bn.running_var", DType::kFloat64, {2}),
                            Spec("conv.weight", DType::kFloat32, {2}),
                            Spec("bn.num_batches_tracked", DType::kInt64, {})});
  SetF32(global, "bn.running_mean", {0.5f, -0.5f, 0.0f});
  SetF32(global, "bn.running_var", {0.01f, 1.0f, 2.0f});
  const double var64[2] = {0.3, 0.2};
  std::memcpy(global.TensorData(Index(global, "head.bn.running_var")), var64, sizeof var64);
  SetF32(global, "conv.weight", {0.1f, 0.2f});
  ModelState delta = Make(global.manifest());
  SetF32(delta, "bn.running_mean", {-2.0f, -2.0f, 0.0f});
  SetF32(delta, "bn.running_var", {-0.06f, 0.5f, -0.25f});
  const double dvar64[2] = {-0.5, 0.1};
  std::memcpy(delta.TensorData(Index(delta, "head.bn.running_var")), dvar64, sizeof dvar64);
  SetF32(delta, "conv.weight", {-1.0f, 0.0f});
  std::unique_ptr<Strategy> fedavg = MustMake("fedavg");
  ASSERT_TRUE(fedavg->Apply(delta, &global).ok());

  std::vector<std::string> tensors;
  EXPECT_EQ(ClampRunningVariances(&global, &tensors), 2);
  EXPECT_THAT(tensors, ElementsAre("bn.running_var", "head.bn.running_var"));
  EXPECT_THAT(GetF32(global, "bn.running_var"), Pointwise(::testing::FloatEq(), {0.0f, 1.5f, 1.75f}));
  double got64[2];
  std::memcpy(got64, global.TensorData(Index(global, "head.bn.running_var")), sizeof got64);
  EXPECT_EQ(got64[0], 0.0);
  EXPECT_NEAR(got64[1], 0.3, 1e-12);
  // Means, weights and counters may be negative: untouched.
  EXPECT_THAT(GetF32(global, "bn.running_mean"), Pointwise(::testing::FloatEq(), {-1.5f, -2.5f, 0.0f}));
  EXPECT_THAT(GetF32(global, "conv.weight"), Pointwise(::testing::FloatEq(), {-0.9f, 0.2f}));
  // A model that is fine is left alone.
  tensors.clear();
  EXPECT_EQ(ClampRunningVariances(&global, &tensors), 0);
  EXPECT_TRUE(tensors.empty());
}

}  // namespace
}  // namespace dermfed::coordinator
