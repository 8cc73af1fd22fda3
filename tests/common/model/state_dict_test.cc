// StateDictOf names and orders tensors as PyTorch does; LoadStateDict is strict and atomic.
#include "common/model/state_dict.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>

#include "common/model/dualrefnet.h"
#include "common/model/module_state.h"

namespace dermfed::model {
namespace {

struct BlockImpl : torch::nn::Module {
  BlockImpl() {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3).bias(false)));
    bn = register_module("bn", torch::nn::BatchNorm2d(4));
    scale = register_parameter("scale", torch::ones({1}));
  }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
  torch::Tensor scale;
};
TORCH_MODULE(Block);

std::vector<std::string> Keys(const NamedTensors& t) {
  std::vector<std::string> k;
  for (const auto& [name, tensor] : t) k.push_back(name);
  return k;
}

TEST(StateDictOfTest, OwnTensorsFirstThenChildrenInOrderWithoutAbsentBias) {
  Block block;
  // PyTorch's order: the module's own parameters, its buffers, then each child.
  std::vector<std::string> expected = {"scale",          "conv.weight",      "bn.weight",
                                       "bn.bias",        "bn.running_mean",  "bn.running_var",
                                       "bn.num_batches_tracked"};
  EXPECT_EQ(Keys(StateDictOf(*block)), expected);
}

TEST(LoadStateDictTest, CopiesValues) {
  Block a, b;
  torch::NoGradGuard g;
  a->conv->weight.fill_(0.5);
  ASSERT_TRUE(LoadStateDict(*b, StateDictOf(*a)).ok());
  EXPECT_TRUE(torch::equal(a->conv->weight, b->conv->weight));
}

TEST(LoadStateDictTest, MissingTensorIsNamedAndNothingChanges) {
  Block a, b;
  {
    torch::NoGradGuard g;
    a->scale.fill_(7);
  }
  NamedTensors sd = StateDictOf(*a);
  sd.erase(sd.begin() + 2);  // bn.weight
  Status s = LoadStateDict(*b, sd);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("missing tensor 'bn.weight'"), std::string::npos) << s;
  EXPECT_EQ(b->scale.item<float>(), 1.0f) << "a failed load must not change the module";
}

TEST(LoadStateDictTest, ExtraTensorIsNamed) {
  Block a, b;
  NamedTensors sd = StateDictOf(*a);
  sd.emplace_back("head.weight", torch::zeros({2, 2}));
  Status s = LoadStateDict(*b, sd);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("unexpected tensor 'head.weight'"), std::string::npos) << s;
}

TEST(LoadStateDictTest, MisShapedTensorIsNamedWithBothShapes) {
  Block a, b;
  NamedTensors sd = StateDictOf(*a);
  sd[1].second = torch::zeros({4, 3, 5, 5});
  Status s = LoadStateDict(*b, sd);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("'conv.weight' has shape [4, 3, 5, 5], the model expects [4, 3, 3, 3]"),
            std::string::npos)
      << s;
}

TEST(LoadStateDictTest, MissingBatchCounterIsZeroFilledLikePyTorch) {
  Block a, b;
  NamedTensors sd = StateDictOf(*a);
  sd.pop_back();  // bn.num_batches_tracked, absent from pre-0.4.1 checkpoints
  {
    torch::NoGradGuard g;
    b->bn->num_batches_tracked.fill_(5);
  }
  ASSERT_TRUE(LoadStateDict(*b, sd).ok());
  EXPECT_EQ(b->bn->num_batches_tracked.item<int64_t>(), 0);
  LoadOptions strict;
  strict.allow_missing_num_batches_tracked = false;
  EXPECT_FALSE(LoadStateDict(*b, sd, strict).ok());
}

TEST(LoadStateDictTest, IgnoredPrefixesAreNeitherRequiredNorRefused) {
  Block a, b;
  NamedTensors sd = StateDictOf(*a);
  sd.erase(sd.begin() + 1);  // conv.weight
  sd.emplace_back("conv.extra", torch::zeros({1}));
  LoadOptions o;
  o.ignore_prefixes = {"conv."};
  EXPECT_TRUE(LoadStateDict(*b, sd, o).ok());
}

TEST(ModuleStateTest, RoundTripIsBitExactAndPredictsTheSame) {
  DualRefNetOptions o;
  o.backbone = "tiny";
  o.num_classes = 4;
  o.metadata_dim = 5;
  auto a = MakeDualRefNet(o);
  auto b = MakeDualRefNet(o);
  ASSERT_TRUE(a.ok() && b.ok());
  auto state = ToModelState(**a);
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_TRUE(LoadModelStateInto(*state, **b).ok());
  auto again = ToModelState(**b);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(state->SameLayout(*again));
  ASSERT_EQ(state->size_bytes(), again->size_bytes());
  EXPECT_EQ(std::memcmp(state->data(), again->data(), state->size_bytes()), 0);
  (*a)->eval();
  (*b)->eval();
  torch::Tensor x = torch::rand({2, 3, 32, 32});
  torch::Tensor m = torch::rand({2, 5});
  EXPECT_TRUE(torch::equal((*a)->forward(x, m).logits, (*b)->forward(x, m).logits));
}

TEST(ModuleStateTest, WrongArchitectureIsRefusedNamingTheTensor) {
  DualRefNetOptions o;
  o.backbone = "tiny";
  o.num_classes = 4;
  auto four = MakeDualRefNet(o);
  o.num_classes = 6;
  auto six = MakeDualRefNet(o);
  ASSERT_TRUE(four.ok() && six.ok());
  auto state = ToModelState(**four);
  ASSERT_TRUE(state.ok());
  Status s = LoadModelStateInto(*state, **six);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("classifier.weight"), std::string::npos) << s;
}

}  // namespace
}  // namespace dermfed::model
