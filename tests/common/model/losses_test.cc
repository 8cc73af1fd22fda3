// The DualRefNet loss terms against numbers worked out by hand.
#include "common/model/losses.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace dermfed::model {
namespace {

TEST(ClassWeightsTest, AreNOverKTimesCount) {
  // N = 4, K = 2: w = {4 / (2 * 1), 4 / (2 * 3)}.
  torch::Tensor w = ClassWeights({1, 3});
  ASSERT_EQ(w.numel(), 2);
  EXPECT_FLOAT_EQ(w[0].item<float>(), 2.0f);
  EXPECT_FLOAT_EQ(w[1].item<float>(), 2.0f / 3.0f);
}

TEST(ClassWeightsTest, AbsentClassGetsZeroWeightNotInfinity) {
  torch::Tensor w = ClassWeights({0, 2, 2});  // N = 4, K = 3
  EXPECT_EQ(w[0].item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(w[1].item<float>(), 4.0f / 6.0f);
  EXPECT_FLOAT_EQ(w[2].item<float>(), 4.0f / 6.0f);
}

TEST(ClassFrequencyPenaltyTest, ValueMatchesHandComputation) {
  // W = [[1, 2], [3, 0]], counts {2, 4} -> n_c / n_max = {0.5, 1}; ||W_0||^2 = 5, ||W_1||^2 = 9.
  // R = 0.5 * (0.5 * 5 + 1 * 9) = 5.75.
  torch::Tensor w = torch::tensor({{1.0f, 2.0f}, {3.0f, 0.0f}}).requires_grad_(true);
  torch::Tensor r = ClassFrequencyPenalty(w, {2, 4}, 0.5);
  EXPECT_FLOAT_EQ(r.item<float>(), 5.75f);
}

TEST(ClassFrequencyPenaltyTest, GradientIsTwoLambdaFrequencyTimesRow) {
  // dR/dW_c = 2 * λ * (n_c / n_max) * W_c -> row 0: 2*0.5*0.5*[1, 2]; row 1: 2*0.5*1*[3, 0].
  torch::Tensor w = torch::tensor({{1.0f, 2.0f}, {3.0f, 0.0f}}).requires_grad_(true);
  ClassFrequencyPenalty(w, {2, 4}, 0.5).backward();
  torch::Tensor expected = torch::tensor({{0.5f, 1.0f}, {3.0f, 0.0f}});
  EXPECT_TRUE(torch::allclose(w.grad(), expected)) << w.grad();
}

TEST(ClassFrequencyPenaltyTest, RefusesMismatchedCounts) {
  torch::Tensor w = torch::zeros({3, 2});
  EXPECT_THROW(ClassFrequencyPenalty(w, {1, 2}, 1.0), c10::Error);
}

DualRefNetOptions TinyOptions() {
  DualRefNetOptions o;
  o.backbone = "tiny";
  o.num_classes = 2;
  o.metadata_dim = 0;
  return o;
}

TEST(DualRefNetLossTest, WeightedCrossEntropyMatchesHandComputation) {
  auto net = MakeDualRefNet(TinyOptions());
  ASSERT_TRUE(net.ok()) << net.status();
  auto loss = DualRefNetLoss::Create({1, 3}, LossConfig{0.0, 0.0, true});
  ASSERT_TRUE(loss.ok()) << loss.status();
  // Sample 1: logits [0, 0], label 0 -> -log(1/2). Sample 2: logits [ln 3, 0], label 1 ->
  // -log(1/4). Weights w = {2, 2/3}; weighted mean = (2 ln2 + 2/3 ln4) / (8/3) = 1.25 ln 2.
  DualRefNetOutput out;
  out.logits = torch::tensor({{0.0f, 0.0f}, {static_cast<float>(std::log(3.0)), 0.0f}});
  torch::Tensor labels = torch::tensor({0, 1}, torch::kInt64);
  LossTerms t = (*loss)(**net, out, labels, torch::zeros({2, 3, 8, 8}));
  EXPECT_NEAR(t.ce.item<float>(), 1.25 * std::log(2.0), 1e-6);
  EXPECT_NEAR(t.total.item<float>(), 1.25 * std::log(2.0), 1e-6);
}

TEST(DualRefNetLossTest, UnweightedCrossEntropyIsPlainMean) {
  auto net = MakeDualRefNet(TinyOptions());
  ASSERT_TRUE(net.ok());
  auto loss = DualRefNetLoss::Create({1, 3}, LossConfig{0.0, 0.0, false});
  ASSERT_TRUE(loss.ok());
  DualRefNetOutput out;
  out.logits = torch::tensor({{0.0f, 0.0f}, {static_cast<float>(std::log(3.0)), 0.0f}});
  LossTerms t = (*loss)(**net, out, torch::tensor({0, 1}, torch::kInt64), torch::zeros({2, 3, 8, 8}));
  EXPECT_NEAR(t.ce.item<float>(), 0.5 * (std::log(2.0) + std::log(4.0)), 1e-6);
}

TEST(DualRefNetLossTest, TotalIsCePlusLambdaSrPlusPenalty) {
  auto net = MakeDualRefNet(TinyOptions());
  ASSERT_TRUE(net.ok());
  LossConfig config{0.25, 0.01, true};
  auto loss = DualRefNetLoss::Create({5, 10}, config);
  ASSERT_TRUE(loss.ok());
  (*net)->train();
  torch::Tensor image = torch::rand({2, 3, 32, 32});
  DualRefNetOutput out = (*net)->forward(image, torch::Tensor());
  ASSERT_TRUE(out.sr.defined());
  LossTerms t = (*loss)(**net, out, torch::tensor({0, 1}, torch::kInt64), image);
  const float sr = torch::l1_loss(out.sr, image).item<float>();
  const float cf =
      ClassFrequencyPenalty((*net)->classifier()->weight, {5, 10}, 0.01).item<float>();
  EXPECT_NEAR(t.sr.item<float>(), sr, 1e-6);
  EXPECT_NEAR(t.cf.item<float>(), cf, 1e-7);
  EXPECT_NEAR(t.total.item<float>(), t.ce.item<float>() + 0.25f * sr + cf, 1e-5);
}

TEST(DualRefNetLossTest, SwitchedOffTermsAreZero) {
  auto net = MakeDualRefNet(TinyOptions());
  ASSERT_TRUE(net.ok());
  auto loss = DualRefNetLoss::Create({5, 10}, LossConfig{0.0, 0.0, true});
  ASSERT_TRUE(loss.ok());
  (*net)->train();
  torch::Tensor image = torch::rand({2, 3, 32, 32});
  LossTerms t = (*loss)(**net, (*net)->forward(image, torch::Tensor()),
                        torch::tensor({0, 1}, torch::kInt64), image);
  EXPECT_EQ(t.sr.item<float>(), 0.0f);
  EXPECT_EQ(t.cf.item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(t.total.item<float>(), t.ce.item<float>());
}

TEST(DualRefNetLossTest, RefusesSiteWithoutRows) {
  auto loss = DualRefNetLoss::Create({0, 0, 0}, LossConfig{});
  ASSERT_FALSE(loss.ok());
  EXPECT_NE(loss.status().message().find("no training rows"), std::string::npos);
}

}  // namespace
}  // namespace dermfed::model
