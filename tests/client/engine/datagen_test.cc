#include "client/datagen.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "client/data/isic_2019_reader.h"
#include "client/data/pad_ufes_20_reader.h"
#include "client/image/codec.h"
#include "tests/client/data/test_files.h"

namespace dermfed::client {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::Each;
using ::testing::ElementsAreArray;
using ::testing::Ge;
using ::testing::HasSubstr;
using testing::TempDir;

// The released datasets' class counts, in the readers' label order.
const std::vector<double> kPadWeights = {730, 845, 52, 244, 192, 235};  // ACK BCC MEL NEV SCC SEK
const std::vector<int64_t> kPadCounts = {730, 845, 52, 244, 192, 235};
constexpr int64_t kPadTotal = 2298;
const std::vector<double> kIsicWeights = {4522, 12875, 3323, 867, 2624, 239, 253, 628};
const std::vector<int64_t> kIsicCounts = {4522, 12875, 3323, 867, 2624, 239, 253, 628};
constexpr int64_t kIsicTotal = 25331;

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Status Generate(const std::string& format, const std::string& dir, int64_t images,
                uint64_t seed = 1) {
  DatagenOptions options;
  options.format = format;
  options.out_dir = dir;
  options.images = images;
  options.seed = seed;
  options.image_size = 16;
  return GenerateDataset(options);
}

// ---- ProportionalCounts ----

TEST(ProportionalCountsTest, ReproducesPadUfes20sCountsAtItsSize) {
  EXPECT_THAT(ProportionalCounts(kPadWeights, kPadTotal), ElementsAreArray(kPadCounts))
      << "datagen at the release size must give the release's exact class counts "
         "(ACK BCC MEL NEV SCC SEK)";
}

TEST(ProportionalCountsTest, ReproducesIsic2019sCountsAtItsSize) {
  EXPECT_THAT(ProportionalCounts(kIsicWeights, kIsicTotal), ElementsAreArray(kIsicCounts))
      << "datagen at the release size must give the release's exact class counts "
         "(MEL NV BCC AK BKL DF VASC SCC)";
}

TEST(ProportionalCountsTest, CountsAlwaysSumToTheTotal) {
  for (const auto& weights : {kPadWeights, kIsicWeights}) {
    for (int64_t total = 0; total <= 3000; ++total) {
      const auto counts = ProportionalCounts(weights, total);
      ASSERT_EQ(std::accumulate(counts.begin(), counts.end(), int64_t{0}), total)
          << "total " << total << " over " << weights.size() << " classes";
    }
  }
}

TEST(ProportionalCountsTest, EveryClassGetsAnImageOnceThereAreEnough) {
  for (const auto& weights : {kPadWeights, kIsicWeights}) {
    for (int64_t total = static_cast<int64_t>(weights.size()); total <= 3000; ++total) {
      ASSERT_THAT(ProportionalCounts(weights, total), Each(Ge(1)))
          << "total " << total << " over " << weights.size() << " classes";
    }
  }
}

// ---- PAD-UFES-20 ----

// One PAD-UFES-20-format dataset at the release's size, generated once for the suite.
class GeneratedPadUfes20Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    generated_ = new Status(Generate("pad-ufes-20", dir_->path(), kPadTotal));
    if (generated_->ok()) dataset_ = new StatusOr<Dataset>(PadUfes20Reader().Read(dir_->path()));
  }
  static void TearDownTestSuite() {
    delete dataset_;
    delete generated_;
    delete dir_;
    dataset_ = nullptr;
    generated_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(generated_->ok()) << "datagen failed: " << *generated_;
    ASSERT_TRUE(dataset_->ok()) << "PadUfes20Reader cannot read what datagen wrote: "
                                << dataset_->status();
  }
  const Dataset& dataset() const { return **dataset_; }
  // The raw values of metadata column `name` over all rows.
  std::vector<std::string> Column(const std::string& name) const {
    const int c = dataset().MetadataColumn(name);
    EXPECT_GE(c, 0) << "no metadata column " << name;
    std::vector<std::string> values;
    for (const DatasetRow& row : dataset().rows) values.push_back(c < 0 ? "" : row.metadata[c]);
    return values;
  }

  static TempDir* dir_;
  static Status* generated_;
  static StatusOr<Dataset>* dataset_;
};
TempDir* GeneratedPadUfes20Test::dir_ = nullptr;
Status* GeneratedPadUfes20Test::generated_ = nullptr;
StatusOr<Dataset>* GeneratedPadUfes20Test::dataset_ = nullptr;

TEST_F(GeneratedPadUfes20Test, HasTheReleasesClassCounts) {
  EXPECT_EQ(dataset().rows.size(), static_cast<size_t>(kPadTotal));
  EXPECT_THAT(dataset().ClassCounts(), ElementsAreArray(kPadCounts))
      << "class counts read back (ACK BCC MEL NEV SCC SEK)";
}

TEST_F(GeneratedPadUfes20Test, HasTheReleasesTwentySixColumnHeader) {
  const std::string csv = ReadText(dir_->Join("metadata.csv"));
  const std::string header = csv.substr(0, csv.find_first_of("\r\n"));
  std::string expected;
  for (const std::string& c : PadUfes20Reader::Columns())
    expected += (expected.empty() ? "" : ",") + c;
  EXPECT_EQ(header, expected);
  EXPECT_EQ(PadUfes20Reader::Columns().size(), 26u);
}

TEST_F(GeneratedPadUfes20Test, SomePatientsHaveSeveralImages) {
  std::map<std::string, int> images_per_patient;
  for (const DatasetRow& row : dataset().rows) ++images_per_patient[row.group_id];
  int with_several = 0;
  for (const auto& [patient, images] : images_per_patient) with_several += images > 1;
  EXPECT_GT(with_several, 50) << "of " << images_per_patient.size()
                              << " patients; a grouped split is only tested when patients have "
                                 "several images";
  EXPECT_LT(images_per_patient.size(), dataset().rows.size());
}

TEST_F(GeneratedPadUfes20Test, HasEmptyFieldsAsTheReleaseDoes) {
  EXPECT_THAT(Column("smoke"), Contains("")) << "no empty questionnaire field";
  EXPECT_THAT(Column("fitspatrick"), Contains(""));
  EXPECT_THAT(Column("diameter_1"), Contains(""));
  EXPECT_THAT(Column("smoke"), Contains("True"));
}

TEST_F(GeneratedPadUfes20Test, HasUnkInTheSymptomColumns) {
  for (const char* symptom : {"itch", "grew", "hurt", "changed", "bleed", "elevation"}) {
    EXPECT_THAT(Column(symptom), Contains("UNK")) << "column " << symptom;
  }
}

TEST_F(GeneratedPadUfes20Test, ImagesAreDecodablePngsOfTheRequestedSize) {
  for (size_t i = 0; i < dataset().rows.size(); i += 97) {
    auto image = DecodeImageFile(dataset().rows[i].image_path);
    ASSERT_TRUE(image.ok()) << image.status();
    EXPECT_EQ(image->width, 16);
    EXPECT_EQ(image->height, 16);
  }
}

TEST_F(GeneratedPadUfes20Test, ImagesAreSpreadOverTheReleasesThreeParts) {
  for (int part = 1; part <= 3; ++part) {
    const fs::path folder =
        fs::path(dir_->path()) / "images" / ("imgs_part_" + std::to_string(part));
    ASSERT_TRUE(fs::is_directory(folder)) << folder;
    EXPECT_FALSE(fs::is_empty(folder)) << folder;
  }
}

// ---- ISIC-2019 ----

TEST(GeneratedIsic2019Test, ReadsBackWithTheIsic2019Reader) {
  TempDir dir;
  ASSERT_TRUE(Generate("isic-2019", dir.path(), 400).ok());
  auto dataset = Isic2019Reader().Read(dir.path());
  ASSERT_TRUE(dataset.ok()) << "Isic2019Reader cannot read what datagen wrote: "
                            << dataset.status();
  EXPECT_EQ(dataset->rows.size(), 400u);
  EXPECT_TRUE(dataset->skipped.empty()) << dataset->SkippedReport();
  EXPECT_THAT(dataset->ClassCounts(), ElementsAreArray(ProportionalCounts(kIsicWeights, 400)));
  auto image = DecodeImageFile(dataset->rows[0].image_path);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->width, 16);
}

TEST(GeneratedIsic2019Test, SomeImagesAreNamedDownsampled) {
  TempDir dir;
  ASSERT_TRUE(Generate("isic-2019", dir.path(), 400).ok());
  auto dataset = Isic2019Reader().Read(dir.path());
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  int downsampled = 0;
  for (const DatasetRow& row : dataset->rows) {
    downsampled += row.image_path.size() > 16 &&
                   row.image_path.compare(row.image_path.size() - 16, 16, "_downsampled.jpg") == 0;
  }
  EXPECT_GT(downsampled, 0) << "no *_downsampled.jpg among 400 images; the release has some";
  EXPECT_LT(downsampled, 400);
}

// ---- Options and reproducibility ----

TEST(DatagenTest, RefusesAFolderThatAlreadyHoldsADataset) {
  TempDir dir;
  ASSERT_TRUE(Generate("pad-ufes-20", dir.path(), 20).ok());
  const std::string before = ReadText(dir.Join("metadata.csv"));
  Status second = Generate("pad-ufes-20", dir.path(), 20, /*seed=*/2);
  EXPECT_FALSE(second.ok()) << "a second datagen into the same folder was accepted";
  EXPECT_THAT(std::string(second.message()), HasSubstr(dir.path()));
  EXPECT_EQ(ReadText(dir.Join("metadata.csv")), before) << "the refused run changed the dataset";
}

TEST(DatagenTest, SameSeedGivesByteIdenticalMetadata) {
  TempDir a, b;
  ASSERT_TRUE(Generate("pad-ufes-20", a.path(), 200, /*seed=*/7).ok());
  ASSERT_TRUE(Generate("pad-ufes-20", b.path(), 200, /*seed=*/7).ok());
  EXPECT_TRUE(ReadText(a.Join("metadata.csv")) == ReadText(b.Join("metadata.csv")))
      << "two runs with seed 7 wrote different metadata.csv files";
}

TEST(DatagenTest, DifferentSeedsGiveDifferentMetadata) {
  TempDir a, b;
  ASSERT_TRUE(Generate("pad-ufes-20", a.path(), 200, /*seed=*/7).ok());
  ASSERT_TRUE(Generate("pad-ufes-20", b.path(), 200, /*seed=*/8).ok());
  EXPECT_FALSE(ReadText(a.Join("metadata.csv")) == ReadText(b.Join("metadata.csv")));
}

TEST(DatagenTest, RefusesAnUnknownFormatNamingTheKnownOnes) {
  TempDir dir;
  Status s = Generate("ham10000", dir.path(), 20);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("pad-ufes-20"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("isic-2019"));
}

}  // namespace
}  // namespace dermfed::client
