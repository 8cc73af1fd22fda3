// DualRefNet's structure and behaviour: the branches, the SR stage, and that it learns.
#include "common/model/dualrefnet.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/model/losses.h"
#include "common/model/state_dict.h"

namespace dermfed::model {
namespace {

DualRefNetOptions Tiny(int64_t metadata_dim = 4, int64_t sr_factor = 2) {
  DualRefNetOptions o;
  o.backbone = "tiny";
  o.num_classes = 3;
  o.metadata_dim = metadata_dim;
  o.sr_factor = sr_factor;
  return o;
}

bool HasPrefix(const NamedTensors& sd, const std::string& prefix) {
  for (const auto& [name, t] : sd) {
    if (name.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

TEST(DualRefNetTest, StateDictHasEveryBranchUnderItsName) {
  auto net = MakeDualRefNet(Tiny());
  ASSERT_TRUE(net.ok()) << net.status();
  NamedTensors sd = StateDictOf(**net);
  for (const char* p : {"backbone.", "metadata.", "fusion.", "classifier.", "sr_decoder."}) {
    EXPECT_TRUE(HasPrefix(sd, p)) << "no tensor under " << p;
  }
}

TEST(DualRefNetTest, ZeroMetadataFeaturesMeansImageOnly) {
  auto net = MakeDualRefNet(Tiny(/*metadata_dim=*/0));
  ASSERT_TRUE(net.ok());
  EXPECT_FALSE(HasPrefix(StateDictOf(**net), "metadata."));
  (*net)->eval();
  auto out = (*net)->forward(torch::rand({2, 3, 32, 32}), torch::Tensor());
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, 3}));
}

TEST(DualRefNetTest, SrOutputHasTheFullResolutionInputSize) {
  for (int64_t factor : {2, 3, 4}) {
    auto net = MakeDualRefNet(Tiny(4, factor));
    ASSERT_TRUE(net.ok());
    (*net)->train();
    auto out = (*net)->forward(torch::rand({2, 3, 96, 80}), torch::rand({2, 4}));
    ASSERT_TRUE(out.sr.defined()) << "factor " << factor;
    EXPECT_EQ(out.sr.sizes(), (std::vector<int64_t>{2, 3, 96, 80})) << "factor " << factor;
  }
}

TEST(DualRefNetTest, SrIsSkippedAtInference) {
  auto net = MakeDualRefNet(Tiny());
  ASSERT_TRUE(net.ok());
  (*net)->eval();
  auto out = (*net)->forward(torch::rand({1, 3, 64, 64}), torch::rand({1, 4}));
  EXPECT_FALSE(out.sr.defined());
}

TEST(DualRefNetTest, SrFactorOneRemovesTheDecoder) {
  auto net = MakeDualRefNet(Tiny(4, /*sr_factor=*/1));
  ASSERT_TRUE(net.ok());
  EXPECT_FALSE((*net)->has_sr_decoder());
  EXPECT_FALSE(HasPrefix(StateDictOf(**net), "sr_decoder."));
  (*net)->train();
  EXPECT_FALSE((*net)->forward(torch::rand({1, 3, 32, 32}), torch::rand({1, 4})).sr.defined());
}

TEST(DualRefNetTest, WrongMetadataWidthIsAClearError) {
  auto net = MakeDualRefNet(Tiny(4));
  ASSERT_TRUE(net.ok());
  try {
    (*net)->forward(torch::rand({2, 3, 32, 32}), torch::rand({2, 7}));
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("metadata of shape 2 x 4"), std::string::npos) << e.what();
  }
}

TEST(DualRefNetTest, UnknownBackboneListsTheValidOnes) {
  DualRefNetOptions o = Tiny();
  o.backbone = "alexnet";
  auto net = MakeDualRefNet(o);
  ASSERT_FALSE(net.ok());
  EXPECT_NE(net.status().message().find("densenet121"), std::string::npos) << net.status();
}

TEST(DualRefNetTest, LearnsAFixedBatch) {
  // Labels depend on the image's mean colour and the metadata: a few Adam steps must fit them.
  torch::manual_seed(1);
  auto net = MakeDualRefNet(Tiny());
  ASSERT_TRUE(net.ok());
  torch::Tensor labels = torch::tensor({0, 1, 2, 0, 1, 2, 0, 1}, torch::kInt64);
  torch::Tensor image = torch::rand({8, 3, 32, 32}) * 0.2;
  torch::Tensor meta = torch::zeros({8, 4});
  for (int64_t i = 0; i < 8; ++i) {
    const int64_t c = labels[i].item<int64_t>();
    image[i][c] += 0.8;
    meta[i][c] = 1.0;
  }
  auto loss = DualRefNetLoss::Create({3, 3, 2}, LossConfig{});
  ASSERT_TRUE(loss.ok());
  torch::optim::Adam opt((*net)->parameters(), torch::optim::AdamOptions(3e-3));
  (*net)->train();
  float first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    opt.zero_grad();
    LossTerms t = (*loss)(**net, (*net)->forward(image, meta), labels, image);
    t.total.backward();
    opt.step();
    if (step == 0) first = t.total.item<float>();
    last = t.total.item<float>();
  }
  EXPECT_LT(last, 0.5f * first) << "loss went from " << first << " to " << last;
  (*net)->eval();
  auto predicted = (*net)->forward(image, meta).logits.argmax(1);
  EXPECT_TRUE(torch::equal(predicted, labels)) << predicted;
}

}  // namespace
}  // namespace dermfed::model
