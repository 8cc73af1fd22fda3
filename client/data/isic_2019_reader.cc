#include "client/data/isic_2019_reader.h"

#include <cmath>
#include <filesystem>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/data/csv_table.h"
#include "client/data/image_index.h"

namespace dermfed::client {
namespace {

constexpr char kDownsampledSuffix[] = "_downsampled";

struct MetadataRow {
  std::vector<std::string> values;  // aligned with Isic2019Reader::MetadataColumns()
  std::string lesion_id;
};

}  // namespace

const std::vector<std::string>& Isic2019Reader::ClassNames() {
  static const auto* const kNames =
      new std::vector<std::string>{"MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC"};
  return *kNames;
}

const std::vector<std::string>& Isic2019Reader::MetadataColumns() {
  static const auto* const kColumns =
      new std::vector<std::string>{"age_approx", "anatom_site_general", "sex"};
  return *kColumns;
}

StatusOr<Dataset> Isic2019Reader::Read(const std::string& dataset_dir) const {
  namespace fs = std::filesystem;
  const std::string truth_path = (fs::path(dataset_dir) / kGroundTruthFile).string();
  const std::string metadata_path = (fs::path(dataset_dir) / kMetadataFile).string();
  DF_ASSIGN_OR_RETURN(
      ImageIndex images,
      ImageIndex::Build((fs::path(dataset_dir) / kImageFolder).string(), {".jpg", ".jpeg"}));

  Dataset dataset;
  dataset.format = kFormat;
  dataset.source_file = truth_path;
  dataset.class_names = ClassNames();
  dataset.metadata_columns = MetadataColumns();

  // The metadata first, by image, so that each ground-truth row can be completed.
  std::unordered_map<std::string, MetadataRow> metadata;
  std::vector<std::string> metadata_required = {"image", "lesion_id"};
  metadata_required.insert(metadata_required.end(), MetadataColumns().begin(),
                           MetadataColumns().end());
  auto on_metadata = [&](const CsvHeader& header, const CsvRecord& record) -> Status {
    const std::string& image = record.fields[header.Find("image")];
    if (image.empty()) return InvalidArgumentError("image is empty");
    MetadataRow row;
    row.lesion_id = record.fields[header.Find("lesion_id")];
    for (const std::string& column : MetadataColumns()) {
      row.values.push_back(record.fields[header.Find(column)]);
    }
    if (!metadata.emplace(image, std::move(row)).second) {
      return InvalidArgumentError(absl::StrCat("image ", image, " appears twice"));
    }
    return OkStatus();
  };
  DF_RETURN_IF_ERROR(
      ForEachCsvRow(metadata_path, options_, metadata_required, &dataset.skipped, on_metadata));

  std::vector<std::string> truth_required = {"image"};
  truth_required.insert(truth_required.end(), ClassNames().begin(), ClassNames().end());
  truth_required.push_back("UNK");
  std::unordered_set<std::string> seen;
  auto on_truth = [&](const CsvHeader& header, const CsvRecord& record) -> Status {
    const std::string& image = record.fields[header.Find("image")];
    if (image.empty()) return InvalidArgumentError("image is empty");
    int label = -1;
    bool unknown = false;
    for (size_t c = 0; c + 1 < truth_required.size(); ++c) {
      const std::string& column = truth_required[c + 1];
      const std::string& cell = record.fields[header.Find(column)];
      double value = 0;
      if (!absl::SimpleAtod(cell, &value) || (value != 0.0 && value != 1.0)) {
        return InvalidArgumentError(absl::StrCat("image ", image, ": column ", column, " is '",
                                                 cell, "', expected 0 or 1"));
      }
      if (value == 0.0) continue;
      if (column == "UNK") {
        unknown = true;
      } else if (label >= 0) {
        return InvalidArgumentError(absl::StrCat("image ", image, ": both ", ClassNames()[label],
                                                 " and ", column,
                                                 " are set (one class per image)"));
      } else {
        label = static_cast<int>(c);
      }
    }
    if (unknown) {
      return InvalidArgumentError(
          absl::StrCat("image ", image, ": labelled UNK, which is not a training class"));
    }
    if (label < 0) return InvalidArgumentError(absl::StrCat("image ", image, ": no class set"));
    if (!seen.insert(image).second) {
      return InvalidArgumentError(absl::StrCat("image ", image, " appears twice"));
    }
    auto meta = metadata.find(image);
    if (meta == metadata.end()) {
      return InvalidArgumentError(absl::StrCat("image ", image, " has no row in ", metadata_path));
    }
    // The file is <image>.jpg; some releases name it <image>_downsampled.jpg instead.
    const std::string* other = nullptr;
    const std::string* path = nullptr;
    for (const char* extension : {".jpg", ".jpeg", ".JPG", ".JPEG"}) {
      path = images.Find(absl::StrCat(image, extension), &other);
      if (path == nullptr)
        path = images.Find(absl::StrCat(image, kDownsampledSuffix, extension), &other);
      if (path != nullptr) break;
    }
    if (path == nullptr) {
      return InvalidArgumentError(
          absl::StrCat("image ", image, ".jpg not found below ", images.root()));
    }
    if (other != nullptr) {
      return InvalidArgumentError(
          absl::StrCat("image ", image, " is in two places: ", *path, " and ", *other));
    }
    DatasetRow row;
    row.image_path = *path;
    row.label = label;
    row.group_id = meta->second.lesion_id.empty() ? image : meta->second.lesion_id;
    row.row_id = image;
    row.source_line = record.line;
    row.metadata = meta->second.values;
    dataset.rows.push_back(std::move(row));
    return OkStatus();
  };
  DF_RETURN_IF_ERROR(
      ForEachCsvRow(truth_path, options_, truth_required, &dataset.skipped, on_truth));
  DF_RETURN_IF_ERROR(CheckNotEmpty(dataset));
  return dataset;
}

}  // namespace dermfed::client
