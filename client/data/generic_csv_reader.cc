#include "client/data/generic_csv_reader.h"

#include <algorithm>
#include <filesystem>
#include <unordered_set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/data/csv_table.h"

namespace dermfed::client {

StatusOr<Dataset> GenericCsvReader::Read(const std::string& path) const {
  namespace fs = std::filesystem;
  if (!schema_.manifest.has_value()) {
    return InvalidArgumentError(absl::StrCat("schema '", schema_.name,
                                             "' has no \"manifest\" section, so it cannot "
                                             "describe a generic CSV dataset"));
  }
  const ManifestSpec& spec = *schema_.manifest;
  std::error_code ec;
  fs::path manifest = fs::is_directory(path, ec) ? fs::path(path) / spec.file : fs::path(path);
  const fs::path base = manifest.parent_path();

  Dataset dataset;
  dataset.format = kFormat;
  dataset.source_file = manifest.string();
  dataset.class_names = schema_.class_names;
  dataset.metadata_columns = schema_.ColumnNames();

  std::vector<std::string> required = {spec.image_column, spec.label_column};
  if (!spec.group_column.empty()) required.push_back(spec.group_column);
  if (!spec.id_column.empty()) required.push_back(spec.id_column);
  required.insert(required.end(), dataset.metadata_columns.begin(), dataset.metadata_columns.end());
  std::unordered_set<std::string> seen;

  auto on_row = [&](const CsvHeader& header, const CsvRecord& record) -> Status {
    auto field = [&](const std::string& column) -> const std::string& {
      return record.fields[header.Find(column)];
    };
    const std::string& image = field(spec.image_column);
    if (image.empty()) return InvalidArgumentError(absl::StrCat(spec.image_column, " is empty"));
    if (fs::path(image).is_absolute()) {
      return InvalidArgumentError(absl::StrCat(spec.image_column, " '", image,
                                               "' is absolute; paths are relative to ",
                                               base.empty() ? "." : base.string()));
    }
    const fs::path normal = fs::path(image).lexically_normal();
    if (!normal.empty() && *normal.begin() == "..") {
      return InvalidArgumentError(absl::StrCat(spec.image_column, " '", image, "' leaves ",
                                               base.empty() ? "." : base.string(),
                                               "; image paths stay below the manifest's folder"));
    }
    std::string label_text(absl::StripAsciiWhitespace(field(spec.label_column)));
    const auto& classes = dataset.class_names;
    auto label = std::find(classes.begin(), classes.end(), label_text);
    if (label == classes.end()) {
      return InvalidArgumentError(absl::StrCat(spec.label_column, " '", label_text,
                                               "' is not a class (expected one of ",
                                               absl::StrJoin(classes, ", "), ")"));
    }
    std::string row_id = spec.id_column.empty() ? image : field(spec.id_column);
    if (row_id.empty()) return InvalidArgumentError(absl::StrCat(spec.id_column, " is empty"));
    if (seen.count(row_id) > 0) {
      return InvalidArgumentError(absl::StrCat("row id '", row_id, "' appears twice"));
    }
    std::string group = spec.group_column.empty() ? row_id : field(spec.group_column);
    if (group.empty()) {
      return InvalidArgumentError(absl::StrCat(spec.group_column, " is empty"));
    }
    fs::path image_path = base / image;
    std::error_code exists_ec;
    if (!fs::is_regular_file(image_path, exists_ec)) {
      return InvalidArgumentError(absl::StrCat("image ", image_path.string(), " not found"));
    }
    seen.insert(row_id);
    DatasetRow row;
    row.image_path = image_path.string();
    row.label = static_cast<int>(label - classes.begin());
    row.group_id = std::move(group);
    row.row_id = std::move(row_id);
    row.source_line = record.line;
    for (const std::string& column : dataset.metadata_columns) {
      row.metadata.push_back(field(column));
    }
    dataset.rows.push_back(std::move(row));
    return OkStatus();
  };
  DF_RETURN_IF_ERROR(
      ForEachCsvRow(dataset.source_file, options_, required, &dataset.skipped, on_row));
  DF_RETURN_IF_ERROR(CheckNotEmpty(dataset));
  return dataset;
}

}  // namespace dermfed::client
