#include "client/data/pad_ufes_20_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

// The value of `column` in `row`.
std::string Value(const Dataset& dataset, const DatasetRow& row, const std::string& column) {
  int index = dataset.MetadataColumn(column);
  EXPECT_GE(index, 0) << "no column " << column;
  return index < 0 ? "" : row.metadata[index];
}

StatusOr<Dataset> ReadPad(const TempDir& dir, bool skip_bad_rows = false) {
  ReadOptions options;
  options.skip_bad_rows = skip_bad_rows;
  return PadUfes20Reader(options).Read(dir.path());
}

TEST(PadUfes20ReaderTest, HasTheReleaseColumnsAndClasses) {
  EXPECT_EQ(PadUfes20Reader::Columns().size(), 26u);
  EXPECT_EQ(PadUfes20Reader::MetadataColumns().size(), 22u);
  EXPECT_THAT(PadUfes20Reader::ClassNames(), ElementsAre("ACK", "BCC", "MEL", "NEV", "SCC", "SEK"));
}

TEST(PadUfes20ReaderTest, ReadsTheRealRow) {
  TempDir dir;
  testing::WritePadDataset(dir, {testing::kPadRealRow}, {"PAT_46_881_14.png"});
  auto dataset = ReadPad(dir);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  ASSERT_EQ(dataset->rows.size(), 1u);
  const DatasetRow& row = dataset->rows[0];
  EXPECT_EQ(dataset->class_names[row.label], "BCC");
  EXPECT_EQ(row.group_id, "PAT_46");
  EXPECT_EQ(row.row_id, "PAT_46_881_14.png");
  EXPECT_THAT(row.image_path, EndsWith("imgs_part_1/PAT_46_881_14.png"));
  EXPECT_EQ(row.source_line, 2);
  EXPECT_EQ(Value(*dataset, row, "smoke"), "False");
  EXPECT_EQ(Value(*dataset, row, "background_father"), "POMERANIA");
  EXPECT_EQ(Value(*dataset, row, "age"), "55");
  EXPECT_EQ(Value(*dataset, row, "fitspatrick"), "3.0");
  EXPECT_EQ(Value(*dataset, row, "region"), "NECK");
  EXPECT_EQ(Value(*dataset, row, "diameter_1"), "6.0");
  EXPECT_EQ(Value(*dataset, row, "diameter_2"), "5.0");
  EXPECT_EQ(Value(*dataset, row, "hurt"), "False");
  EXPECT_EQ(Value(*dataset, row, "elevation"), "True");
  EXPECT_EQ(Value(*dataset, row, "biopsed"), "True");
  EXPECT_TRUE(dataset->skipped.empty());
}

TEST(PadUfes20ReaderTest, KeepsEmptyFieldsAndUnkAsWritten) {
  TempDir dir;
  testing::WritePadDataset(dir, testing::PadRows(), testing::PadImages());
  auto dataset = ReadPad(dir);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  ASSERT_EQ(dataset->rows.size(), 5u);
  const DatasetRow& sparse = dataset->rows[1];
  EXPECT_EQ(sparse.row_id, "PAT_1516_1765_530.png");
  EXPECT_EQ(Value(*dataset, sparse, "smoke"), "");
  EXPECT_EQ(Value(*dataset, sparse, "fitspatrick"), "");
  EXPECT_EQ(Value(*dataset, sparse, "diameter_1"), "");
  EXPECT_EQ(Value(*dataset, sparse, "region"), "ARM");
  const DatasetRow& unk = dataset->rows[2];
  EXPECT_EQ(Value(*dataset, unk, "itch"), "UNK");
  EXPECT_EQ(Value(*dataset, unk, "changed"), "UNK");
  EXPECT_EQ(Value(*dataset, unk, "bleed"), "False");
}

TEST(PadUfes20ReaderTest, FindsImagesInEveryPartAndGroupsByPatient) {
  TempDir dir;
  testing::WritePadDataset(dir, testing::PadRows(), testing::PadImages());
  auto dataset = ReadPad(dir);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_THAT(dataset->rows[0].image_path, HasSubstr("imgs_part_1"));
  EXPECT_THAT(dataset->rows[1].image_path, HasSubstr("imgs_part_2"));
  EXPECT_EQ(dataset->rows[0].group_id, dataset->rows[3].group_id);
  EXPECT_EQ(dataset->NumGroups(), 4);
  // ACK, BCC, MEL, NEV, SCC, SEK
  EXPECT_THAT(dataset->ClassCounts(), ElementsAre(1, 1, 1, 1, 0, 1));
}

TEST(PadUfes20ReaderTest, EveryRowEncodesWithTheBuiltinSchema) {
  TempDir dir;
  testing::WritePadDataset(dir, testing::PadRows(), testing::PadImages());
  auto dataset = ReadPad(dir);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  auto schema = BuiltinSchema("pad-ufes-20");
  ASSERT_TRUE(schema.ok()) << schema.status();
  EXPECT_EQ(schema->class_names, dataset->class_names);
  auto encoder = MetadataEncoder::Create(*schema, dataset->metadata_columns);
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  auto matrix = EncodeDataset(*encoder, &*dataset, /*skip_bad_rows=*/false);
  ASSERT_TRUE(matrix.ok()) << matrix.status();
  EXPECT_EQ(matrix->size(), 5u * encoder->width());
}

TEST(PadUfes20ReaderTest, ReadsAFileWithAByteOrderMarkAndLfEndings) {
  TempDir dir;
  dir.Write("metadata.csv",
            std::string("\xEF\xBB\xBF") + testing::kPadHeader + "\n" + testing::kPadRealRow + "\n");
  dir.Write("imgs_part_3/PAT_46_881_14.png", "png");
  auto dataset = ReadPad(dir);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ(dataset->rows.size(), 1u);
}

// --- Bad input: each case as an error naming file and line, then skipped and counted. ---

struct BadRowCase {
  const char* name;
  std::vector<std::string> rows;    // the bad row is the second data row, line 3
  std::vector<std::string> images;  // written
  const char* reason;               // expected in the message
};

class PadUfes20BadRowTest : public ::testing::TestWithParam<BadRowCase> {};

TEST_P(PadUfes20BadRowTest, IsAnErrorNamingFileAndLine) {
  TempDir dir;
  testing::WritePadDataset(dir, GetParam().rows, GetParam().images);
  auto dataset = ReadPad(dir);
  ASSERT_FALSE(dataset.ok());
  EXPECT_EQ(dataset.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(dataset.status().message(), HasSubstr("metadata.csv:3: "));
  EXPECT_THAT(dataset.status().message(), HasSubstr(GetParam().reason));
}

TEST_P(PadUfes20BadRowTest, IsSkippedAndCountedWithSkipBadRows) {
  TempDir dir;
  testing::WritePadDataset(dir, GetParam().rows, GetParam().images);
  auto dataset = ReadPad(dir, /*skip_bad_rows=*/true);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ(dataset->rows.size(), GetParam().rows.size() - 1);
  ASSERT_EQ(dataset->skipped.size(), 1u);
  EXPECT_EQ(dataset->skipped[0].line, 3);
  EXPECT_THAT(dataset->skipped[0].file, EndsWith("metadata.csv"));
  EXPECT_THAT(dataset->skipped[0].reason, HasSubstr(GetParam().reason));
  EXPECT_THAT(dataset->SkippedReport(), HasSubstr("1 row skipped:"));
  EXPECT_THAT(dataset->SkippedReport(), HasSubstr("metadata.csv:3: "));
}

std::string ReplaceAll(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

const std::string kOtherRow = testing::PadRows()[2];  // PAT_771_1151_213.png, ACK

INSTANTIATE_TEST_SUITE_P(
    AllCases, PadUfes20BadRowTest,
    ::testing::Values(BadRowCase{"MissingImage",
                                 {testing::kPadRealRow, kOtherRow},
                                 {"PAT_46_881_14.png"},
                                 "image PAT_771_1151_213.png not found"},
                      BadRowCase{"UnknownLabel",
                                 {testing::kPadRealRow, ReplaceAll(kOtherRow, ",ACK,", ",XYZ,")},
                                 {"PAT_46_881_14.png", "PAT_771_1151_213.png"},
                                 "unknown diagnostic 'XYZ'"},
                      BadRowCase{"TooFewFields",
                                 {testing::kPadRealRow, ReplaceAll(kOtherRow, ",FACE,", ",")},
                                 {"PAT_46_881_14.png", "PAT_771_1151_213.png"},
                                 "row has 25 fields, the header has 26"},
                      BadRowCase{"TooManyFields",
                                 {testing::kPadRealRow, kOtherRow + ",extra"},
                                 {"PAT_46_881_14.png", "PAT_771_1151_213.png"},
                                 "row has 27 fields"},
                      BadRowCase{
                          "MalformedQuoting",
                          {testing::kPadRealRow, ReplaceAll(kOtherRow, "GERMANY", "GER\"MANY")},
                          {"PAT_46_881_14.png", "PAT_771_1151_213.png"},
                          "'\"' inside unquoted field"},
                      BadRowCase{"EmptyPatient",
                                 {testing::kPadRealRow, ReplaceAll(kOtherRow, "PAT_771,", ",")},
                                 {"PAT_46_881_14.png", "PAT_771_1151_213.png"},
                                 "patient_id is empty"},
                      BadRowCase{"DuplicateImage",
                                 {testing::kPadRealRow, testing::kPadRealRow},
                                 {"PAT_46_881_14.png"},
                                 "img_id PAT_46_881_14.png appears twice"}),
    [](const ::testing::TestParamInfo<BadRowCase>& info) { return info.param.name; });

TEST(PadUfes20ReaderTest, ImageInTwoFoldersIsABadRow) {
  TempDir dir;
  testing::WritePadDataset(dir, {testing::kPadRealRow}, {"PAT_46_881_14.png"});
  dir.Write("copy/PAT_46_881_14.png", "png");
  auto dataset = ReadPad(dir);
  ASSERT_FALSE(dataset.ok());
  EXPECT_THAT(dataset.status().message(), HasSubstr("metadata.csv:2: "));
  EXPECT_THAT(dataset.status().message(), HasSubstr("is in two places"));
}

TEST(PadUfes20ReaderTest, MissingColumnIsAnErrorEvenWhenSkipping) {
  TempDir dir;
  std::string header = ReplaceAll(testing::kPadHeader, ",region,", ",place,");
  dir.Write("metadata.csv", testing::CrlfLines({header, testing::kPadRealRow}));
  dir.Write("imgs_part_1/PAT_46_881_14.png", "png");
  for (bool skip : {false, true}) {
    auto dataset = ReadPad(dir, skip);
    ASSERT_FALSE(dataset.ok());
    EXPECT_THAT(dataset.status().message(), HasSubstr("metadata.csv:1: missing column 'region'"));
  }
}

TEST(PadUfes20ReaderTest, HeaderOnlyIsAnEmptyDatasetError) {
  TempDir dir;
  testing::WritePadDataset(dir, {}, {});
  auto dataset = ReadPad(dir);
  ASSERT_FALSE(dataset.ok());
  EXPECT_EQ(dataset.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(dataset.status().message(), HasSubstr("metadata.csv: no usable rows"));
}

TEST(PadUfes20ReaderTest, EmptyFileIsAnError) {
  TempDir dir;
  dir.Write("metadata.csv", "");
  auto dataset = ReadPad(dir);
  ASSERT_FALSE(dataset.ok());
  EXPECT_THAT(dataset.status().message(), HasSubstr("metadata.csv: file is empty"));
}

TEST(PadUfes20ReaderTest, AllRowsSkippedIsAnEmptyDatasetErrorListingThem) {
  TempDir dir;
  testing::WritePadDataset(dir, testing::PadRows(), {});
  auto dataset = ReadPad(dir, /*skip_bad_rows=*/true);
  ASSERT_FALSE(dataset.ok());
  EXPECT_THAT(dataset.status().message(), HasSubstr("no usable rows"));
  EXPECT_THAT(dataset.status().message(), HasSubstr("5 rows skipped"));
  EXPECT_THAT(dataset.status().message(), HasSubstr("metadata.csv:6: image PAT_9_12_77.png"));
}

TEST(PadUfes20ReaderTest, MissingMetadataFileNamesIt) {
  TempDir dir;
  dir.Write("imgs_part_1/PAT_46_881_14.png", "png");
  auto dataset = ReadPad(dir);
  ASSERT_FALSE(dataset.ok());
  EXPECT_EQ(dataset.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(dataset.status().message(), HasSubstr("metadata.csv: cannot open"));
}

TEST(PadUfes20ReaderTest, MissingFolderNamesIt) {
  TempDir dir;
  auto dataset = PadUfes20Reader().Read(dir.Join("nowhere"));
  ASSERT_FALSE(dataset.ok());
  EXPECT_THAT(dataset.status().message(), HasSubstr("nowhere"));
}

TEST(PadUfes20ReaderTest, UnterminatedQuoteStopsEvenWhenSkipping) {
  TempDir dir;
  testing::WritePadDataset(dir, {testing::kPadRealRow, "PAT_1,\"2,"}, {"PAT_46_881_14.png"});
  auto dataset = ReadPad(dir, /*skip_bad_rows=*/true);
  ASSERT_FALSE(dataset.ok());
  EXPECT_THAT(dataset.status().message(),
              HasSubstr("metadata.csv:3: quoted field is never closed"));
}

}  // namespace
}  // namespace dermfed::client
