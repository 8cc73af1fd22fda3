#include "tests/fuzz/dataset_fuzz.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "client/data/dataset.h"
#include "client/data/dataset_format.h"
#include "client/data/metadata_encoder.h"
#include "client/data/split.h"
#include "tests/fuzz/fuzz_util.h"

namespace dermfed::fuzz {
namespace {

using client::Dataset;

void CheckDataset(const Dataset& d, const std::string& path) {
  std::set<std::string> ids;
  for (const client::DatasetRow& row : d.rows) {
    FUZZ_CHECK(row.label >= 0 && row.label < static_cast<int>(d.class_names.size()),
               "row with label " + std::to_string(row.label) + " out of range");
    FUZZ_CHECK(row.metadata.size() == d.metadata_columns.size(),
               "row '" + row.row_id + "' has " + std::to_string(row.metadata.size()) +
                   " metadata values for " + std::to_string(d.metadata_columns.size()) +
                   " columns");
    FUZZ_CHECK(row.source_line >= 2, "row '" + row.row_id + "' on line " +
                                         std::to_string(row.source_line) + " (the header is 1)");
    FUZZ_CHECK(!row.group_id.empty(), "row '" + row.row_id + "' has no group");
    FUZZ_CHECK(ids.insert(row.row_id).second, "row id '" + row.row_id + "' returned twice");
    std::error_code ec;
    FUZZ_CHECK(std::filesystem::is_regular_file(row.image_path, ec),
               "row '" + row.row_id + "' names a missing image " + row.image_path);
  }
  for (const client::SkippedRow& s : d.skipped) {
    FUZZ_CHECK(!s.file.empty() && s.line >= 1 && !s.reason.empty(),
               "skipped row without file, line or reason: " + s.file + ":" +
                   std::to_string(s.line) + ": " + s.reason);
  }
}

void EncodeAndSplit(Dataset* d, const client::MetadataSchema& schema, bool skip_bad_rows) {
  if (d->class_names != schema.class_names) return;  // LoadSiteData refuses this
  auto encoder = client::MetadataEncoder::Create(schema, d->metadata_columns);
  if (!encoder.ok()) return;
  auto matrix = client::EncodeDataset(*encoder, d, skip_bad_rows);
  Trace("encode", matrix.status());
  if (!matrix.ok()) return;
  FUZZ_CHECK(matrix->size() == d->rows.size() * static_cast<size_t>(encoder->width()),
             "encoded matrix has " + std::to_string(matrix->size()) + " floats for " +
                 std::to_string(d->rows.size()) + " rows of width " +
                 std::to_string(encoder->width()));
  for (float v : *matrix) FUZZ_CHECK(std::isfinite(v), "encoder produced a non-finite value");

  auto split = client::SplitByGroup(*d, client::SplitFractions{}, /*seed=*/7);
  Trace("split", split.status());
  if (!split.ok()) return;
  std::vector<int> all;
  for (const auto* part : {&split->train, &split->validation, &split->test}) {
    all.insert(all.end(), part->begin(), part->end());
  }
  std::sort(all.begin(), all.end());
  FUZZ_CHECK(all.size() == d->rows.size(), "split lost or duplicated rows");
  for (size_t i = 0; i < all.size(); ++i) FUZZ_CHECK(all[i] == static_cast<int>(i), "split index");
  // No group in two parts.
  std::map<std::string, int> part_of;
  int part_index = 0;
  for (const auto* part : {&split->train, &split->validation, &split->test}) {
    for (int i : *part) {
      auto [it, inserted] = part_of.emplace(d->rows[static_cast<size_t>(i)].group_id, part_index);
      FUZZ_CHECK(inserted || it->second == part_index,
                 "group '" + it->first + "' is in two parts of the split");
    }
    ++part_index;
  }
}

}  // namespace

void ReadEncodeSplit(const std::string& format, const std::string& path,
                     const client::MetadataSchema& schema) {
  for (bool skip_bad_rows : {false, true}) {
    client::ReadOptions options;
    options.skip_bad_rows = skip_bad_rows;
    auto reader = client::NewDatasetReader(format, options, &schema);
    FUZZ_CHECK(reader.ok(), reader.status().ToString());
    auto dataset = (*reader)->Read(path);
    Trace(format + (skip_bad_rows ? " read, skipping bad rows" : " read"), dataset.status());
    if (!dataset.ok()) {
      FUZZ_CHECK(!dataset.status().message().empty(), "dataset refused without a reason");
      continue;
    }
    FUZZ_CHECK(!dataset->rows.empty(), "a dataset without rows was returned");
    if (!skip_bad_rows) FUZZ_CHECK(dataset->skipped.empty(), "rows skipped without skip_bad_rows");
    CheckDataset(*dataset, path);
    EncodeAndSplit(&*dataset, schema, skip_bad_rows);
  }
}

std::string ImageFolder(const std::string& name, const std::vector<std::string>& images) {
  const std::string dir = ScratchDir() + "/" + name;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    for (const std::string& image : images) WriteScratchFile(name + "/" + image, "image");
    std::filesystem::create_directories(dir, ec);
  }
  return dir;
}

}  // namespace dermfed::fuzz
