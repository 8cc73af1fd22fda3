#include "client/data/metadata_schema.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace dermfed::client {

// Defined in the builtin_schemas.cc that CMake generates from client/data/schemas/.
namespace internal {
extern const char kPadUfes20SchemaJson[];
extern const char kIsic2019SchemaJson[];
}  // namespace internal

namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// Reads the fields of one JSON object, each checked for type, and at the end rejects any
// key nobody asked for (a misspelt "std_dev" must not silently leave a default in force).
class ObjectReader {
 public:
  ObjectReader(const Json& object, std::string where) : object_(object), where_(std::move(where)) {}

  const std::string& where() const { return where_; }
  bool Has(const char* key) const { return object_.contains(key); }

  Status String(const char* key, bool required, std::string* out) {
    const Json* value = Take(key);
    if (value == nullptr) return required ? Missing(key) : OkStatus();
    if (!value->is_string()) return WrongType(key, "a string");
    *out = value->get<std::string>();
    return OkStatus();
  }
  Status Number(const char* key, double* out) {
    const Json* value = Take(key);
    if (value == nullptr) return Missing(key);
    if (!value->is_number()) return WrongType(key, "a number");
    *out = value->get<double>();
    if (!std::isfinite(*out)) return WrongType(key, "a finite number");
    return OkStatus();
  }
  Status Integer(const char* key, int64_t* out) {
    const Json* value = Take(key);
    if (value == nullptr) return Missing(key);
    if (!value->is_number_integer()) return WrongType(key, "an integer");
    *out = value->get<int64_t>();
    return OkStatus();
  }
  Status Bool(const char* key, bool* out) {
    const Json* value = Take(key);
    if (value == nullptr) return OkStatus();
    if (!value->is_boolean()) return WrongType(key, "true or false");
    *out = value->get<bool>();
    return OkStatus();
  }
  Status Strings(const char* key, bool required, std::vector<std::string>* out) {
    const Json* value = Take(key);
    if (value == nullptr) return required ? Missing(key) : OkStatus();
    if (!value->is_array()) return WrongType(key, "an array of strings");
    out->clear();
    for (const Json& item : *value) {
      if (!item.is_string()) return WrongType(key, "an array of strings");
      out->push_back(item.get<std::string>());
    }
    return OkStatus();
  }
  const Json* Take(const char* key) {
    auto it = object_.find(key);
    if (it == object_.end()) return nullptr;
    taken_.insert(key);
    return &*it;
  }
  Status CheckNoOtherKeys() const {
    for (auto it = object_.begin(); it != object_.end(); ++it) {
      if (taken_.count(it.key()) == 0) {
        return InvalidArgumentError(absl::StrCat(where_, ": unknown key '", it.key(), "'"));
      }
    }
    return OkStatus();
  }
  Status Error(absl::string_view what) const {
    return InvalidArgumentError(absl::StrCat(where_, ": ", what));
  }

 private:
  Status Missing(const char* key) const {
    return InvalidArgumentError(absl::StrCat(where_, ": missing key '", key, "'"));
  }
  Status WrongType(const char* key, const char* expected) const {
    return InvalidArgumentError(absl::StrCat(where_, ": '", key, "' must be ", expected));
  }

  const Json& object_;
  std::string where_;
  std::set<std::string> taken_;
};

Status CheckUnique(const std::vector<std::string>& values, bool canonical,
                   const ObjectReader& reader, const char* what) {
  std::map<std::string, std::string> seen;
  for (const std::string& value : values) {
    std::string key = canonical ? CanonicalValue(value) : value;
    auto [it, inserted] = seen.emplace(key, value);
    if (!inserted) {
      return reader.Error(
          absl::StrCat(what, " '", it->second, "' and '", value, "' are the same value"));
    }
  }
  return OkStatus();
}

Status ParseColumn(const Json& json, const std::string& where, ColumnSpec* column) {
  if (!json.is_object()) return InvalidArgumentError(absl::StrCat(where, ": must be an object"));
  // Name the column in every message about it once its name is known.
  auto name = json.find("name");
  ObjectReader reader(json, name != json.end() && name->is_string()
                                ? absl::StrCat(where, " ('", name->get<std::string>(), "')")
                                : where);
  DF_RETURN_IF_ERROR(reader.String("name", true, &column->name));
  if (column->name.empty()) return reader.Error("'name' is empty");
  DF_RETURN_IF_ERROR(reader.String("description", false, &column->description));
  std::string type;
  DF_RETURN_IF_ERROR(reader.String("type", true, &type));
  DF_RETURN_IF_ERROR(reader.Bool("used", &column->used));
  if (reader.Has("missing_values")) {
    column->missing_values.emplace();
    DF_RETURN_IF_ERROR(reader.Strings("missing_values", true, &*column->missing_values));
    if (std::find(column->missing_values->begin(), column->missing_values->end(), "") ==
        column->missing_values->end()) {
      column->missing_values->insert(column->missing_values->begin(), "");
    }
  }
  if (type == "categorical") {
    column->type = ColumnSpec::Type::kCategorical;
    DF_RETURN_IF_ERROR(reader.Strings("values", true, &column->values));
    DF_RETURN_IF_ERROR(CheckUnique(column->values, true, reader, "values"));
  } else if (type == "numeric") {
    column->type = ColumnSpec::Type::kNumeric;
    DF_RETURN_IF_ERROR(reader.Number("mean", &column->mean));
    DF_RETURN_IF_ERROR(reader.Number("std", &column->stddev));
    if (!(column->stddev > 0)) return reader.Error("'std' must be > 0");
  } else {
    return reader.Error(
        absl::StrCat("'type' is '", type, "'; expected 'categorical' or 'numeric'"));
  }
  return reader.CheckNoOtherKeys();
}

Status ParseManifest(const Json& json, const std::string& where, ManifestSpec* manifest) {
  if (!json.is_object()) return InvalidArgumentError(absl::StrCat(where, ": must be an object"));
  ObjectReader reader(json, where);
  DF_RETURN_IF_ERROR(reader.String("file", false, &manifest->file));
  DF_RETURN_IF_ERROR(reader.String("image_column", true, &manifest->image_column));
  DF_RETURN_IF_ERROR(reader.String("label_column", true, &manifest->label_column));
  DF_RETURN_IF_ERROR(reader.String("group_column", false, &manifest->group_column));
  DF_RETURN_IF_ERROR(reader.String("id_column", false, &manifest->id_column));
  if (manifest->file.empty()) return reader.Error("'file' is empty");
  // A file name, never a path: the reader opens it in the dataset folder and partition writes
  // it into each site folder, and the federation's schema comes from the coordinator.
  if (manifest->file.find_first_of("/\\") != std::string::npos || manifest->file == "." ||
      manifest->file == "..") {
    return reader.Error(absl::StrCat("'file' is '", manifest->file,
                                     "'; expected a file name in the dataset folder, not a path"));
  }
  if (manifest->image_column.empty()) return reader.Error("'image_column' is empty");
  if (manifest->label_column.empty()) return reader.Error("'label_column' is empty");
  return reader.CheckNoOtherKeys();
}

// A missing token that is also a vocabulary value would make the value unreachable.
Status CheckMissingDisjoint(const MetadataSchema& schema, const std::string& source) {
  for (const ColumnSpec& column : schema.columns) {
    if (column.type != ColumnSpec::Type::kCategorical) continue;
    for (const std::string& token : schema.MissingValuesOf(column)) {
      for (const std::string& value : column.values) {
        if (CanonicalValue(value) == CanonicalValue(token)) {
          return InvalidArgumentError(absl::StrCat(source, ": column '", column.name, "': value '",
                                                   value, "' is also a missing-value token"));
        }
      }
    }
  }
  return OkStatus();
}

}  // namespace

const ColumnSpec* MetadataSchema::FindColumn(std::string_view name) const {
  for (const ColumnSpec& column : columns) {
    if (column.name == name) return &column;
  }
  return nullptr;
}

std::vector<std::string> MetadataSchema::ColumnNames() const {
  std::vector<std::string> names;
  names.reserve(columns.size());
  for (const ColumnSpec& column : columns) names.push_back(column.name);
  return names;
}

const std::vector<std::string>& MetadataSchema::MissingValuesOf(const ColumnSpec& column) const {
  return column.missing_values.has_value() ? *column.missing_values : missing_values;
}

std::string CanonicalValue(std::string_view value) {
  absl::string_view trimmed =
      absl::StripAsciiWhitespace(absl::string_view(value.data(), value.size()));
  double number = 0;
  if (!trimmed.empty() && absl::SimpleAtod(trimmed, &number) && std::isfinite(number) &&
      std::fabs(number) < 1e15 && number == std::floor(number)) {
    return absl::StrCat(static_cast<int64_t>(number));
  }
  return absl::AsciiStrToLower(trimmed);
}

StatusOr<MetadataSchema> ParseSchemaJson(std::string_view text, const std::string& source) {
  Json json;
  try {
    json = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    return InvalidArgumentError(absl::StrCat(source, ": not valid JSON: ", e.what()));
  }
  if (!json.is_object()) {
    return InvalidArgumentError(absl::StrCat(source, ": the schema must be a JSON object"));
  }
  MetadataSchema schema;
  ObjectReader reader(json, source);
  int64_t version = 0;
  DF_RETURN_IF_ERROR(reader.Integer("format_version", &version));
  if (version != MetadataSchema::kFormatVersion) {
    return reader.Error(absl::StrCat("format_version is ", version, "; this build reads ",
                                     MetadataSchema::kFormatVersion));
  }
  DF_RETURN_IF_ERROR(reader.String("name", false, &schema.name));
  DF_RETURN_IF_ERROR(reader.String("description", false, &schema.description));
  DF_RETURN_IF_ERROR(reader.Strings("class_names", true, &schema.class_names));
  if (schema.class_names.empty()) return reader.Error("'class_names' is empty");
  for (const std::string& name : schema.class_names) {
    if (name.empty()) return reader.Error("'class_names' has an empty name");
  }
  DF_RETURN_IF_ERROR(CheckUnique(schema.class_names, false, reader, "class_names"));
  DF_RETURN_IF_ERROR(reader.Strings("missing_values", false, &schema.missing_values));
  if (std::find(schema.missing_values.begin(), schema.missing_values.end(), "") ==
      schema.missing_values.end()) {
    schema.missing_values.insert(schema.missing_values.begin(), "");
  }
  std::string unseen = "error";
  DF_RETURN_IF_ERROR(reader.String("unseen_values", false, &unseen));
  if (unseen != "error" && unseen != "missing") {
    return reader.Error(
        absl::StrCat("'unseen_values' is '", unseen, "'; expected 'error' or 'missing'"));
  }
  schema.unseen_as_missing = unseen == "missing";

  const Json* columns = reader.Take("columns");
  if (columns == nullptr || !columns->is_array()) {
    return reader.Error("'columns' must be an array");
  }
  for (size_t i = 0; i < columns->size(); ++i) {
    ColumnSpec column;
    DF_RETURN_IF_ERROR(
        ParseColumn((*columns)[i], absl::StrCat(source, ": columns[", i, "]"), &column));
    if (schema.FindColumn(column.name) != nullptr) {
      return reader.Error(absl::StrCat("column '", column.name, "' is declared twice"));
    }
    schema.columns.push_back(std::move(column));
  }
  if (const Json* manifest = reader.Take("manifest"); manifest != nullptr) {
    schema.manifest.emplace();
    DF_RETURN_IF_ERROR(
        ParseManifest(*manifest, absl::StrCat(source, ": manifest"), &*schema.manifest));
  }
  DF_RETURN_IF_ERROR(reader.CheckNoOtherKeys());
  DF_RETURN_IF_ERROR(CheckMissingDisjoint(schema, source));
  return schema;
}

StatusOr<MetadataSchema> LoadSchemaFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) return NotFoundError(absl::StrCat(path, ": cannot open schema file"));
  // A schema is a few kilobytes; refuse anything absurd before reading it into memory.
  constexpr std::streamoff kMaxBytes = 16 << 20;
  in.seekg(0, std::ios::end);
  if (in.tellg() > kMaxBytes) {
    return InvalidArgumentError(absl::StrCat(path, ": schema file is larger than 16 MiB"));
  }
  in.seekg(0, std::ios::beg);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return DataLossError(absl::StrCat(path, ": read error"));
  return ParseSchemaJson(text.str(), path);
}

std::string SchemaToJson(const MetadataSchema& schema) {
  OrderedJson json;
  json["format_version"] = MetadataSchema::kFormatVersion;
  json["name"] = schema.name;
  if (!schema.description.empty()) json["description"] = schema.description;
  json["class_names"] = schema.class_names;
  json["missing_values"] = schema.missing_values;
  json["unseen_values"] = schema.unseen_as_missing ? "missing" : "error";
  OrderedJson columns = OrderedJson::array();
  for (const ColumnSpec& column : schema.columns) {
    OrderedJson c;
    c["name"] = column.name;
    if (!column.description.empty()) c["description"] = column.description;
    if (column.type == ColumnSpec::Type::kCategorical) {
      c["type"] = "categorical";
      c["values"] = column.values;
    } else {
      c["type"] = "numeric";
      c["mean"] = column.mean;
      c["std"] = column.stddev;
    }
    if (!column.used) c["used"] = false;
    if (column.missing_values.has_value()) c["missing_values"] = *column.missing_values;
    columns.push_back(std::move(c));
  }
  json["columns"] = std::move(columns);
  if (schema.manifest.has_value()) {
    const ManifestSpec& m = *schema.manifest;
    json["manifest"] = {{"file", m.file},
                        {"image_column", m.image_column},
                        {"label_column", m.label_column},
                        {"group_column", m.group_column},
                        {"id_column", m.id_column}};
  }
  return json.dump(2) + "\n";
}

Status WriteSchemaFile(const MetadataSchema& schema, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out.is_open()) return NotFoundError(absl::StrCat(path, ": cannot open for writing"));
  out << SchemaToJson(schema);
  out.close();
  if (!out) return DataLossError(absl::StrCat(path, ": write failed"));
  return OkStatus();
}

StatusOr<MetadataSchema> BuiltinSchema(std::string_view format) {
  if (format == "pad-ufes-20") {
    return ParseSchemaJson(internal::kPadUfes20SchemaJson, "builtin schema pad-ufes-20");
  }
  if (format == "isic-2019") {
    return ParseSchemaJson(internal::kIsic2019SchemaJson, "builtin schema isic-2019");
  }
  return NotFoundError(absl::StrCat("no builtin schema for format '", std::string(format),
                                    "' (builtin: pad-ufes-20, isic-2019)"));
}

StatusOr<MetadataSchema> FitSchema(const MetadataSchema& base, const Dataset& dataset) {
  MetadataSchema schema = base;
  for (ColumnSpec& column : schema.columns) {
    int index = dataset.MetadataColumn(column.name);
    if (index < 0) {
      return InvalidArgumentError(absl::StrCat(dataset.source_file, ": has no metadata column '",
                                               column.name, "' (the schema declares it)"));
    }
    std::set<std::string> missing;
    for (const std::string& token : schema.MissingValuesOf(column)) {
      missing.insert(CanonicalValue(token));
    }
    if (column.type == ColumnSpec::Type::kNumeric) {
      // Welford's running mean and variance: stable for any row count.
      int64_t count = 0;
      double mean = 0, m2 = 0;
      for (const DatasetRow& row : dataset.rows) {
        const std::string& raw = row.metadata[index];
        if (missing.count(CanonicalValue(raw)) > 0) continue;
        double value = 0;
        if (!absl::SimpleAtod(absl::StripAsciiWhitespace(raw), &value) || !std::isfinite(value)) {
          return InvalidArgumentError(absl::StrCat(dataset.source_file, ":", row.source_line,
                                                   ": column '", column.name, "': '", raw,
                                                   "' is not a number"));
        }
        ++count;
        double delta = value - mean;
        mean += delta / count;
        m2 += delta * (value - mean);
      }
      if (count == 0) {
        return InvalidArgumentError(absl::StrCat(dataset.source_file, ": numeric column '",
                                                 column.name, "' has no values to fit"));
      }
      double stddev = std::sqrt(m2 / count);
      column.mean = mean;
      column.stddev = stddev > 1e-12 ? stddev : 1.0;
    } else if (column.values.empty()) {
      std::map<std::string, std::pair<int64_t, std::string>> seen;  // key -> (count, spelling)
      for (const DatasetRow& row : dataset.rows) {
        std::string key = CanonicalValue(row.metadata[index]);
        if (missing.count(key) > 0) continue;
        auto& entry = seen[key];
        if (entry.first++ == 0) {
          entry.second = std::string(absl::StripAsciiWhitespace(row.metadata[index]));
        }
      }
      std::vector<std::pair<int64_t, std::string>> ordered;
      for (auto& [key, entry] : seen) ordered.push_back(entry);
      std::sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
      });
      for (auto& entry : ordered) column.values.push_back(std::move(entry.second));
    }
  }
  return schema;
}

}  // namespace dermfed::client
