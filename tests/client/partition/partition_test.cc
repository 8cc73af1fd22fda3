#include "client/partition.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "client/data/dataset_format.h"
#include "client/data/metadata_schema.h"
#include "client/datagen.h"
#include "tests/client/data/test_files.h"

namespace dermfed::client {
namespace {

namespace fs = std::filesystem;
using ::dermfed::client::testing::TempDir;
using ::testing::HasSubstr;

constexpr char kPad[] = "pad-ufes-20";
constexpr char kIsic[] = "isic-2019";

// Generated datasets shared by every test (generating is the slow part): ~300 images at
// 16 px in each public format.
class GeneratedData {
 public:
  static const GeneratedData& Get() {
    static const GeneratedData* const kData = new GeneratedData;
    return *kData;
  }
  std::string Path(const std::string& format) const { return dir_.Join(format); }

 private:
  GeneratedData() {
    for (const char* format : {kPad, kIsic}) {
      DatagenOptions options;
      options.format = format;
      options.out_dir = Path(format);
      options.images = 300;
      options.seed = 7;
      options.image_size = 16;
      Status status = GenerateDataset(options);
      EXPECT_TRUE(status.ok()) << status;
    }
  }
  TempDir dir_;
};

Dataset ReadDataset(const std::string& format, const std::string& path) {
  auto schema = BuiltinSchema(format);
  EXPECT_TRUE(schema.ok()) << schema.status();
  auto reader = NewDatasetReader(format, {}, &*schema);
  EXPECT_TRUE(reader.ok()) << reader.status();
  auto dataset = (*reader)->Read(path);
  EXPECT_TRUE(dataset.ok()) << path << ": " << dataset.status();
  return dataset.ok() ? *std::move(dataset) : Dataset{};
}

std::string ReadBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

PartitionOptions Options(const std::string& format, const std::string& out, int sites,
                         PartitionScheme scheme, uint64_t seed = 1) {
  PartitionOptions options;
  options.data.format = format;
  options.data.path = GeneratedData::Get().Path(format);
  options.sites = sites;
  options.scheme = scheme;
  options.seed = seed;
  options.out_dir = out;
  return options;
}

// Mean over sites of the total-variation distance between the site's class distribution and
// the pooled one: 0 for identical mixes, near 1 when each site holds other classes.
double MeanClassSkew(const PartitionSummary& summary) {
  std::vector<double> pooled(summary.class_names.size(), 0);
  double total = 0;
  for (const SitePartition& site : summary.sites) {
    for (size_t c = 0; c < pooled.size(); ++c) pooled[c] += site.class_counts[c];
    total += site.rows;
  }
  double skew = 0;
  for (const SitePartition& site : summary.sites) {
    double distance = 0;
    for (size_t c = 0; c < pooled.size(); ++c) {
      distance += std::fabs(site.class_counts[c] / double(site.rows) - pooled[c] / total);
    }
    skew += distance / 2;
  }
  return skew / summary.sites.size();
}

// The formats partitioned in the format-independent tests.
class PartitionFormatTest : public ::testing::TestWithParam<const char*> {};

TEST_P(PartitionFormatTest, EveryRowLandsInExactlyOneSiteThatReadsBack) {
  const std::string format = GetParam();
  TempDir out;
  auto summary = PartitionDataset(Options(format, out.path(), 4, PartitionScheme::kDirichlet));
  ASSERT_TRUE(summary.ok()) << summary.status();

  Dataset input = ReadDataset(format, GeneratedData::Get().Path(format));
  std::multiset<std::string> all_rows;
  std::vector<int64_t> class_counts(input.class_names.size(), 0);
  ASSERT_EQ(summary->sites.size(), 4u);
  for (const SitePartition& planned : summary->sites) {
    Dataset site = ReadDataset(format, out.Join(planned.name));
    EXPECT_EQ(static_cast<int64_t>(site.rows.size()), planned.rows) << planned.name;
    EXPECT_EQ(site.ClassCounts(), planned.class_counts) << planned.name;
    EXPECT_TRUE(site.skipped.empty()) << planned.name << ": " << site.SkippedReport();
    for (const DatasetRow& row : site.rows) all_rows.insert(row.row_id);
    for (size_t c = 0; c < class_counts.size(); ++c) class_counts[c] += site.ClassCounts()[c];
  }
  std::multiset<std::string> input_rows;
  for (const DatasetRow& row : input.rows) input_rows.insert(row.row_id);
  EXPECT_EQ(all_rows, input_rows) << "each input row must be in exactly one site";
  EXPECT_EQ(class_counts, input.ClassCounts());
}

TEST_P(PartitionFormatTest, NoGroupIsInTwoSites) {
  const std::string format = GetParam();
  for (PartitionScheme scheme : {PartitionScheme::kIid, PartitionScheme::kDirichlet}) {
    TempDir out;
    auto summary = PartitionDataset(Options(format, out.path(), 5, scheme));
    ASSERT_TRUE(summary.ok()) << summary.status();
    std::map<std::string, std::string> site_of_group;
    for (const SitePartition& planned : summary->sites) {
      for (const DatasetRow& row : ReadDataset(format, out.Join(planned.name)).rows) {
        auto [it, inserted] = site_of_group.emplace(row.group_id, planned.name);
        EXPECT_TRUE(inserted || it->second == planned.name)
            << PartitionSchemeName(scheme) << ": group " << row.group_id << " is in " << it->second
            << " and " << planned.name;
      }
      EXPECT_EQ(planned.groups,
                static_cast<int64_t>(ReadDataset(format, out.Join(planned.name)).NumGroups()));
    }
  }
}

TEST_P(PartitionFormatTest, SiteFilesKeepTheHeaderAndTheRowsExactText) {
  const std::string format = GetParam();
  TempDir out;
  auto summary = PartitionDataset(Options(format, out.path(), 3, PartitionScheme::kIid));
  ASSERT_TRUE(summary.ok()) << summary.status();
  std::vector<std::string> files = {"metadata.csv"};
  if (format == kIsic) {
    files = {"ISIC_2019_Training_GroundTruth.csv", "ISIC_2019_Training_Metadata.csv"};
  }
  for (const std::string& file : files) {
    std::string input = ReadBytes(fs::path(GeneratedData::Get().Path(format)) / file);
    std::set<std::string> input_lines;
    std::istringstream in(input);
    std::string header, line;
    std::getline(in, header);
    while (std::getline(in, line)) input_lines.insert(line);
    for (const SitePartition& site : summary->sites) {
      std::istringstream site_in(ReadBytes(fs::path(out.Join(site.name)) / file));
      std::string site_header;
      std::getline(site_in, site_header);
      EXPECT_EQ(site_header, header) << site.name << "/" << file;
      int lines = 0;
      while (std::getline(site_in, line)) {
        ++lines;
        EXPECT_EQ(input_lines.count(line), 1u) << site.name << "/" << file << ": " << line;
      }
      EXPECT_EQ(lines, site.rows) << site.name << "/" << file;
    }
  }
}

TEST_P(PartitionFormatTest, SameSeedGivesIdenticalOutputAndAnotherSeedDiffers) {
  const std::string format = GetParam();
  const std::string csv = format == kPad ? "metadata.csv" : "ISIC_2019_Training_GroundTruth.csv";
  TempDir a, b, c;
  for (PartitionScheme scheme : {PartitionScheme::kIid, PartitionScheme::kDirichlet}) {
    const std::string sub = PartitionSchemeName(scheme);
    ASSERT_TRUE(PartitionDataset(Options(format, a.Join(sub), 3, scheme, 11)).ok());
    ASSERT_TRUE(PartitionDataset(Options(format, b.Join(sub), 3, scheme, 11)).ok());
    ASSERT_TRUE(PartitionDataset(Options(format, c.Join(sub), 3, scheme, 12)).ok());
    EXPECT_EQ(ReadBytes(fs::path(a.Join(sub)) / "partition.json"),
              ReadBytes(fs::path(b.Join(sub)) / "partition.json"));
    bool differs = false;
    for (const char* site : {"site-1", "site-2", "site-3"}) {
      const std::string first = ReadBytes(fs::path(a.Join(sub)) / site / csv);
      EXPECT_EQ(first, ReadBytes(fs::path(b.Join(sub)) / site / csv)) << sub << " " << site;
      differs |= first != ReadBytes(fs::path(c.Join(sub)) / site / csv);
    }
    EXPECT_TRUE(differs) << sub << ": seeds 11 and 12 gave the same split";
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, PartitionFormatTest, ::testing::Values(kPad, kIsic),
                         [](const auto& info) {
                           return std::string(info.param) == kPad ? "PadUfes20" : "Isic2019";
                         });

TEST(PartitionTest, IidGivesNearlyEqualSiteSizesAndClassMixes) {
  for (uint64_t seed : {1, 2, 3}) {
    TempDir out;
    auto summary = PartitionDataset(Options(kPad, out.path(), 4, PartitionScheme::kIid, seed));
    ASSERT_TRUE(summary.ok()) << summary.status();
    int64_t smallest = 1 << 30, largest = 0;
    for (const SitePartition& site : summary->sites) {
      smallest = std::min(smallest, site.rows);
      largest = std::max(largest, site.rows);
    }
    // Dealing each group to the smallest site keeps sizes within one group (PAD-UFES-20's
    // generated patients have at most 6 images).
    EXPECT_LE(largest - smallest, 6) << "seed " << seed << "\n" << FormatPartitionTable(*summary);
    EXPECT_LT(MeanClassSkew(*summary), 0.1) << "seed " << seed << "\n"
                                            << FormatPartitionTable(*summary);
  }
}

TEST(PartitionTest, SmallDirichletAlphaSkewsClassesFarMoreThanLargeAlpha) {
  for (uint64_t seed : {1, 2, 3}) {
    TempDir skewed_out, even_out;
    PartitionOptions skewed =
        Options(kPad, skewed_out.path(), 4, PartitionScheme::kDirichlet, seed);
    skewed.alpha = 0.1;
    PartitionOptions even = Options(kPad, even_out.path(), 4, PartitionScheme::kDirichlet, seed);
    even.alpha = 100;
    auto skewed_summary = PartitionDataset(skewed);
    auto even_summary = PartitionDataset(even);
    ASSERT_TRUE(skewed_summary.ok()) << skewed_summary.status();
    ASSERT_TRUE(even_summary.ok()) << even_summary.status();
    const double skew_small = MeanClassSkew(*skewed_summary);
    const double skew_large = MeanClassSkew(*even_summary);
    EXPECT_GT(skew_small, 0.3) << "alpha 0.1, seed " << seed << "\n"
                               << FormatPartitionTable(*skewed_summary);
    EXPECT_LT(skew_large, 0.15) << "alpha 100, seed " << seed << "\n"
                                << FormatPartitionTable(*even_summary);
    EXPECT_GT(skew_small, 2 * skew_large) << "seed " << seed;
  }
}

TEST(PartitionTest, DirichletLeavesNoSiteEmptyEvenWithTinyAlpha) {
  TempDir out;
  PartitionOptions options = Options(kIsic, out.path(), 8, PartitionScheme::kDirichlet, 5);
  options.alpha = 0.01;
  auto summary = PartitionDataset(options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  for (const SitePartition& site : summary->sites) {
    EXPECT_GT(site.rows, 0) << site.name << "\n" << FormatPartitionTable(*summary);
  }
}

// The value a group is placed by: its rows' most common non-missing value.
std::map<std::string, std::string> GroupValues(const Dataset& dataset, const std::string& column,
                                               const std::set<std::string>& missing) {
  const int index = dataset.MetadataColumn(column);
  std::map<std::string, std::map<std::string, int>> counts;
  for (const DatasetRow& row : dataset.rows) {
    std::string key = CanonicalValue(row.metadata[index]);
    counts[row.group_id];
    if (missing.count(key) == 0) ++counts[row.group_id][key];
  }
  std::map<std::string, std::string> values;
  for (const auto& [group, by_value] : counts) {
    std::string best;
    int best_count = 0;
    for (const auto& [value, count] : by_value) {
      if (count > best_count) best = value, best_count = count;
    }
    values[group] = best;  // "" = no value
  }
  return values;
}

TEST(PartitionTest, ColumnSchemePutsEachValueInOneSite) {
  for (const auto& [format, column] : std::vector<std::pair<std::string, std::string>>{
           {kPad, "region"}, {kIsic, "anatom_site_general"}}) {
    TempDir out;
    PartitionOptions options = Options(format, out.path(), 3, PartitionScheme::kColumn);
    options.column = column;
    auto summary = PartitionDataset(options);
    ASSERT_TRUE(summary.ok()) << summary.status();
    auto schema = BuiltinSchema(format);
    ASSERT_TRUE(schema.ok());
    std::set<std::string> missing = {""};
    for (const std::string& token : schema->MissingValuesOf(*schema->FindColumn(column))) {
      missing.insert(CanonicalValue(token));
    }
    std::map<std::string, std::string> site_of_value;
    std::set<std::string> listed;
    for (const SitePartition& site : summary->sites) {
      EXPECT_FALSE(site.values.empty()) << format << " " << site.name;
      for (const std::string& value : site.values) {
        EXPECT_TRUE(listed.insert(value).second) << value << " is listed in two sites";
      }
      Dataset data = ReadDataset(format, out.Join(site.name));
      for (const auto& [group, value] : GroupValues(data, column, missing)) {
        auto [it, inserted] = site_of_value.emplace(value, site.name);
        EXPECT_EQ(it->second, site.name)
            << format << ": " << column << " value '" << value << "' (group " << group << ") is in "
            << it->second << " and " << site.name;
      }
    }
    EXPECT_GE(site_of_value.size(), 3u) << FormatPartitionTable(*summary);
  }
}

TEST(PartitionTest, HardLinksImagesOnOneFileSystemAndCopiesOnRequest) {
  TempDir linked_out, copied_out;
  auto linked = PartitionDataset(Options(kPad, linked_out.path(), 2, PartitionScheme::kIid));
  ASSERT_TRUE(linked.ok()) << linked.status();
  EXPECT_EQ(linked->images_linked + linked->images_copied, 300);
  PartitionOptions copy = Options(kPad, copied_out.path(), 2, PartitionScheme::kIid);
  copy.link_images = false;
  auto copied = PartitionDataset(copy);
  ASSERT_TRUE(copied.ok()) << copied.status();
  EXPECT_EQ(copied->images_linked, 0);
  EXPECT_EQ(copied->images_copied, 300);
  Dataset site = ReadDataset(kPad, copied_out.Join("site-1"));
  ASSERT_FALSE(site.rows.empty());
  EXPECT_EQ(fs::hard_link_count(site.rows[0].image_path), 1u);
}

TEST(PartitionTest, WritesPartitionJson) {
  TempDir out;
  PartitionOptions options = Options(kPad, out.path(), 2, PartitionScheme::kDirichlet, 9);
  options.alpha = 0.25;
  auto summary = PartitionDataset(options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  const std::string json = ReadBytes(fs::path(out.path()) / "partition.json");
  EXPECT_EQ(json, PartitionSummaryToJson(*summary));
  EXPECT_THAT(json, HasSubstr("\"scheme\": \"dirichlet\""));
  EXPECT_THAT(json, HasSubstr("\"alpha\": 0.25"));
  EXPECT_THAT(json, HasSubstr("\"seed\": 9"));
  EXPECT_THAT(json, HasSubstr("\"name\": \"site-2\""));
  EXPECT_THAT(json, HasSubstr("\"class_counts\": {\n        \"ACK\": "));
}

TEST(PartitionTest, RefusesAnOutFolderThatHoldsSites) {
  TempDir out;
  out.Write("site-7/keep.txt", "an earlier run");
  auto summary = PartitionDataset(Options(kPad, out.path(), 3, PartitionScheme::kIid));
  ASSERT_FALSE(summary.ok());
  EXPECT_THAT(summary.status().message(), HasSubstr(out.Join("site-7")));
  EXPECT_FALSE(fs::exists(out.Join("site-1"))) << "nothing may be written when refusing";
}

TEST(PartitionTest, RefusesAnOutFolderInsideTheInput) {
  PartitionOptions options = Options(kPad, "", 2, PartitionScheme::kIid);
  options.out_dir = (fs::path(options.data.path) / "sites").string();
  auto summary = PartitionDataset(options);
  ASSERT_FALSE(summary.ok());
  EXPECT_THAT(summary.status().message(), HasSubstr("inside"));
  EXPECT_FALSE(fs::exists(options.out_dir));
}

TEST(PartitionTest, RefusesFewerThanOneSite) {
  TempDir out;
  auto summary = PartitionDataset(Options(kPad, out.path(), 0, PartitionScheme::kIid));
  ASSERT_FALSE(summary.ok());
  EXPECT_THAT(summary.status().message(), HasSubstr("--sites is 0"));
}

TEST(PartitionTest, RefusesMoreSitesThanGroups) {
  TempDir out;
  auto summary = PartitionDataset(Options(kPad, out.path(), 1000, PartitionScheme::kIid));
  ASSERT_FALSE(summary.ok());
  EXPECT_THAT(summary.status().message(), HasSubstr("cannot fill 1000 sites"));
  EXPECT_FALSE(fs::exists(out.Join("site-1")));
}

TEST(PartitionTest, RefusesAnUnknownColumnNamingIt) {
  TempDir out;
  PartitionOptions options = Options(kIsic, out.path(), 2, PartitionScheme::kColumn);
  options.column = "hospital_ward";
  auto summary = PartitionDataset(options);
  ASSERT_FALSE(summary.ok());
  EXPECT_THAT(summary.status().message(), HasSubstr("'hospital_ward'"));
  EXPECT_THAT(summary.status().message(), HasSubstr("anatom_site_general"));
}

TEST(PartitionTest, RefusesAColumnWithFewerValuesThanSites) {
  TempDir out;
  PartitionOptions options = Options(kIsic, out.path(), 6, PartitionScheme::kColumn);
  options.column = "sex";
  auto summary = PartitionDataset(options);
  ASSERT_FALSE(summary.ok());
  EXPECT_THAT(summary.status().message(), HasSubstr("column 'sex' has"));
}

// A generic manifest with what copying records byte for byte must survive: a byte-order
// mark, CRLF line endings, a quoted field holding a line break and a quote, a blank line, and
// no line break after the last record.
TEST(PartitionTest, GenericManifestRecordsAreCopiedByteForByte) {
  TempDir data, out;
  MetadataSchema schema;
  schema.name = "clinic";
  schema.class_names = {"benign", "malignant"};
  ColumnSpec note;
  note.name = "note";
  note.used = false;
  schema.columns = {note};
  ManifestSpec manifest;
  manifest.file = "manifest.csv";
  manifest.image_column = "image";
  manifest.label_column = "label";
  manifest.group_column = "patient";
  schema.manifest = manifest;
  ASSERT_TRUE(WriteSchemaFile(schema, data.Join("schema.json")).ok());
  const std::vector<std::string> records = {
      "a/1.png,benign,P1,plain\r\n",
      "a/2.png,malignant,P1,\"two\r\nlines, \"\"quoted\"\"\"\r\n",
      "b/3.png,benign,P2,\"\"\r\n",
      "b/4.png,malignant,P3,x\r\n",
  };
  std::string manifest_text = "\xEF\xBB\xBFimage,label,patient,note\r\n";
  for (size_t i = 0; i < records.size(); ++i) {
    manifest_text += records[i];
    if (i == 1) manifest_text += "\r\n";  // a blank line, which is no record
  }
  manifest_text += "c/5.png,benign,P4,last";  // no line break at the end
  data.Write("input/manifest.csv", manifest_text);
  for (const char* image : {"a/1.png", "a/2.png", "b/3.png", "b/4.png", "c/5.png"}) {
    data.Write(std::string("input/") + image, image);
  }

  PartitionOptions options;
  options.data.format = "generic";
  options.data.path = data.Join("input");
  options.data.schema_path = data.Join("schema.json");
  options.sites = 4;
  options.scheme = PartitionScheme::kIid;
  options.out_dir = out.path();
  auto summary = PartitionDataset(options);
  ASSERT_TRUE(summary.ok()) << summary.status();

  std::string all;
  for (const SitePartition& site : summary->sites) {
    const std::string text = ReadBytes(fs::path(out.Join(site.name)) / "manifest.csv");
    ASSERT_EQ(text.rfind("\xEF\xBB\xBFimage,label,patient,note\r\n", 0), 0u) << site.name;
    const std::string body = text.substr(strlen("\xEF\xBB\xBFimage,label,patient,note\r\n"));
    if (body.find("P1") != std::string::npos) {
      EXPECT_EQ(body, records[0] + records[1]) << "patient P1's rows, in file order";
    }
    if (body.find("c/5.png") != std::string::npos) {
      EXPECT_EQ(body, "c/5.png,benign,P4,last\r\n") << "the last row gains the file's line break";
      EXPECT_TRUE(fs::exists(fs::path(out.Join(site.name)) / "c/5.png"));
    }
    all += body;
  }
  for (const std::string& record : records) EXPECT_THAT(all, HasSubstr(record));
}

TEST(PartitionTest, FormatsATableWithATotalLine) {
  TempDir out;
  auto summary = PartitionDataset(Options(kPad, out.path(), 2, PartitionScheme::kIid));
  ASSERT_TRUE(summary.ok()) << summary.status();
  const std::string table = FormatPartitionTable(*summary);
  EXPECT_THAT(table, HasSubstr("site    rows  groups"));
  EXPECT_THAT(table, HasSubstr("ACK"));
  EXPECT_THAT(table, HasSubstr("\nsite-2 "));
  EXPECT_THAT(table, HasSubstr("\ntotal    300"));
}

}  // namespace
}  // namespace dermfed::client
