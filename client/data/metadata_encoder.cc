#include "client/data/metadata_encoder.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace dermfed::client {

StatusOr<MetadataEncoder> MetadataEncoder::Create(const MetadataSchema& schema,
                                                  const std::vector<std::string>& input_columns) {
  MetadataEncoder encoder;
  encoder.num_inputs_ = input_columns.size();
  encoder.unseen_as_missing_ = schema.unseen_as_missing;
  std::vector<std::string> absent;
  for (const ColumnSpec& spec : schema.columns) {
    if (!spec.used) continue;
    auto found = std::find(input_columns.begin(), input_columns.end(), spec.name);
    if (found == input_columns.end()) {
      absent.push_back(absl::StrCat("'", spec.name, "'"));
      continue;
    }
    Column column;
    column.name = spec.name;
    column.input = static_cast<int>(found - input_columns.begin());
    column.offset = encoder.width();
    for (const std::string& token : schema.MissingValuesOf(spec)) {
      column.missing.insert(CanonicalValue(token));
    }
    if (spec.type == ColumnSpec::Type::kNumeric) {
      column.numeric = true;
      column.mean = static_cast<float>(spec.mean);
      column.inv_std = static_cast<float>(1.0 / spec.stddev);
      encoder.feature_names_.push_back(spec.name);
      encoder.feature_names_.push_back(absl::StrCat(spec.name, ":missing"));
    } else {
      if (spec.values.empty()) {
        return InvalidArgumentError(absl::StrCat("schema '", schema.name, "': column '", spec.name,
                                                 "' has an empty vocabulary"));
      }
      for (size_t v = 0; v < spec.values.size(); ++v) {
        column.slots.emplace(CanonicalValue(spec.values[v]), static_cast<int>(v));
        encoder.feature_names_.push_back(absl::StrCat(spec.name, "=", spec.values[v]));
      }
      column.missing_slot = static_cast<int>(spec.values.size());
      column.vocabulary = absl::StrJoin(spec.values, ", ");
      encoder.feature_names_.push_back(absl::StrCat(spec.name, ":missing"));
    }
    encoder.columns_.push_back(std::move(column));
  }
  if (!absent.empty()) {
    return InvalidArgumentError(absl::StrCat(
        "the data has no column ", absl::StrJoin(absent, ", "), " that schema '", schema.name,
        "' uses (the data's columns: ", absl::StrJoin(input_columns, ","), ")"));
  }
  return encoder;
}

Status MetadataEncoder::Encode(const std::vector<std::string>& values, float* out) const {
  if (values.size() != num_inputs_) {
    return InvalidArgumentError(
        absl::StrCat("metadata has ", values.size(), " values, the encoder expects ", num_inputs_));
  }
  std::fill(out, out + width(), 0.0f);
  for (const Column& column : columns_) {
    const std::string& raw = values[column.input];
    std::string key = CanonicalValue(raw);
    float* block = out + column.offset;
    bool missing = column.missing.count(key) > 0;
    if (column.numeric) {
      if (!missing) {
        double value = 0;
        if (!absl::SimpleAtod(raw, &value) || !std::isfinite(value)) {
          return InvalidArgumentError(
              absl::StrCat("column '", column.name, "': '", raw, "' is not a number"));
        }
        // Finite as a double is not enough: 1e39 becomes an infinite float.
        const float encoded = (static_cast<float>(value) - column.mean) * column.inv_std;
        if (!std::isfinite(encoded)) {
          return InvalidArgumentError(absl::StrCat("column '", column.name, "': '", raw,
                                                   "' is out of range for the model"));
        }
        block[0] = encoded;
      }
      block[1] = missing ? 1.0f : 0.0f;
      continue;
    }
    if (missing) {
      block[column.missing_slot] = 1.0f;
      continue;
    }
    auto slot = column.slots.find(key);
    if (slot != column.slots.end()) {
      block[slot->second] = 1.0f;
    } else if (unseen_as_missing_) {
      block[column.missing_slot] = 1.0f;
    } else {
      return InvalidArgumentError(absl::StrCat("column '", column.name, "': value '", raw,
                                               "' is not in the schema's vocabulary (",
                                               column.vocabulary, ")"));
    }
  }
  return OkStatus();
}

StatusOr<std::vector<float>> MetadataEncoder::Encode(const std::vector<std::string>& values) const {
  std::vector<float> out(width());
  DF_RETURN_IF_ERROR(Encode(values, out.data()));
  return out;
}

StatusOr<std::vector<float>> EncodeDataset(const MetadataEncoder& encoder, Dataset* dataset,
                                           bool skip_bad_rows) {
  const size_t width = encoder.width();
  std::vector<float> matrix(dataset->rows.size() * width);
  size_t kept = 0;
  for (size_t i = 0; i < dataset->rows.size(); ++i) {
    DatasetRow& row = dataset->rows[i];
    Status status = encoder.Encode(row.metadata, matrix.data() + kept * width);
    if (!status.ok()) {
      if (!skip_bad_rows) {
        return Annotate(status, absl::StrCat(dataset->source_file, ":", row.source_line));
      }
      dataset->skipped.push_back(
          SkippedRow{dataset->source_file, row.source_line, std::string(status.message())});
      continue;
    }
    if (kept != i) dataset->rows[kept] = std::move(row);
    ++kept;
  }
  dataset->rows.resize(kept);
  matrix.resize(kept * width);
  if (kept == 0) {
    return FailedPreconditionError(absl::StrCat(
        dataset->source_file, ": no row left after encoding metadata; ", dataset->SkippedReport()));
  }
  return matrix;
}

}  // namespace dermfed::client
