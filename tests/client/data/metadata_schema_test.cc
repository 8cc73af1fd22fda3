#include "client/data/metadata_schema.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "client/data/isic_2019_reader.h"
#include "client/data/pad_ufes_20_reader.h"
#include "tests/client/data/test_files.h"

namespace dermfed::client {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kMinimal[] = R"({"format_version": 1, "class_names": ["a", "b"], "columns": []})";

// kMinimal with one column whose JSON is `column`.
std::string WithColumn(const std::string& column) {
  return R"({"format_version": 1, "class_names": ["a", "b"], "columns": [)" + column + "]}";
}

Status ParseError(const std::string& json) { return ParseSchemaJson(json, "s.json").status(); }

TEST(MetadataSchemaTest, BuiltinPadUfes20MatchesTheReader) {
  auto schema = BuiltinSchema("pad-ufes-20");
  ASSERT_TRUE(schema.ok()) << schema.status();
  EXPECT_EQ(schema->class_names, PadUfes20Reader::ClassNames());
  EXPECT_EQ(schema->ColumnNames(), PadUfes20Reader::MetadataColumns())
      << "the schema lists the metadata columns in the file's order";
  const ColumnSpec* region = schema->FindColumn("region");
  ASSERT_NE(region, nullptr);
  EXPECT_EQ(region->values.size(), 14u);
  EXPECT_FALSE(schema->FindColumn("biopsed")->used);
  EXPECT_THAT(schema->missing_values, ElementsAre("", "UNK"));
  EXPECT_FALSE(schema->unseen_as_missing);
}

TEST(MetadataSchemaTest, BuiltinIsic2019MatchesTheReader) {
  auto schema = BuiltinSchema("isic-2019");
  ASSERT_TRUE(schema.ok()) << schema.status();
  EXPECT_EQ(schema->class_names, Isic2019Reader::ClassNames());
  EXPECT_EQ(schema->ColumnNames(), Isic2019Reader::MetadataColumns());
  EXPECT_EQ(schema->FindColumn("anatom_site_general")->values.size(), 8u);
}

TEST(MetadataSchemaTest, ShippedFilesAreTheBuiltinOnes) {
  for (const auto& [file, name] :
       {std::pair<std::string, std::string>{"pad_ufes_20.json", "pad-ufes-20"},
        {"isic_2019.json", "isic-2019"}}) {
    auto loaded = LoadSchemaFile(std::string(DERMFED_SOURCE_DIR) + "/client/data/schemas/" + file);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    auto builtin = BuiltinSchema(name);
    ASSERT_TRUE(builtin.ok()) << builtin.status();
    EXPECT_EQ(SchemaToJson(*loaded), SchemaToJson(*builtin)) << file;
  }
  EXPECT_THAT(BuiltinSchema("ham10000").status().message(), HasSubstr("no builtin schema"));
}

TEST(MetadataSchemaTest, JsonRoundTrips) {
  auto schema = BuiltinSchema("pad-ufes-20");
  ASSERT_TRUE(schema.ok());
  schema->manifest = ManifestSpec{"m.csv", "img", "dx", "patient", ""};
  schema->unseen_as_missing = true;
  std::string json = SchemaToJson(*schema);
  auto again = ParseSchemaJson(json, "again.json");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(SchemaToJson(*again), json);
  EXPECT_TRUE(again->unseen_as_missing);
  EXPECT_EQ(again->manifest->group_column, "patient");
}

TEST(MetadataSchemaTest, WritesAFileThatLoadsBack) {
  testing::TempDir dir;
  auto schema = BuiltinSchema("isic-2019");
  ASSERT_TRUE(schema.ok());
  ASSERT_TRUE(WriteSchemaFile(*schema, dir.Join("s.json")).ok());
  auto loaded = LoadSchemaFile(dir.Join("s.json"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(SchemaToJson(*loaded), SchemaToJson(*schema));
}

TEST(MetadataSchemaTest, EmptyStringIsAlwaysMissing) {
  auto schema = ParseSchemaJson(
      R"({"format_version": 1, "class_names": ["a"], "missing_values": ["NA"], "columns": [
          {"name": "x", "type": "categorical", "values": ["y"], "missing_values": ["?"]}]})",
      "s.json");
  ASSERT_TRUE(schema.ok()) << schema.status();
  EXPECT_THAT(schema->missing_values, ElementsAre("", "NA"));
  EXPECT_THAT(schema->MissingValuesOf(schema->columns[0]), ElementsAre("", "?"));
}

TEST(MetadataSchemaTest, RejectsMalformedSchemasNamingTheProblem) {
  EXPECT_TRUE(ParseSchemaJson(kMinimal, "s.json").ok());
  EXPECT_THAT(ParseError("{not json").message(), HasSubstr("s.json: not valid JSON"));
  EXPECT_THAT(ParseError("[]").message(), HasSubstr("must be a JSON object"));
  EXPECT_THAT(ParseError(R"({"format_version": 2, "class_names": ["a"], "columns": []})").message(),
              HasSubstr("format_version is 2"));
  EXPECT_THAT(ParseError(R"({"format_version": 1, "class_names": [], "columns": []})").message(),
              HasSubstr("'class_names' is empty"));
  EXPECT_THAT(
      ParseError(R"({"format_version": 1, "class_names": ["a", "a"], "columns": []})").message(),
      HasSubstr("class_names 'a' and 'a'"));
  EXPECT_THAT(
      ParseError(R"({"format_version": 1, "class_names": ["a"], "columns": [], "colums": 1})")
          .message(),
      HasSubstr("unknown key 'colums'"));
  EXPECT_THAT(
      ParseError(
          R"({"format_version": 1, "class_names": ["a"], "unseen_values": "guess", "columns": []})")
          .message(),
      HasSubstr("'unseen_values' is 'guess'"));
}

TEST(MetadataSchemaTest, RejectsMalformedColumnsNamingTheColumn) {
  EXPECT_THAT(ParseError(WithColumn(R"({"name": "age", "type": "numeric", "mean": 1, "std": 0})"))
                  .message(),
              HasSubstr("s.json: columns[0] ('age'): 'std' must be > 0"));
  EXPECT_THAT(ParseError(WithColumn(R"({"name": "age", "type": "numeric", "std": 1})")).message(),
              HasSubstr("('age'): missing key 'mean'"));
  EXPECT_THAT(
      ParseError(WithColumn(R"({"name": "age", "type": "numeric", "mean": 1, "std_dev": 1})"))
          .message(),
      HasSubstr("missing key 'std'"));
  EXPECT_THAT(ParseError(WithColumn(R"({"name": "x", "type": "text"})")).message(),
              HasSubstr("'type' is 'text'"));
  EXPECT_THAT(
      ParseError(WithColumn(R"({"name": "f", "type": "categorical", "values": ["3", "3.0"]})"))
          .message(),
      HasSubstr("values '3' and '3.0' are the same value"));
  EXPECT_THAT(
      ParseError(
          WithColumn(
              R"({"name": "f", "type": "categorical", "values": ["UNK"], "missing_values": ["unk"]})"))
          .message(),
      HasSubstr("value 'UNK' is also a missing-value token"));
  EXPECT_THAT(ParseError(WithColumn(R"({"name": "x", "type": "categorical", "values": ["a"]},
                                       {"name": "x", "type": "categorical", "values": ["a"]})"))
                  .message(),
              HasSubstr("column 'x' is declared twice"));
  EXPECT_THAT(
      ParseError(WithColumn(R"({"name": "x", "type": "categorical", "values": [1]})")).message(),
      HasSubstr("'values' must be an array of strings"));
}

TEST(MetadataSchemaTest, LoadNamesAMissingFile) {
  testing::TempDir dir;
  auto schema = LoadSchemaFile(dir.Join("none.json"));
  EXPECT_EQ(schema.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(schema.status().message(), HasSubstr("none.json"));
}

TEST(CanonicalValueTest, TrimsLowersAndWritesWholeNumbersOneWay) {
  EXPECT_EQ(CanonicalValue(" True "), "true");
  EXPECT_EQ(CanonicalValue("3.0"), "3");
  EXPECT_EQ(CanonicalValue("3"), "3");
  EXPECT_EQ(CanonicalValue("-0.0"), "0");
  EXPECT_EQ(CanonicalValue("2.5"), "2.5");
  EXPECT_EQ(CanonicalValue("head/neck"), "head/neck");
  EXPECT_EQ(CanonicalValue(""), "");
  EXPECT_EQ(CanonicalValue("nan"), "nan");
}

Dataset SmallDataset() {
  Dataset dataset;
  dataset.source_file = "m.csv";
  dataset.class_names = {"a", "b"};
  dataset.metadata_columns = {"age", "site"};
  int line = 2;
  for (auto [age, site] : std::vector<std::pair<const char*, const char*>>{
           {"10", "arm"}, {"20", "leg"}, {"", "arm"}, {"30.0", "UNK"}, {"40", " Arm"}}) {
    dataset.rows.push_back(DatasetRow{"x.png", {age, site}, 0, "g", "r", line++});
  }
  return dataset;
}

TEST(FitSchemaTest, ComputesStatisticsAndVocabularyOnlyWhenAsked) {
  auto base = ParseSchemaJson(R"({"format_version": 1, "class_names": ["a", "b"],
      "missing_values": ["", "UNK"], "columns": [
      {"name": "age", "type": "numeric", "mean": 0, "std": 1},
      {"name": "site", "type": "categorical", "values": []}]})",
                              "base.json");
  ASSERT_TRUE(base.ok()) << base.status();
  auto fitted = FitSchema(*base, SmallDataset());
  ASSERT_TRUE(fitted.ok()) << fitted.status();
  const ColumnSpec& age = fitted->columns[0];
  EXPECT_THAT(age.mean, DoubleNear(25.0, 1e-9));
  EXPECT_THAT(age.stddev, DoubleNear(11.180339887, 1e-6));  // population std of 10,20,30,40
  // "arm" and " Arm" are one value; first spelling kept; most frequent first.
  EXPECT_THAT(fitted->columns[1].values, ElementsAre("arm", "leg"));
}

TEST(FitSchemaTest, NamesTheRowOfAValueThatIsNotANumber) {
  auto base = ParseSchemaJson(
      WithColumn(R"({"name": "site", "type": "numeric", "mean": 0, "std": 1})"), "b.json");
  ASSERT_TRUE(base.ok());
  auto fitted = FitSchema(*base, SmallDataset());
  ASSERT_FALSE(fitted.ok());
  EXPECT_THAT(fitted.status().message(),
              HasSubstr("m.csv:2: column 'site': 'arm' is not a number"));
}

TEST(FitSchemaTest, NamesAColumnTheDataLacks) {
  auto base = ParseSchemaJson(WithColumn(R"({"name": "sex", "type": "categorical", "values": []})"),
                              "b.json");
  ASSERT_TRUE(base.ok());
  EXPECT_THAT(FitSchema(*base, SmallDataset()).status().message(),
              HasSubstr("has no metadata column 'sex'"));
}

}  // namespace
}  // namespace dermfed::client
