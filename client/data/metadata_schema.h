// The metadata schema the whole federation shares: the class names, and for each metadata
// column its type, its vocabulary (categorical) or mean and standard deviation (numeric),
// which tokens mean "missing", and whether the model uses it. Every site encodes with the
// same schema, so the same value becomes the same numbers everywhere; nothing is fitted on
// one site's data unless an operator calls FitSchema on purpose to write a new schema.
//
// The file is JSON (client/data/schemas/ holds the shipped defaults, which are also built
// into the binary, see BuiltinSchema):
//
//   {
//     "format_version": 1,
//     "name": "pad-ufes-20",
//     "description": "...",                   // optional, here and in each column
//     "class_names": ["ACK", "BCC", "MEL", "NEV", "SCC", "SEK"],
//     "missing_values": ["", "UNK"],          // default for every column; "" always counts
//     "unseen_values": "error",               // or "missing": see MetadataSchema below
//     "columns": [
//       {"name": "region", "type": "categorical", "values": ["ARM", "NECK", ...]},
//       {"name": "age", "type": "numeric", "mean": 60.5, "std": 15.9},
//       {"name": "biopsed", "type": "categorical", "values": ["False", "True"],
//        "used": false, "missing_values": [""]}
//     ],
//     "manifest": {                           // generic CSV manifests only
//       "file": "manifest.csv", "image_column": "image", "label_column": "label",
//       "group_column": "patient_id", "id_column": ""
//     }
//   }
//
// Values are compared after trimming ASCII whitespace, ignoring ASCII case, and writing a
// whole number the same way however it was written ("3.0" and "3" are one value), so that
// a float column a spreadsheet rewrote still matches the vocabulary.
//
// Thread-compatible: plain values.
#ifndef DERMFED_CLIENT_DATA_METADATA_SCHEMA_H_
#define DERMFED_CLIENT_DATA_METADATA_SCHEMA_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/data/dataset.h"
#include "common/status.h"

namespace dermfed::client {

struct ColumnSpec {
  enum class Type { kCategorical, kNumeric };

  std::string name;
  std::string description;  // free text for people; not used in encoding
  Type type = Type::kCategorical;
  bool used = true;                 // false: read and checked present, but not encoded
  std::vector<std::string> values;  // categorical vocabulary, in encoding order
  double mean = 0.0;                // numeric standardization
  double stddev = 1.0;              // > 0 (JSON key "std")
  // Tokens meaning "missing" for this column; unset = the schema's missing_values.
  std::optional<std::vector<std::string>> missing_values;
};

// Where the columns of a generic CSV manifest are (GenericCsvReader).
struct ManifestSpec {
  std::string file = "manifest.csv";  // used when the reader is given a folder
  std::string image_column;           // path relative to the manifest's folder
  std::string label_column;           // one of class_names
  std::string group_column;           // "" = every row is its own group
  std::string id_column;              // "" = the image path is the row id
};

struct MetadataSchema {
  static constexpr int kFormatVersion = 1;

  std::string name;
  std::string description;
  std::vector<std::string> class_names;
  std::vector<std::string> missing_values = {""};
  // A categorical value outside the vocabulary is an error naming the column, the value and
  // the row (the default: a typo or a site's local coding must not silently become
  // "missing"), or, with this set, encoded as the column's missing category.
  bool unseen_as_missing = false;
  std::vector<ColumnSpec> columns;
  std::optional<ManifestSpec> manifest;

  // The column called `name`, or nullptr.
  const ColumnSpec* FindColumn(std::string_view name) const;
  // Names of every column, used or not, in schema order.
  std::vector<std::string> ColumnNames() const;
  // The missing tokens in force for `column`.
  const std::vector<std::string>& MissingValuesOf(const ColumnSpec& column) const;
};

// Parses and validates schema JSON. `source` names the text in error messages (a path).
StatusOr<MetadataSchema> ParseSchemaJson(std::string_view json, const std::string& source);
StatusOr<MetadataSchema> LoadSchemaFile(const std::string& path);
// Pretty-printed JSON that ParseSchemaJson reads back to an equal schema.
std::string SchemaToJson(const MetadataSchema& schema);
Status WriteSchemaFile(const MetadataSchema& schema, const std::string& path);

// The shipped default schema for "pad-ufes-20" or "isic-2019" (compiled in from
// client/data/schemas/); NotFound naming the known ones otherwise.
StatusOr<MetadataSchema> BuiltinSchema(std::string_view format);

// The comparison key of a raw value (see the file comment): trimmed, lower case, whole
// numbers written without a fraction.
std::string CanonicalValue(std::string_view value);

// For an operator writing a new schema, never called implicitly: returns `base` with the
// mean and standard deviation of each numeric column, and the vocabulary of each
// categorical column whose "values" is empty (most frequent first, ties by value), computed
// from `dataset`. Fails naming the file and line of a numeric value that does not parse,
// and naming a schema column the dataset lacks.
StatusOr<MetadataSchema> FitSchema(const MetadataSchema& base, const Dataset& dataset);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_DATA_METADATA_SCHEMA_H_
