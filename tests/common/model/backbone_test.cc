// Specification of the backbones: every name builds, trains (forward and backward at the
// resolution DualRefNet uses), reports shapes consistent with its accessors, and drops
// exactly its ImageNet head when built without one. Numerical equality with torchvision
// is checked by the parity tests (tests/parity), which need Python.
#include "common/model/backbone.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <regex>
#include <set>
#include <string>

namespace dermfed::model {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kSide = 224;

std::shared_ptr<BackboneImpl> Make(const std::string& name, bool include_head) {
  auto backbone = MakeBackbone(name, include_head);
  EXPECT_TRUE(backbone.ok()) << backbone.status();
  return backbone.ok() ? *backbone : nullptr;
}

bool HasAnyPrefix(const std::string& key, const std::vector<std::string>& prefixes) {
  for (const auto& p : prefixes) {
    if (key.rfind(p, 0) == 0) return true;
  }
  return false;
}

// The convolution that sees the image: the first Conv2d in module order.
torch::nn::Conv2dImpl* FirstConv(torch::nn::Module& module) {
  for (const auto& m : module.modules(/*include_self=*/false)) {
    if (auto* conv = m->as<torch::nn::Conv2dImpl>()) return conv;
  }
  return nullptr;
}

class BackboneTest : public ::testing::TestWithParam<std::string> {};

TEST_P(BackboneTest, TrainsForwardAndBackwardAt224) {
  auto net = Make(GetParam(), /*include_head=*/true);
  ASSERT_NE(net, nullptr);
  net->train();
  torch::Tensor logits = net->forward(torch::randn({1, 3, kSide, kSide}));
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{1, 1000}));
  logits.square().mean().backward();

  torch::nn::Conv2dImpl* conv = FirstConv(*net);
  ASSERT_NE(conv, nullptr);
  const torch::Tensor& grad = conv->weight.grad();
  ASSERT_TRUE(grad.defined()) << GetParam() << ": first conv got no gradient";
  EXPECT_TRUE(torch::isfinite(grad).all().item<bool>())
      << GetParam() << ": first conv gradient has NaN/inf";
  EXPECT_GT(grad.abs().sum().item<double>(), 0.0)
      << GetParam() << ": first conv gradient is all zero";
}

TEST_P(BackboneTest, FeatureAndEmbeddingShapesMatchAccessors) {
  auto net = Make(GetParam(), /*include_head=*/false);
  ASSERT_NE(net, nullptr);
  net->eval();
  torch::NoGradGuard no_grad;
  torch::Tensor features = net->Features(torch::randn({1, 3, kSide, kSide}));
  const int64_t side = kSide / net->feature_stride();
  EXPECT_EQ(features.sizes(), (std::vector<int64_t>{1, net->feature_channels(), side, side}))
      << GetParam() << ": feature_channels()/feature_stride() disagree with Features()";
  torch::Tensor embedding = net->Embed(features);
  EXPECT_EQ(embedding.sizes(), (std::vector<int64_t>{1, net->embedding_dim()}))
      << GetParam() << ": embedding_dim() disagrees with Embed()";
}

TEST_P(BackboneTest, WithoutHeadDropsExactlyHeadPrefixes) {
  auto with_head = Make(GetParam(), /*include_head=*/true);
  auto without_head = Make(GetParam(), /*include_head=*/false);
  ASSERT_NE(with_head, nullptr);
  ASSERT_NE(without_head, nullptr);
  EXPECT_TRUE(with_head->has_head());
  EXPECT_FALSE(without_head->has_head());
  const std::vector<std::string> prefixes = with_head->HeadPrefixes();
  ASSERT_FALSE(prefixes.empty());
  EXPECT_EQ(without_head->HeadPrefixes(), prefixes);

  std::vector<std::string> expected_keys, head_keys;
  std::vector<std::vector<int64_t>> expected_shapes;
  for (const auto& [key, tensor] : StateDictOf(*with_head)) {
    if (HasAnyPrefix(key, prefixes)) {
      head_keys.push_back(key);
    } else {
      expected_keys.push_back(key);
      expected_shapes.push_back(tensor.sizes().vec());
    }
  }
  EXPECT_EQ(head_keys.size(), 2u) << "the head should be one Linear (weight and bias)";
  std::vector<std::string> keys;
  std::vector<std::vector<int64_t>> shapes;
  for (const auto& [key, tensor] : StateDictOf(*without_head)) {
    keys.push_back(key);
    shapes.push_back(tensor.sizes().vec());
  }
  EXPECT_EQ(keys, expected_keys);
  EXPECT_EQ(shapes, expected_shapes);
}

INSTANTIATE_TEST_SUITE_P(AllBackbones, BackboneTest, ::testing::ValuesIn(BackboneNames()),
                         [](const auto& info) { return info.param; });

TEST(MakeBackboneTest, ListsTheDocumentedNames) {
  EXPECT_EQ(BackboneNames(), (std::vector<std::string>{"vgg13", "densenet121", "resnet50",
                                                       "efficientnet_b0", "mobilenet_v2", "tiny"}));
}

TEST(MakeBackboneTest, UnknownNameFailsListingValidNames) {
  auto backbone = MakeBackbone("resnet51", true);
  ASSERT_FALSE(backbone.ok());
  EXPECT_EQ(backbone.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(backbone.status().message()), HasSubstr("resnet51"));
  for (const auto& name : BackboneNames()) {
    EXPECT_THAT(std::string(backbone.status().message()), HasSubstr(name));
  }
}

TEST(MakeBackboneTest, TinyRunsA64PixelBatch) {
  auto net = Make("tiny", /*include_head=*/true);
  ASSERT_NE(net, nullptr);
  torch::Tensor logits = net->forward(torch::randn({8, 3, 64, 64}));
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{8, 1000}));
  EXPECT_EQ(net->Features(torch::randn({8, 3, 64, 64})).size(-1), 64 / 8);
}

// 2017 DenseNet checkpoints name "norm1" as "norm.1" (and so on) and have no
// num_batches_tracked; torchvision renames them when loading, and so must we.
TEST(DenseNetTest, UpgradesLegacyKeysLikeTorchvision) {
  auto net = Make("densenet121", /*include_head=*/true);
  ASSERT_NE(net, nullptr);
  const std::regex current(R"(^(.*denselayer\d+\.(?:norm|relu|conv))([12])\.(.*)$)");
  NamedTensors legacy;
  std::vector<std::string> expected;
  for (const auto& [key, tensor] : StateDictOf(*net)) {
    if (key.find("num_batches_tracked") != std::string::npos) continue;
    expected.push_back(key);
    legacy.emplace_back(std::regex_replace(key, current, "$1.$2.$3"), tensor);
  }
  const std::string renamed = "features.denseblock1.denselayer1.norm.1.weight";
  ASSERT_TRUE(std::any_of(legacy.begin(), legacy.end(), [&](const auto& entry) {
    return entry.first == renamed;
  })) << "the test's own renaming is broken";
  std::vector<std::string> upgraded;
  for (const auto& [key, tensor] : net->UpgradeLegacyKeys(legacy)) upgraded.push_back(key);
  EXPECT_EQ(upgraded, expected);

  auto fresh = Make("densenet121", /*include_head=*/true);
  ASSERT_NE(fresh, nullptr);
  ASSERT_TRUE(LoadStateDict(*fresh, net->UpgradeLegacyKeys(legacy)).ok());
  const NamedTensors loaded = StateDictOf(*fresh);
  const NamedTensors original = StateDictOf(*net);
  for (size_t i = 0; i < loaded.size(); ++i) {
    if (loaded[i].first.find("num_batches_tracked") != std::string::npos) continue;
    EXPECT_TRUE(torch::equal(loaded[i].second, original[i].second)) << loaded[i].first;
  }
}

TEST(DenseNetTest, LeavesOtherKeysAlone) {
  auto net = Make("densenet121", /*include_head=*/true);
  ASSERT_NE(net, nullptr);
  const std::vector<std::string> untouched = {
      "features.norm5.weight", "features.transition1.norm.weight",
      // torchvision's pattern does not cover num_batches_tracked; neither do we.
      "features.denseblock1.denselayer1.norm.1.num_batches_tracked"};
  NamedTensors state;
  for (const auto& key : untouched) state.emplace_back(key, torch::zeros({1}));
  std::vector<std::string> keys;
  for (const auto& [key, tensor] : net->UpgradeLegacyKeys(state)) keys.push_back(key);
  EXPECT_EQ(keys, untouched);
}

TEST(LoadTorchvisionWeightsTest, MissingFileErrorNamesThePath) {
  auto net = Make("tiny", /*include_head=*/false);
  ASSERT_NE(net, nullptr);
  const std::string path = ::testing::TempDir() + "/no_such_checkpoint.pth";
  Status status = LoadTorchvisionWeights(*net, path);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr(path));
}

}  // namespace
}  // namespace dermfed::model
