#include "client/data/metadata_encoder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "client/data/metadata_schema.h"
#include "client/data/pad_ufes_20_reader.h"

namespace dermfed::client {
namespace {

using ::testing::ElementsAre;
using ::testing::FloatNear;
using ::testing::HasSubstr;
using ::testing::Pointwise;

constexpr char kSchema[] = R"({
  "format_version": 1, "name": "small", "class_names": ["a", "b"],
  "missing_values": ["", "UNK"],
  "columns": [
    {"name": "sex", "type": "categorical", "values": ["male", "female"]},
    {"name": "age", "type": "numeric", "mean": 50, "std": 10},
    {"name": "site", "type": "categorical", "values": ["arm", "leg"], "used": false},
    {"name": "fitz", "type": "categorical", "values": ["1", "2", "3"], "missing_values": ["?"]}
  ]})";

MetadataSchema Schema(bool unseen_as_missing = false) {
  auto schema = ParseSchemaJson(kSchema, "small.json");
  EXPECT_TRUE(schema.ok()) << schema.status();
  schema->unseen_as_missing = unseen_as_missing;
  return *schema;
}

// The data's columns in another order than the schema's, with one the schema lacks.
const std::vector<std::string> kColumns = {"age", "fitz", "notes", "sex"};

MetadataEncoder Encoder(bool unseen_as_missing = false) {
  auto encoder = MetadataEncoder::Create(Schema(unseen_as_missing), kColumns);
  EXPECT_TRUE(encoder.ok()) << encoder.status();
  return *encoder;
}

std::vector<float> Encode(const std::vector<std::string>& values) {
  auto out = Encoder().Encode(values);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : std::vector<float>();
}

TEST(MetadataEncoderTest, WidthAndFeatureNamesFollowTheSchema) {
  MetadataEncoder encoder = Encoder();
  // sex 2 + missing, age value + missing, site unused, fitz 3 + missing.
  EXPECT_EQ(encoder.width(), 3 + 2 + 4);
  EXPECT_THAT(encoder.feature_names(),
              ElementsAre("sex=male", "sex=female", "sex:missing", "age", "age:missing", "fitz=1",
                          "fitz=2", "fitz=3", "fitz:missing"));
}

TEST(MetadataEncoderTest, EncodesPresentValuesByHand) {
  //                       age    fitz   notes  sex
  EXPECT_THAT(Encode({"65", "2", "free text", "female"}),
              Pointwise(FloatNear(1e-6), std::vector<float>{0, 1, 0, 1.5f, 0, 0, 1, 0, 0}));
}

TEST(MetadataEncoderTest, EncodesMissingValuesAsTheMissingSlots) {
  EXPECT_THAT(Encode({"", "", "", ""}), ElementsAre(0, 0, 1, 0, 1, 0, 0, 0, 1));
  // UNK is missing by the schema default; "?" only for fitz, which overrides the default.
  EXPECT_THAT(Encode({"UNK", "?", "", "UNK"}), ElementsAre(0, 0, 1, 0, 1, 0, 0, 0, 1));
}

TEST(MetadataEncoderTest, MatchesValuesAfterTrimmingCaseAndNumberSpelling) {
  EXPECT_THAT(Encode({" 50.0 ", "3.0", "", " MALE"}), ElementsAre(1, 0, 0, 0, 0, 0, 0, 1, 0));
}

TEST(MetadataEncoderTest, UnseenCategoryIsAnErrorNamingColumnAndValue) {
  auto out = Encoder().Encode({"50", "7", "", "male"});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(),
              HasSubstr("column 'fitz': value '7' is not in the schema's vocabulary (1, 2, 3)"));
  // A token that is missing for one column is an ordinary (unseen) value for another.
  EXPECT_FALSE(Encoder().Encode({"50", "UNK", "", "male"}).ok());
}

TEST(MetadataEncoderTest, UnseenCategoryIsMissingWhenTheSchemaSaysSo) {
  auto out = Encoder(/*unseen_as_missing=*/true).Encode({"50", "7", "", "other"});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(*out, ElementsAre(0, 0, 1, 0, 0, 0, 0, 0, 1));
}

TEST(MetadataEncoderTest, NumericThatIsNotANumberIsAnError) {
  for (const char* bad : {"fifty", "inf", "nan", "5O"}) {
    auto out = Encoder().Encode({bad, "1", "", "male"});
    ASSERT_FALSE(out.ok()) << bad;
    EXPECT_THAT(out.status().message(), HasSubstr("column 'age': '")) << bad;
  }
}

// Found by tests/fuzz/metadata_encoder_fuzzer: finite as a double, infinite as a float.
TEST(MetadataEncoderTest, NumericBeyondFloatRangeIsAnError) {
  for (const char* bad : {"1e39", "-3.5e38", "66666666666666666666666666666666666666666"}) {
    auto out = Encoder().Encode({bad, "1", "", "male"});
    ASSERT_FALSE(out.ok()) << bad;
    EXPECT_THAT(out.status().message(), HasSubstr("column 'age': '")) << bad;
    EXPECT_THAT(out.status().message(), HasSubstr("out of range")) << bad;
  }
}

TEST(MetadataEncoderTest, WrongValueCountIsAnError) {
  EXPECT_THAT(Encoder().Encode({"1", "2"}).status().message(),
              HasSubstr("metadata has 2 values, the encoder expects 4"));
}

TEST(MetadataEncoderTest, CreateNamesEveryUsedColumnTheDataLacks) {
  auto encoder = MetadataEncoder::Create(Schema(), {"age", "notes"});
  ASSERT_FALSE(encoder.ok());
  EXPECT_THAT(encoder.status().message(), HasSubstr("no column 'sex', 'fitz'"));
  // "site" is not used, so it need not be there.
  EXPECT_THAT(encoder.status().message(), ::testing::Not(HasSubstr("'site'")));
}

TEST(MetadataEncoderTest, CreateRefusesAnEmptyVocabulary) {
  MetadataSchema schema = Schema();
  schema.columns[0].values.clear();
  EXPECT_THAT(MetadataEncoder::Create(schema, kColumns).status().message(),
              HasSubstr("'sex' has an empty vocabulary"));
}

TEST(MetadataEncoderTest, BuiltinPadUfes20WidthAndTheRealRow) {
  auto schema = BuiltinSchema("pad-ufes-20");
  ASSERT_TRUE(schema.ok());
  auto encoder = MetadataEncoder::Create(*schema, PadUfes20Reader::MetadataColumns());
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  // 13 booleans x 3, 2 backgrounds x 15, gender 3, fitspatrick 7, region 15, 3 numerics x 2;
  // biopsed is not used.
  EXPECT_EQ(encoder->width(), 100);
  // The real row's metadata (without patient_id, lesion_id, diagnostic, img_id).
  std::vector<std::string> real = {"False",  "False", "POMERANIA", "POMERANIA", "55",   "False",
                                   "FEMALE", "True",  "True",      "True",      "True", "3.0",
                                   "NECK",   "6.0",   "5.0",       "True",      "True", "False",
                                   "True",   "True",  "True",      "True"};
  auto out = encoder->Encode(real);
  ASSERT_TRUE(out.ok()) << out.status();
  const auto& names = encoder->feature_names();
  auto at = [&](const std::string& name) {
    auto it = std::find(names.begin(), names.end(), name);
    EXPECT_NE(it, names.end()) << name;
    return (*out)[it - names.begin()];
  };
  EXPECT_EQ(at("fitspatrick=3"), 1.0f);
  EXPECT_EQ(at("region=NECK"), 1.0f);
  EXPECT_EQ(at("background_father=POMERANIA"), 1.0f);
  EXPECT_EQ(at("hurt=False"), 1.0f);
  EXPECT_EQ(at("age:missing"), 0.0f);
  EXPECT_NEAR(at("age"), (55 - 60.46) / 15.89, 1e-5);
  float total = 0;
  for (float v : *out) total += v;
  // 18 categoricals give one 1 each; the numerics add their standardized values.
  EXPECT_NEAR(total - at("age") - at("diameter_1") - at("diameter_2"), 18.0, 1e-5);
}

TEST(EncodeDatasetTest, ErrorNamesFileAndLine) {
  Dataset dataset;
  dataset.source_file = "m.csv";
  dataset.class_names = {"a", "b"};
  dataset.metadata_columns = kColumns;
  dataset.rows.push_back(DatasetRow{"1.png", {"50", "1", "", "male"}, 0, "g1", "r1", 2});
  dataset.rows.push_back(DatasetRow{"2.png", {"50", "9", "", "male"}, 1, "g2", "r2", 3});
  dataset.rows.push_back(DatasetRow{"3.png", {"60", "2", "", "female"}, 1, "g3", "r3", 4});
  MetadataEncoder encoder = Encoder();

  Dataset strict = dataset;
  auto failed = EncodeDataset(encoder, &strict, /*skip_bad_rows=*/false);
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(failed.status().message(), HasSubstr("m.csv:3: column 'fitz': value '9'"));

  auto matrix = EncodeDataset(encoder, &dataset, /*skip_bad_rows=*/true);
  ASSERT_TRUE(matrix.ok()) << matrix.status();
  ASSERT_EQ(dataset.rows.size(), 2u);
  EXPECT_EQ(dataset.rows[1].row_id, "r3");
  EXPECT_EQ(matrix->size(), 2u * encoder.width());
  EXPECT_EQ((*matrix)[encoder.width() + 1], 1.0f);  // r3: sex=female
  ASSERT_EQ(dataset.skipped.size(), 1u);
  EXPECT_EQ(dataset.skipped[0].line, 3);
}

TEST(EncodeDatasetTest, NoRowLeftIsAnError) {
  Dataset dataset;
  dataset.source_file = "m.csv";
  dataset.metadata_columns = kColumns;
  dataset.rows.push_back(DatasetRow{"1.png", {"x", "1", "", "male"}, 0, "g", "r", 2});
  auto matrix = EncodeDataset(Encoder(), &dataset, /*skip_bad_rows=*/true);
  ASSERT_FALSE(matrix.ok());
  EXPECT_THAT(matrix.status().message(), HasSubstr("m.csv: no row left"));
}

}  // namespace
}  // namespace dermfed::client
