// Permutation importance of metadata features (client/explain.h): the groups follow the
// encoder's layout, permuting keeps each row's encoding valid, the cached image path equals
// DualRefNet's forward, a feature the label depends on is found and one it does not is not,
// and what a site reports combines back at the coordinator unchanged.
#include "client/explain.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "client/data/metadata_encoder.h"
#include "client/data/metadata_schema.h"
#include "client/image/codec.h"
#include "coordinator/explanations.h"
#include "tests/client/data/test_files.h"

namespace dermfed::client {
namespace {

using ::testing::HasSubstr;

// color: 2 values + missing (slots 0-2); age: numeric (3-4); biopsed: unused;
// site: 3 values + missing (5-8). Width 9.
constexpr char kSchema[] = R"({
  "format_version": 1, "name": "explain-test", "class_names": ["RED", "BLUE"],
  "columns": [
    {"name": "color", "type": "categorical", "values": ["red", "blue"]},
    {"name": "age", "type": "numeric", "mean": 50, "std": 10},
    {"name": "biopsed", "type": "categorical", "values": ["False", "True"], "used": false},
    {"name": "site", "type": "categorical", "values": ["arm", "leg", "face"]}
  ]})";
constexpr int kWidth = 9;
const std::vector<std::string> kClasses = {"RED", "BLUE"};

MetadataSchema Schema() {
  auto s = ParseSchemaJson(kSchema, "explain_test");
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

MetadataEncoder Encoder(const MetadataSchema& schema) {
  auto e = MetadataEncoder::Create(schema, schema.ColumnNames());
  EXPECT_TRUE(e.ok()) << e.status();
  return *e;
}

std::vector<FeatureGroup> Groups() {
  const MetadataSchema schema = Schema();
  auto g = FeatureGroupsOf(schema, Encoder(schema).feature_names());
  EXPECT_TRUE(g.ok()) << g.status();
  return g.ok() ? *g : std::vector<FeatureGroup>();
}

// `n` rows: label = color (0 red, 1 blue), age and site drawn independently of it.
struct Rows {
  std::vector<float> metadata;
  std::vector<int64_t> labels;
};

Rows MakeRows(int n, uint64_t seed) {
  const MetadataSchema schema = Schema();
  const MetadataEncoder encoder = Encoder(schema);
  std::mt19937_64 rng(seed);
  const char* sites[] = {"arm", "leg", "face"};
  Rows rows;
  for (int i = 0; i < n; ++i) {
    const int label = static_cast<int>(rng() % 2);
    const std::vector<std::string> values = {
        label == 0 ? "red" : "blue", std::to_string(20 + rng() % 60), "False", sites[rng() % 3]};
    auto encoded = encoder.Encode(values);
    EXPECT_TRUE(encoded.ok()) << encoded.status();
    rows.metadata.insert(rows.metadata.end(), encoded->begin(), encoded->end());
    rows.labels.push_back(label);
  }
  return rows;
}

model::DualRefNet TinyNet(int64_t sr_factor) {
  model::DualRefNetOptions o;
  o.backbone = "tiny";
  o.num_classes = 2;
  o.metadata_dim = kWidth;
  o.sr_factor = sr_factor;
  o.sr_channels = 4;
  auto net = model::MakeDualRefNet(o);
  EXPECT_TRUE(net.ok()) << net.status();
  return *net;
}

// Zero weights everywhere except a path "color=red -> class RED, color=blue -> class BLUE":
// the prediction depends on the color alone, with p(true class) = sigmoid(4) ~ 0.982.
void WireColorOnly(model::DualRefNetImpl& net) {
  torch::NoGradGuard no_grad;
  for (auto& p : net.parameters()) p.zero_();
  const int64_t d = net.backbone().embedding_dim();
  auto params = net.named_parameters();
  params["metadata.0.weight"][0][0] = 1;  // hidden 0 <- color=red
  params["metadata.0.weight"][1][1] = 1;  // hidden 1 <- color=blue
  params["metadata.3.weight"][0][0] = 1;
  params["metadata.3.weight"][1][1] = 1;
  params["fusion.0.weight"][0][d + 0] = 1;
  params["fusion.0.weight"][1][d + 1] = 1;
  params["classifier.weight"][0][0] = 4;
  params["classifier.weight"][1][1] = 4;
}

double FeatureOverall(const FeatureImportance& fi, const std::string& name) {
  for (size_t f = 0; f < fi.features.size(); ++f) {
    if (fi.features[f] == name) return fi.overall[f];
  }
  ADD_FAILURE() << "no feature " << name;
  return NAN;
}

TEST(FeatureGroupsTest, OneGroupPerUsedColumnInTheEncodersLayout) {
  const std::vector<FeatureGroup> g = Groups();
  ASSERT_EQ(g.size(), 3u) << "the unused column 'biopsed' must not be a feature";
  EXPECT_EQ(g[0].name, "color");
  EXPECT_EQ(g[0].offset, 0);
  EXPECT_EQ(g[0].width, 3);  // red, blue, missing
  EXPECT_EQ(g[1].name, "age");
  EXPECT_EQ(g[1].offset, 3);
  EXPECT_EQ(g[1].width, 2);  // value, missing indicator
  EXPECT_EQ(g[2].name, "site");
  EXPECT_EQ(g[2].offset, 5);
  EXPECT_EQ(g[2].width, 4);
}

TEST(FeatureGroupsTest, RefusesSlotNamesThatDoNotFitTheSchema) {
  const MetadataSchema schema = Schema();
  std::vector<std::string> names = Encoder(schema).feature_names();
  std::swap(names[2], names[3]);  // "color:missing" <-> "age"
  auto swapped = FeatureGroupsOf(schema, names);
  ASSERT_FALSE(swapped.ok());
  EXPECT_THAT(swapped.status().message(), HasSubstr("slot 2 is 'age'"));
  names = Encoder(schema).feature_names();
  names.pop_back();
  EXPECT_FALSE(FeatureGroupsOf(schema, names).ok()) << "a missing slot must be refused";
}

TEST(PermuteGroupTest, MovesAFeaturesSlotsTogetherAndLeavesTheOthers) {
  const Rows rows = MakeRows(40, 3);
  const std::vector<FeatureGroup> groups = Groups();
  const FeatureGroup& site = groups[2];
  std::vector<int64_t> perm(40);
  std::iota(perm.begin(), perm.end(), 0);
  std::mt19937_64 rng(5);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<float> m = rows.metadata;
  PermuteGroup(site, perm, kWidth, m.data());
  for (int i = 0; i < 40; ++i) {
    float one_hot_sum = 0;
    for (int s = 0; s < kWidth; ++s) {
      const bool in_group = s >= site.offset && s < site.offset + site.width;
      const float expected =
          in_group ? rows.metadata[perm[i] * kWidth + s] : rows.metadata[i * kWidth + s];
      EXPECT_EQ(m[i * kWidth + s], expected) << "row " << i << " slot " << s;
      if (in_group) one_hot_sum += m[i * kWidth + s];
    }
    EXPECT_EQ(one_hot_sum, 1.0f) << "row " << i << ": the site block is no longer one-hot";
  }
}

TEST(ExplainTest, CachedImagePathEqualsTheFullForward) {
  model::DualRefNet net = TinyNet(/*sr_factor=*/2);
  net->eval();
  const Rows rows = MakeRows(6, 7);
  torch::Tensor images = torch::randn({6, 3, 32, 32});
  torch::Tensor meta =
      torch::from_blob(const_cast<float*>(rows.metadata.data()), {6, kWidth}, torch::kFloat)
          .clone();
  auto e = EmbedImages(*net, images);
  ASSERT_TRUE(e.ok()) << e.status();
  auto cached = ProbabilitiesFromEmbeddings(*net, *e, meta);
  ASSERT_TRUE(cached.ok()) << cached.status();
  torch::NoGradGuard no_grad;
  torch::Tensor full = torch::softmax(net->forward(images, meta).logits, 1);
  EXPECT_LT((full - *cached).abs().max().item<double>(), 1e-5)
      << "client/explain.cc no longer follows DualRefNetImpl::Forward";
}

TEST(ExplainTest, TheFeatureTheLabelDependsOnMattersAndIrrelevantOnesDoNot) {
  model::DualRefNet net = TinyNet(/*sr_factor=*/1);
  WireColorOnly(*net);
  const Rows rows = MakeRows(200, 11);
  auto e = EmbedImages(*net, torch::randn({200, 3, 16, 16}));
  ASSERT_TRUE(e.ok()) << e.status();
  ImportanceConfig config;
  config.repeats = 5;
  auto fi =
      ImportanceFromEmbeddings(*net, *e, rows.metadata, rows.labels, Groups(), kClasses, config);
  ASSERT_TRUE(fi.ok()) << fi.status();
  ASSERT_EQ(fi->features, (std::vector<std::string>{"color", "age", "site"}));
  ASSERT_EQ(fi->classes, kClasses);
  EXPECT_EQ(fi->rows[0] + fi->rows[1], 200);
  const double p = 1 / (1 + std::exp(-4.0));  // p(true class) with the right color
  for (int c = 0; c < 2; ++c) {
    EXPECT_NEAR(fi->base_score[c], p, 1e-5);
    // About half the rows get the other color: drop ~ (p - (1 - p)) / 2 ~ 0.48.
    EXPECT_GT(fi->importance[c][0], 0.3) << kClasses[c];
    EXPECT_LT(fi->importance[c][0], 0.7) << kClasses[c];
    EXPECT_EQ(fi->importance[c][1], 0.0) << "age does not reach the output";
    EXPECT_EQ(fi->importance[c][2], 0.0) << "site does not reach the output";
  }
  EXPECT_GT(FeatureOverall(*fi, "color"), 0.3);
  EXPECT_EQ(FeatureOverall(*fi, "age"), 0.0);

  // Same seed, same numbers.
  auto again =
      ImportanceFromEmbeddings(*net, *e, rows.metadata, rows.labels, Groups(), kClasses, config);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->importance, fi->importance);
}

TEST(ExplainTest, FindsTheFeatureATrainedModelLearned) {
  torch::manual_seed(1);
  model::DualRefNet net = TinyNet(/*sr_factor=*/1);
  const Rows train = MakeRows(256, 21);
  torch::Tensor meta =
      torch::from_blob(const_cast<float*>(train.metadata.data()), {256, kWidth}, torch::kFloat)
          .clone();
  torch::Tensor labels = torch::tensor(train.labels, torch::kLong);
  // One image for every row: only the metadata can tell the classes apart.
  const torch::Tensor image = torch::randn({1, 3, 8, 8});
  torch::Tensor images = image.expand({256, 3, 8, 8}).contiguous();
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(3e-3));
  net->train();
  for (int step = 0; step < 40; ++step) {
    const int64_t start = (step * 64) % 256;
    opt.zero_grad();
    auto out = net->Forward(images.slice(0, start, start + 64), meta.slice(0, start, start + 64),
                            /*with_sr=*/false);
    torch::nn::functional::cross_entropy(out.logits, labels.slice(0, start, start + 64)).backward();
    opt.step();
  }
  const Rows held_out = MakeRows(200, 22);
  auto e = EmbedImages(*net, image.expand({200, 3, 8, 8}).contiguous());
  ASSERT_TRUE(e.ok()) << e.status();
  ImportanceConfig config;
  auto fi = ImportanceFromEmbeddings(*net, *e, held_out.metadata, held_out.labels, Groups(),
                                     kClasses, config);
  ASSERT_TRUE(fi.ok()) << fi.status();
  const double color = FeatureOverall(*fi, "color");
  const double age = FeatureOverall(*fi, "age");
  const double site = FeatureOverall(*fi, "site");
  EXPECT_GT(fi->base_score[0], 0.7) << "the model did not learn the color";
  EXPECT_GT(fi->base_score[1], 0.7) << "the model did not learn the color";
  EXPECT_GT(color, 0.2) << "the label is the color; the model should have learned it";
  EXPECT_LT(std::abs(age), 0.05);
  EXPECT_LT(std::abs(site), 0.05);
  EXPECT_GT(color, 5 * std::max(std::abs(age), std::abs(site)));
}

// Through the loader, as a site does: image files, a row cap, the forward self-check.
TEST(ExplainTest, ComputeImportanceReadsImagesAndCapsRows) {
  testing::TempDir dir;
  const Rows rows = MakeRows(20, 31);
  LoaderSource source;
  for (int r = 0; r < 20; ++r) {
    Image image;
    image.width = image.height = 16;
    image.rgb.assign(16 * 16 * 3, static_cast<uint8_t>(r * 10));
    auto png = EncodePng(image);
    ASSERT_TRUE(png.ok()) << png.status();
    const std::string path = dir.Join("img_" + std::to_string(r) + ".png");
    ASSERT_TRUE(WriteFileBytes(path, *png).ok());
    source.image_paths.push_back(path);
  }
  source.labels = rows.labels;
  source.metadata = rows.metadata;
  source.metadata_width = kWidth;
  model::DualRefNet net = TinyNet(/*sr_factor=*/1);
  WireColorOnly(*net);
  ImportanceConfig config;
  config.max_rows = 12;
  config.eval.image_size = 16;
  config.eval.batch_size = 5;
  config.eval.workers = 1;
  std::vector<int> all(20);
  std::iota(all.begin(), all.end(), 0);
  auto fi = ComputeImportance(*net, torch::kCPU, source, all, Groups(), kClasses, config);
  ASSERT_TRUE(fi.ok()) << fi.status();
  EXPECT_EQ(fi->rows[0] + fi->rows[1], 12) << "site.explain_rows must cap the rows scored";
  EXPECT_GT(fi->overall[0], 0.2);
  EXPECT_EQ(fi->overall[1], 0.0);
}

TEST(ExplainTest, ModelWithoutMetadataHasNothingToExplain) {
  model::DualRefNetOptions o;
  o.metadata_dim = 0;
  o.num_classes = 2;
  auto net = model::MakeDualRefNet(o);
  ASSERT_TRUE(net.ok());
  LoaderSource source;
  source.image_paths = {"x.png"};
  source.labels = {0};
  auto fi = ComputeImportance(**net, torch::kCPU, source, {0}, {}, kClasses, {});
  ASSERT_FALSE(fi.ok());
  EXPECT_THAT(fi.status().message(), HasSubstr("takes no metadata"));
}

TEST(ImportanceMetricsTest, KeysNameClassAndFeatureAndSkipClassesWithoutRows) {
  FeatureImportance fi;
  fi.features = {"color", "age"};
  fi.classes = {"RED", "BLUE"};
  fi.importance = {{0.25, 0.0}, {NAN, NAN}};
  fi.rows = {7, 0};
  const auto m = ImportanceMetrics(fi);
  EXPECT_EQ(m.at("importance/RED/color"), 0.25);
  EXPECT_EQ(m.at("importance/RED/age"), 0.0);
  EXPECT_EQ(m.at("importance_rows/RED"), 7);
  EXPECT_EQ(m.at("importance_rows/BLUE"), 0);
  EXPECT_EQ(m.count("importance/BLUE/color"), 0u) << "no rows, no importance";
}

// What a site computes comes back out of the coordinator's combination unchanged.
TEST(ImportanceMetricsTest, OneSitesReportCombinesToItsOwnTable) {
  model::DualRefNet net = TinyNet(/*sr_factor=*/1);
  WireColorOnly(*net);
  const Rows rows = MakeRows(50, 41);
  auto e = EmbedImages(*net, torch::randn({50, 3, 16, 16}));
  ASSERT_TRUE(e.ok());
  auto fi = ImportanceFromEmbeddings(*net, *e, rows.metadata, rows.labels, Groups(), kClasses, {});
  ASSERT_TRUE(fi.ok()) << fi.status();
  v1::MetricsReport report;
  for (const auto& [k, v] : ImportanceMetrics(*fi)) (*report.mutable_metrics())[k] = v;
  const std::string json = coordinator::CombinedImportanceJson({{"site-a", report}}, kClasses);
  auto j = nlohmann::json::parse(json);
  ASSERT_EQ(j["features"][0], "color") << json;
  EXPECT_EQ(j["sites"], 1);
  EXPECT_EQ(j["rows"][0].get<int64_t>() + j["rows"][1].get<int64_t>(), 50);
  for (int c = 0; c < 2; ++c) {
    EXPECT_NEAR(j["importance"][c][0].get<double>(), fi->importance[c][0], 1e-9) << json;
  }
  EXPECT_NEAR(j["overall"][0].get<double>(), fi->overall[0], 1e-9);
}

}  // namespace
}  // namespace dermfed::client
