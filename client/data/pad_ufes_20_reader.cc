#include "client/data/pad_ufes_20_reader.h"

#include <algorithm>
#include <filesystem>
#include <unordered_set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/data/csv_table.h"
#include "client/data/image_index.h"

namespace dermfed::client {

const std::vector<std::string>& PadUfes20Reader::ClassNames() {
  static const auto* const kNames =
      new std::vector<std::string>{"ACK", "BCC", "MEL", "NEV", "SCC", "SEK"};
  return *kNames;
}

const std::vector<std::string>& PadUfes20Reader::Columns() {
  static const auto* const kColumns = new std::vector<std::string>{"patient_id",
                                                                   "lesion_id",
                                                                   "smoke",
                                                                   "drink",
                                                                   "background_father",
                                                                   "background_mother",
                                                                   "age",
                                                                   "pesticide",
                                                                   "gender",
                                                                   "skin_cancer_history",
                                                                   "cancer_history",
                                                                   "has_piped_water",
                                                                   "has_sewage_system",
                                                                   "fitspatrick",
                                                                   "region",
                                                                   "diameter_1",
                                                                   "diameter_2",
                                                                   "diagnostic",
                                                                   "itch",
                                                                   "grew",
                                                                   "hurt",
                                                                   "changed",
                                                                   "bleed",
                                                                   "elevation",
                                                                   "img_id",
                                                                   "biopsed"};
  return *kColumns;
}

const std::vector<std::string>& PadUfes20Reader::MetadataColumns() {
  static const auto* const kColumns = [] {
    auto* columns = new std::vector<std::string>;
    for (const std::string& column : Columns()) {
      if (column != "patient_id" && column != "lesion_id" && column != "diagnostic" &&
          column != "img_id") {
        columns->push_back(column);
      }
    }
    return columns;
  }();
  return *kColumns;
}

StatusOr<Dataset> PadUfes20Reader::Read(const std::string& dataset_dir) const {
  const std::string csv_path = (std::filesystem::path(dataset_dir) / kMetadataFile).string();
  DF_ASSIGN_OR_RETURN(ImageIndex images, ImageIndex::Build(dataset_dir, {".png"}));

  Dataset dataset;
  dataset.format = kFormat;
  dataset.source_file = csv_path;
  dataset.class_names = ClassNames();
  dataset.metadata_columns = MetadataColumns();
  std::unordered_set<std::string> seen_images;

  auto on_row = [&](const CsvHeader& header, const CsvRecord& record) -> Status {
    auto field = [&](const char* column) -> const std::string& {
      return record.fields[header.Find(column)];
    };
    const std::string& patient = field("patient_id");
    const std::string& img_id = field("img_id");
    const std::string diagnostic(absl::StripAsciiWhitespace(field("diagnostic")));
    if (patient.empty()) return InvalidArgumentError("patient_id is empty");
    if (img_id.empty()) return InvalidArgumentError("img_id is empty");
    const auto& classes = ClassNames();
    auto label = std::find(classes.begin(), classes.end(), diagnostic);
    if (label == classes.end()) {
      return InvalidArgumentError(absl::StrCat("img_id ", img_id, ": unknown diagnostic '",
                                               diagnostic, "' (expected one of ",
                                               absl::StrJoin(classes, ", "), ")"));
    }
    if (seen_images.count(img_id) > 0) {
      return InvalidArgumentError(absl::StrCat("img_id ", img_id, " appears twice"));
    }
    const std::string* other = nullptr;
    const std::string* path = images.Find(img_id, &other);
    if (path == nullptr) {
      return InvalidArgumentError(absl::StrCat("image ", img_id, " not found below ", dataset_dir));
    }
    if (other != nullptr) {
      return InvalidArgumentError(
          absl::StrCat("image ", img_id, " is in two places: ", *path, " and ", *other));
    }
    seen_images.insert(img_id);
    DatasetRow row;
    row.image_path = *path;
    row.label = static_cast<int>(label - classes.begin());
    row.group_id = patient;
    row.row_id = img_id;
    row.source_line = record.line;
    row.metadata.reserve(dataset.metadata_columns.size());
    for (const std::string& column : dataset.metadata_columns) {
      row.metadata.push_back(field(column.c_str()));
    }
    dataset.rows.push_back(std::move(row));
    return OkStatus();
  };
  DF_RETURN_IF_ERROR(ForEachCsvRow(csv_path, options_, Columns(), &dataset.skipped, on_row));
  DF_RETURN_IF_ERROR(CheckNotEmpty(dataset));
  return dataset;
}

}  // namespace dermfed::client
