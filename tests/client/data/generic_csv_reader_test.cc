#include "client/data/generic_csv_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "client/data/dataset_format.h"
#include "client/data/metadata_schema.h"
#include "tests/client/data/test_files.h"

namespace dermfed::client {
namespace {

using ::testing::ElementsAre;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using testing::TempDir;

constexpr char kSchemaJson[] = R"({
  "format_version": 1,
  "name": "hospital-x",
  "class_names": ["benign", "malignant"],
  "columns": [
    {"name": "age", "type": "numeric", "mean": 50, "std": 20},
    {"name": "site", "type": "categorical", "values": ["arm", "leg, lower", "face"]}
  ],
  "manifest": {"image_column": "path", "label_column": "diagnosis",
               "group_column": "patient", "id_column": "lesion"}
})";

MetadataSchema Schema() {
  auto schema = ParseSchemaJson(kSchemaJson, "hospital-x.json");
  EXPECT_TRUE(schema.ok()) << schema.status();
  return *schema;
}

const char kHeader[] = "lesion,patient,path,diagnosis,age,site,notes";

// A manifest in the site's own folder layout, with quoted fields (a comma in a value, a line
// break in free-text notes) and an empty field.
void WriteManifest(const TempDir& dir, const std::vector<std::string>& rows) {
  std::vector<std::string> lines = {kHeader};
  lines.insert(lines.end(), rows.begin(), rows.end());
  dir.Write("manifest.csv", testing::CrlfLines(lines));
}

std::vector<std::string> GoodRows() {
  return {"L1,P1,images/a.png,benign,34,arm,",
          "L2,P1,images/b.jpg,malignant,34,\"leg, lower\",\"grew fast\r\nsince May\"",
          "L3,P2,images/sub/c.png,benign,,face,none"};
}

void WriteImages(const TempDir& dir) {
  dir.Write("images/a.png", "png");
  dir.Write("images/b.jpg", "jpg");
  dir.Write("images/sub/c.png", "png");
}

StatusOr<Dataset> ReadGeneric(const std::string& path, bool skip_bad_rows = false) {
  ReadOptions options;
  options.skip_bad_rows = skip_bad_rows;
  return GenericCsvReader(Schema(), options).Read(path);
}

TEST(GenericCsvReaderTest, ReadsTheManifestTheSchemaDescribes) {
  TempDir dir;
  WriteManifest(dir, GoodRows());
  WriteImages(dir);
  auto dataset = ReadGeneric(dir.path());
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  ASSERT_EQ(dataset->rows.size(), 3u);
  EXPECT_EQ(dataset->format, "generic");
  EXPECT_THAT(dataset->class_names, ElementsAre("benign", "malignant"));
  EXPECT_THAT(dataset->metadata_columns, ElementsAre("age", "site"));
  const DatasetRow& row = dataset->rows[1];
  EXPECT_EQ(row.label, 1);
  EXPECT_EQ(row.group_id, "P1");
  EXPECT_EQ(row.row_id, "L2");
  EXPECT_THAT(row.image_path, EndsWith("images/b.jpg"));
  EXPECT_THAT(row.metadata, ElementsAre("34", "leg, lower"));
  EXPECT_EQ(dataset->rows[2].source_line, 5) << "the quoted line break takes a line";
  EXPECT_THAT(dataset->rows[2].metadata, ElementsAre("", "face"));
}

TEST(GenericCsvReaderTest, AcceptsTheManifestPathItself) {
  TempDir dir;
  WriteManifest(dir, GoodRows());
  WriteImages(dir);
  auto dataset = ReadGeneric(dir.Join("manifest.csv"));
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ(dataset->rows.size(), 3u);
}

TEST(GenericCsvReaderTest, WithoutGroupColumnEachRowIsItsOwnGroup) {
  MetadataSchema schema = Schema();
  schema.manifest->group_column = "";
  schema.manifest->id_column = "";
  TempDir dir;
  WriteManifest(dir, GoodRows());
  WriteImages(dir);
  auto dataset = GenericCsvReader(schema).Read(dir.path());
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ(dataset->rows[0].row_id, "images/a.png");
  EXPECT_EQ(dataset->rows[0].group_id, "images/a.png");
  EXPECT_EQ(dataset->NumGroups(), 3);
}

struct BadRowCase {
  const char* name;
  std::string row;  // replaces the second data row (line 3)
  const char* reason;
};

class GenericCsvBadRowTest : public ::testing::TestWithParam<BadRowCase> {};

void WriteWithBadRow(const TempDir& dir, const std::string& row) {
  std::vector<std::string> rows = GoodRows();
  rows[1] = row;
  WriteManifest(dir, rows);
  WriteImages(dir);
}

TEST_P(GenericCsvBadRowTest, IsAnErrorNamingFileAndLine) {
  TempDir dir;
  WriteWithBadRow(dir, GetParam().row);
  auto dataset = ReadGeneric(dir.path());
  ASSERT_FALSE(dataset.ok());
  EXPECT_THAT(dataset.status().message(), HasSubstr("manifest.csv:3: "));
  EXPECT_THAT(dataset.status().message(), HasSubstr(GetParam().reason));
}

TEST_P(GenericCsvBadRowTest, IsSkippedAndCountedWithSkipBadRows) {
  TempDir dir;
  WriteWithBadRow(dir, GetParam().row);
  auto dataset = ReadGeneric(dir.path(), /*skip_bad_rows=*/true);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ(dataset->rows.size(), 2u);
  ASSERT_EQ(dataset->skipped.size(), 1u);
  EXPECT_EQ(dataset->skipped[0].line, 3);
  EXPECT_THAT(dataset->skipped[0].reason, HasSubstr(GetParam().reason));
}

INSTANTIATE_TEST_SUITE_P(
    AllCases, GenericCsvBadRowTest,
    ::testing::Values(
        BadRowCase{"UnknownLabel", "L2,P1,images/b.jpg,cancer,34,arm,", "diagnosis 'cancer'"},
        BadRowCase{"MissingImage", "L2,P1,images/none.jpg,benign,34,arm,", "not found"},
        BadRowCase{"AbsoluteImagePath", "L2,P1,/etc/hostname,benign,34,arm,", "is absolute"},
        BadRowCase{"EmptyImagePath", "L2,P1,,benign,34,arm,", "path is empty"},
        BadRowCase{"EmptyGroup", "L2,,images/b.jpg,benign,34,arm,", "patient is empty"},
        BadRowCase{"DuplicateId", "L1,P1,images/b.jpg,benign,34,arm,", "'L1' appears twice"},
        BadRowCase{"WrongFieldCount", "L2,P1,images/b.jpg,benign,34,arm", "row has 6 fields"}),
    [](const ::testing::TestParamInfo<BadRowCase>& info) { return info.param.name; });

TEST(GenericCsvReaderTest, MissingSchemaColumnIsAnError) {
  TempDir dir;
  dir.Write("manifest.csv", testing::CrlfLines({"lesion,patient,path,diagnosis,age",
                                                "L1,P1,images/a.png,benign,34"}));
  WriteImages(dir);
  auto dataset = ReadGeneric(dir.path(), /*skip_bad_rows=*/true);
  ASSERT_FALSE(dataset.ok());
  EXPECT_THAT(dataset.status().message(), HasSubstr("manifest.csv:1: missing column 'site'"));
}

TEST(GenericCsvReaderTest, SchemaWithoutManifestIsAnError) {
  MetadataSchema schema = Schema();
  schema.manifest.reset();
  TempDir dir;
  auto dataset = GenericCsvReader(schema).Read(dir.path());
  ASSERT_FALSE(dataset.ok());
  EXPECT_THAT(dataset.status().message(), HasSubstr("no \"manifest\" section"));
}

TEST(GenericCsvReaderTest, HeaderOnlyIsAnEmptyDatasetError) {
  TempDir dir;
  WriteManifest(dir, {});
  auto dataset = ReadGeneric(dir.path());
  ASSERT_FALSE(dataset.ok());
  EXPECT_THAT(dataset.status().message(), HasSubstr("manifest.csv: no usable rows"));
}

TEST(DatasetFormatTest, MakesTheReaderForEachFormatName) {
  MetadataSchema schema = Schema();
  EXPECT_TRUE(NewDatasetReader("pad-ufes-20", {}, nullptr).ok());
  EXPECT_TRUE(NewDatasetReader("isic-2019", {}, nullptr).ok());
  EXPECT_TRUE(NewDatasetReader("generic", {}, &schema).ok());
  EXPECT_THAT(NewDatasetReader("generic", {}, nullptr).status().message(), HasSubstr("schema"));
  EXPECT_THAT(NewDatasetReader("ham10000", {}, nullptr).status().message(),
              HasSubstr("unknown dataset format 'ham10000'"));
}

}  // namespace
}  // namespace dermfed::client
