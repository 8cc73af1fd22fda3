#include "client/data/split.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "client/data/pad_ufes_20_reader.h"
#include "tests/client/data/test_files.h"

namespace dermfed::client {
namespace {

using ::testing::HasSubstr;

// A PAD-UFES-20-sized dataset: 2,298 lesion images of ~1,400 patients with 1 to 5 images
// each, classes in the release's proportions (BCC 845, ACK 730, NEV 244, SEK 235, SCC 192,
// MEL 52), and patients whose lesions tend to share a diagnosis, as in the real data.
Dataset PadLikeDataset() {
  Dataset dataset;
  dataset.source_file = "metadata.csv";
  dataset.class_names = PadUfes20Reader::ClassNames();  // ACK BCC MEL NEV SCC SEK
  std::vector<int> pool;
  const int counts[] = {730, 845, 52, 244, 192, 235};
  for (int c = 0; c < 6; ++c) pool.insert(pool.end(), counts[c], c);
  // A fixed linear congruential generator: the fixture is the same everywhere.
  uint64_t state = 12345;
  auto next = [&state](uint64_t n) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % n;
  };
  for (size_t i = pool.size(); i > 1; --i) std::swap(pool[i - 1], pool[next(i)]);
  // Patients take runs of the shuffled labels, sorted so that a patient's lesions mostly
  // share a class.
  int patient = 0;
  for (size_t i = 0; i < pool.size();) {
    size_t size = std::min<size_t>(1 + next(5) * next(2), pool.size() - i);
    std::sort(pool.begin() + i, pool.begin() + i + size);
    for (size_t k = 0; k < size; ++k, ++i) {
      DatasetRow row;
      row.label = pool[i];
      row.group_id = "PAT_" + std::to_string(patient);
      row.row_id = "img_" + std::to_string(i);
      row.source_line = static_cast<int64_t>(i) + 2;
      dataset.rows.push_back(row);
    }
    ++patient;
  }
  return dataset;
}

TEST(SplitByGroupTest, NoPatientCrossesParts) {
  Dataset dataset = PadLikeDataset();
  ASSERT_GT(dataset.NumGroups(), 1000);
  ASSERT_LT(dataset.NumGroups(), static_cast<int64_t>(dataset.rows.size()))
      << "the fixture must have patients with several images";
  auto split = SplitByGroup(dataset, SplitFractions(), /*seed=*/7);
  ASSERT_TRUE(split.ok()) << split.status();

  std::map<std::string, std::set<int>> parts_of_patient;
  std::set<int> all_rows;
  int part = 0;
  for (const std::vector<int>* rows : {&split->train, &split->validation, &split->test}) {
    for (int i : *rows) {
      parts_of_patient[dataset.rows[i].group_id].insert(part);
      EXPECT_TRUE(all_rows.insert(i).second) << "row " << i << " is in two parts";
    }
    ++part;
  }
  EXPECT_EQ(all_rows.size(), dataset.rows.size()) << "every row is in some part";
  for (const auto& [patient, parts] : parts_of_patient) {
    EXPECT_EQ(parts.size(), 1u) << patient << " has images in " << parts.size() << " parts";
  }
}

TEST(SplitByGroupTest, EveryClassIsSplitNearTheRequestedFractions) {
  Dataset dataset = PadLikeDataset();
  const std::vector<int64_t> totals = dataset.ClassCounts();
  for (uint64_t seed : {1, 2, 3}) {
    auto split = SplitByGroup(dataset, SplitFractions{0.7, 0.15, 0.15}, seed);
    ASSERT_TRUE(split.ok()) << split.status();
    const double fractions[] = {0.7, 0.15, 0.15};
    const std::vector<int>* parts[] = {&split->train, &split->validation, &split->test};
    for (int p = 0; p < 3; ++p) {
      EXPECT_NEAR(static_cast<double>(parts[p]->size()) / dataset.rows.size(), fractions[p], 0.01)
          << "part " << p << " seed " << seed;
      std::vector<int64_t> counts = dataset.ClassCounts(*parts[p]);
      for (size_t c = 0; c < totals.size(); ++c) {
        double share = static_cast<double>(counts[c]) / totals[c];
        // Within 3 points for every class, MEL's 52 images included.
        EXPECT_NEAR(share, fractions[p], 0.03)
            << dataset.class_names[c] << " in part " << p << " seed " << seed << ": " << counts[c]
            << " of " << totals[c];
      }
    }
  }
}

TEST(SplitByGroupTest, IsDeterministicForASeedAndVariesAcrossSeeds) {
  Dataset dataset = PadLikeDataset();
  auto a = SplitByGroup(dataset, SplitFractions(), 42);
  auto b = SplitByGroup(dataset, SplitFractions(), 42);
  auto c = SplitByGroup(dataset, SplitFractions(), 43);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->train, b->train);
  EXPECT_EQ(a->validation, b->validation);
  EXPECT_EQ(a->test, b->test);
  EXPECT_NE(a->test, c->test);
}

TEST(SplitByGroupTest, ZeroFractionLeavesAPartEmpty) {
  Dataset dataset = PadLikeDataset();
  auto split = SplitByGroup(dataset, SplitFractions{0.8, 0.0, 0.2}, 1);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_TRUE(split->validation.empty());
  EXPECT_EQ(split->train.size() + split->test.size(), dataset.rows.size());
}

TEST(SplitByGroupTest, KeepsTheReadersPatientsTogether) {
  testing::TempDir dir;
  testing::WritePadDataset(dir, testing::PadRows(), testing::PadImages());
  auto dataset = PadUfes20Reader().Read(dir.path());
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  auto split = SplitByGroup(*dataset, SplitFractions{0.5, 0.25, 0.25}, 3);
  ASSERT_TRUE(split.ok()) << split.status();
  // Rows 0 and 3 are PAT_46's two lesions.
  for (const std::vector<int>* part : {&split->train, &split->validation, &split->test}) {
    bool has0 = std::count(part->begin(), part->end(), 0) > 0;
    bool has3 = std::count(part->begin(), part->end(), 3) > 0;
    EXPECT_EQ(has0, has3);
  }
}

TEST(SplitByGroupTest, RejectsBadFractions) {
  Dataset dataset = PadLikeDataset();
  EXPECT_THAT(SplitByGroup(dataset, SplitFractions{0.7, 0.2, 0.2}, 1).status().message(),
              HasSubstr("expected 1"));
  EXPECT_THAT(SplitByGroup(dataset, SplitFractions{1.2, -0.1, -0.1}, 1).status().message(),
              HasSubstr("validation fraction is -0.1"));
  EXPECT_FALSE(SplitByGroup(dataset, SplitFractions{NAN, 0.5, 0.5}, 1).ok());
}

TEST(SplitByGroupTest, EmptyDatasetIsAnError) {
  Dataset dataset;
  dataset.source_file = "metadata.csv";
  dataset.class_names = {"a"};
  EXPECT_THAT(SplitByGroup(dataset, SplitFractions(), 1).status().message(),
              HasSubstr("metadata.csv: cannot split an empty dataset"));
}

TEST(SplitByGroupTest, TooFewGroupsIsAnErrorNamingThePart) {
  Dataset dataset;
  dataset.source_file = "metadata.csv";
  dataset.class_names = {"a"};
  for (int i = 0; i < 4; ++i) dataset.rows.push_back(DatasetRow{"", {}, 0, "P1", "r", i + 2});
  dataset.rows.push_back(DatasetRow{"", {}, 0, "P2", "r", 6});
  auto split = SplitByGroup(dataset, SplitFractions(), 1);
  ASSERT_FALSE(split.ok());
  EXPECT_THAT(split.status().message(), HasSubstr("part is empty: 2 group(s) are too few"));
}

TEST(SplitByGroupTest, LabelOutOfRangeIsAnError) {
  Dataset dataset;
  dataset.source_file = "m.csv";
  dataset.class_names = {"a"};
  dataset.rows.push_back(DatasetRow{"", {}, 3, "P1", "r", 9});
  EXPECT_THAT(SplitByGroup(dataset, SplitFractions(), 1).status().message(),
              HasSubstr("m.csv:9: label 3"));
}

}  // namespace
}  // namespace dermfed::client
