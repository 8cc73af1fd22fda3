#include "client/data/isic_2019_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "client/data/metadata_encoder.h"
#include "client/data/metadata_schema.h"
#include "tests/client/data/test_files.h"

namespace dermfed::client {
namespace {

using ::testing::ElementsAre;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using testing::TempDir;

StatusOr<Dataset> ReadIsic(const TempDir& dir, bool skip_bad_rows = false) {
  ReadOptions options;
  options.skip_bad_rows = skip_bad_rows;
  return Isic2019Reader(options).Read(dir.path());
}

void WriteStandard(const TempDir& dir) {
  testing::WriteIsicDataset(dir, testing::IsicTruthRows(), testing::IsicMetadataRows(),
                            testing::IsicImages());
}

TEST(Isic2019ReaderTest, ReadsEveryTrainingClassInOrder) {
  TempDir dir;
  WriteStandard(dir);
  auto dataset = ReadIsic(dir);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_THAT(dataset->class_names,
              ElementsAre("MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC"));
  ASSERT_EQ(dataset->rows.size(), 11u);
  // MEL 2, NV 3, BCC 1, AK 1, BKL 1, DF 1, VASC 1, SCC 1
  EXPECT_THAT(dataset->ClassCounts(), ElementsAre(2, 3, 1, 1, 1, 1, 1, 1));
  EXPECT_EQ(dataset->rows[0].row_id, "ISIC_0000000");
  EXPECT_EQ(dataset->class_names[dataset->rows[0].label], "NV");
  EXPECT_EQ(dataset->rows[0].source_line, 2);
  EXPECT_TRUE(dataset->skipped.empty());
}

TEST(Isic2019ReaderTest, KeepsMetadataAndItsEmptyFields) {
  TempDir dir;
  WriteStandard(dir);
  auto dataset = ReadIsic(dir);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_THAT(dataset->metadata_columns, ElementsAre("age_approx", "anatom_site_general", "sex"));
  EXPECT_THAT(dataset->rows[0].metadata, ElementsAre("55.0", "anterior torso", "female"));
  EXPECT_THAT(dataset->rows[3].metadata, ElementsAre("", "", ""));
  EXPECT_THAT(dataset->rows[4].metadata, ElementsAre("45.0", "", "male"));
}

TEST(Isic2019ReaderTest, GroupsByLesionOrElseByImage) {
  TempDir dir;
  WriteStandard(dir);
  auto dataset = ReadIsic(dir);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ(dataset->rows[0].group_id, "ISIC_0000000");  // lesion_id empty
  EXPECT_EQ(dataset->rows[4].group_id, "HAM_0000550");
  EXPECT_EQ(dataset->rows[5].group_id, "HAM_0000550");
  EXPECT_EQ(dataset->NumGroups(), 10);
}

TEST(Isic2019ReaderTest, FindsDownsampledAndNestedImages) {
  TempDir dir;
  WriteStandard(dir);
  auto dataset = ReadIsic(dir);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_THAT(dataset->rows[1].image_path, EndsWith("ISIC_0000002_downsampled.jpg"));
  EXPECT_THAT(dataset->rows[2].image_path, EndsWith("ISIC_0000004_downsampled.jpg"));
  EXPECT_THAT(dataset->rows[10].image_path,
              EndsWith("ISIC_2019_Training_Input/ISIC_2019_Training_Input/ISIC_0060004.jpg"));
}

TEST(Isic2019ReaderTest, EveryRowEncodesWithTheBuiltinSchema) {
  TempDir dir;
  WriteStandard(dir);
  auto dataset = ReadIsic(dir);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  auto schema = BuiltinSchema("isic-2019");
  ASSERT_TRUE(schema.ok()) << schema.status();
  EXPECT_EQ(schema->class_names, dataset->class_names);
  auto encoder = MetadataEncoder::Create(*schema, dataset->metadata_columns);
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  EXPECT_EQ(encoder->width(), 14);
  auto matrix = EncodeDataset(*encoder, &*dataset, /*skip_bad_rows=*/false);
  ASSERT_TRUE(matrix.ok()) << matrix.status();
  // Row 3 has every field empty: age missing, site missing, sex missing.
  const float* row = matrix->data() + 3 * encoder->width();
  EXPECT_EQ(row[0], 0.0f);
  EXPECT_EQ(row[1], 1.0f);
  EXPECT_EQ(row[10], 1.0f);  // anatom_site_general:missing
  EXPECT_EQ(row[13], 1.0f);  // sex:missing
}

// --- Bad input in the ground truth (line 3 is the second data row). ---

struct BadTruthCase {
  const char* name;
  std::string row;  // replaces ISIC_0000002's ground-truth row
  const char* reason;
};

class Isic2019BadRowTest : public ::testing::TestWithParam<BadTruthCase> {};

void WriteWithBadSecondRow(const TempDir& dir, const std::string& row) {
  std::vector<std::string> truth = testing::IsicTruthRows();
  truth[1] = row;
  testing::WriteIsicDataset(dir, truth, testing::IsicMetadataRows(), testing::IsicImages());
}

TEST_P(Isic2019BadRowTest, IsAnErrorNamingFileAndLine) {
  TempDir dir;
  WriteWithBadSecondRow(dir, GetParam().row);
  auto dataset = ReadIsic(dir);
  ASSERT_FALSE(dataset.ok());
  EXPECT_THAT(dataset.status().message(), HasSubstr("ISIC_2019_Training_GroundTruth.csv:3: "));
  EXPECT_THAT(dataset.status().message(), HasSubstr(GetParam().reason));
}

TEST_P(Isic2019BadRowTest, IsSkippedAndCountedWithSkipBadRows) {
  TempDir dir;
  WriteWithBadSecondRow(dir, GetParam().row);
  auto dataset = ReadIsic(dir, /*skip_bad_rows=*/true);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ(dataset->rows.size(), 10u);
  ASSERT_EQ(dataset->skipped.size(), 1u);
  EXPECT_THAT(dataset->skipped[0].file, EndsWith("ISIC_2019_Training_GroundTruth.csv"));
  EXPECT_EQ(dataset->skipped[0].line, 3);
  EXPECT_THAT(dataset->skipped[0].reason, HasSubstr(GetParam().reason));
}

INSTANTIATE_TEST_SUITE_P(
    AllCases, Isic2019BadRowTest,
    ::testing::Values(
        BadTruthCase{"UnkLabel", "ISIC_0000002,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0",
                     "labelled UNK"},
        BadTruthCase{"TwoClasses", "ISIC_0000002,1.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
                     "both MEL and NV are set"},
        BadTruthCase{"NoClass", "ISIC_0000002,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0", "no class set"},
        BadTruthCase{"NotOneHot", "ISIC_0000002,0.5,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
                     "column MEL is '0.5', expected 0 or 1"},
        BadTruthCase{"NotANumber", "ISIC_0000002,yes,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
                     "column MEL is 'yes'"},
        BadTruthCase{"WrongFieldCount", "ISIC_0000002,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
                     "row has 9 fields, the header has 10"},
        BadTruthCase{"NoMetadataRow", "ISIC_0099999,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
                     "has no row in"},
        BadTruthCase{"DuplicateImage", "ISIC_0000000,0.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
                     "ISIC_0000000 appears twice"}),
    [](const ::testing::TestParamInfo<BadTruthCase>& info) { return info.param.name; });

TEST(Isic2019ReaderTest, MissingImageFileIsABadRow) {
  TempDir dir;
  std::vector<std::string> images = testing::IsicImages();
  images.erase(images.begin());  // ISIC_0000000.jpg
  testing::WriteIsicDataset(dir, testing::IsicTruthRows(), testing::IsicMetadataRows(), images);
  auto dataset = ReadIsic(dir);
  ASSERT_FALSE(dataset.ok());
  EXPECT_THAT(dataset.status().message(),
              HasSubstr("GroundTruth.csv:2: image ISIC_0000000.jpg not found below"));
  auto skipped = ReadIsic(dir, /*skip_bad_rows=*/true);
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  EXPECT_EQ(skipped->rows.size(), 10u);
  EXPECT_EQ(skipped->skipped.size(), 1u);
}

TEST(Isic2019ReaderTest, BadMetadataRowNamesTheMetadataFile) {
  TempDir dir;
  std::vector<std::string> metadata = testing::IsicMetadataRows();
  metadata[0] = "ISIC_0000000,55.0,anterior torso,female";  // one field short
  testing::WriteIsicDataset(dir, testing::IsicTruthRows(), metadata, testing::IsicImages());
  auto dataset = ReadIsic(dir);
  ASSERT_FALSE(dataset.ok());
  EXPECT_THAT(dataset.status().message(),
              HasSubstr("ISIC_2019_Training_Metadata.csv:2: row has 4 fields"));
  // Skipped: the metadata row, and then the image that has no metadata.
  auto skipped = ReadIsic(dir, /*skip_bad_rows=*/true);
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  EXPECT_EQ(skipped->rows.size(), 10u);
  ASSERT_EQ(skipped->skipped.size(), 2u);
  EXPECT_THAT(skipped->skipped[0].file, EndsWith("Metadata.csv"));
  EXPECT_THAT(skipped->skipped[1].reason, HasSubstr("has no row in"));
}

TEST(Isic2019ReaderTest, MissingClassColumnIsAnError) {
  TempDir dir;
  WriteStandard(dir);
  dir.Write("ISIC_2019_Training_GroundTruth.csv",
            testing::CrlfLines({"image,MEL,NV,BCC,AK,BKL,DF,VASC,UNK",
                                "ISIC_0000000,0.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0"}));
  auto dataset = ReadIsic(dir, /*skip_bad_rows=*/true);
  ASSERT_FALSE(dataset.ok());
  EXPECT_THAT(dataset.status().message(),
              HasSubstr("ISIC_2019_Training_GroundTruth.csv:1: missing column 'SCC'"));
}

TEST(Isic2019ReaderTest, MissingMetadataFileIsAnError) {
  TempDir dir;
  WriteStandard(dir);
  std::remove(dir.Join("ISIC_2019_Training_Metadata.csv").c_str());
  auto dataset = ReadIsic(dir);
  ASSERT_FALSE(dataset.ok());
  EXPECT_THAT(dataset.status().message(), HasSubstr("ISIC_2019_Training_Metadata.csv"));
}

TEST(Isic2019ReaderTest, EmptyGroundTruthIsAnEmptyDatasetError) {
  TempDir dir;
  testing::WriteIsicDataset(dir, {}, testing::IsicMetadataRows(), testing::IsicImages());
  auto dataset = ReadIsic(dir);
  ASSERT_FALSE(dataset.ok());
  EXPECT_THAT(dataset.status().message(), HasSubstr("GroundTruth.csv: no usable rows"));
}

}  // namespace
}  // namespace dermfed::client
