// Turns a row's raw metadata values into the fixed-width float vector that the model's
// metadata branch takes, exactly as the federation's shared MetadataSchema says, so that
// every site encodes the same value into the same numbers. Nothing is fitted here.
//
// Layout, one block per used column in schema order:
//   categorical with V values: V one-hot slots, then one slot for "missing"   (V + 1)
//   numeric: (value - mean) / std, 0 when missing; then a missing indicator   (2)
// A value is missing when it is one of the column's missing tokens (always including the
// empty field). A categorical value outside the vocabulary is an error naming the column and
// the value, unless the schema sets "unseen_values": "missing".
//
// Thread-safe after Create (const).
#ifndef DERMFED_CLIENT_DATA_METADATA_ENCODER_H_
#define DERMFED_CLIENT_DATA_METADATA_ENCODER_H_

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "client/data/dataset.h"
#include "client/data/metadata_schema.h"
#include "common/status.h"

namespace dermfed::client {

class MetadataEncoder {
 public:
  // `input_columns` names the raw values that Encode will be given, in that order (a
  // Dataset's metadata_columns; extra columns are ignored). Fails naming every used schema
  // column missing from it, and a used categorical column with an empty vocabulary.
  static StatusOr<MetadataEncoder> Create(const MetadataSchema& schema,
                                          const std::vector<std::string>& input_columns);

  // Number of floats per row.
  int width() const { return static_cast<int>(feature_names_.size()); }
  // One name per slot: "region=NECK", "region:missing", "age", "age:missing".
  const std::vector<std::string>& feature_names() const { return feature_names_; }

  // Writes width() floats to `out`. `values` is aligned with the input columns. Fails
  // naming the column and the value for a numeric value that is not a finite number and for
  // an unseen categorical value (see the file comment).
  Status Encode(const std::vector<std::string>& values, float* out) const;
  StatusOr<std::vector<float>> Encode(const std::vector<std::string>& values) const;

 private:
  struct Column {
    std::string name;
    int input = 0;   // index into the values given to Encode
    int offset = 0;  // first output slot
    bool numeric = false;
    float mean = 0, inv_std = 1;
    std::unordered_map<std::string, int> slots;  // canonical value -> slot within the block
    int missing_slot = 0;                        // categorical: V
    std::unordered_set<std::string> missing;     // canonical missing tokens
    std::string vocabulary;                      // for messages
  };

  MetadataEncoder() = default;

  size_t num_inputs_ = 0;
  bool unseen_as_missing_ = false;
  std::vector<Column> columns_;
  std::vector<std::string> feature_names_;
};

// Encodes every row of `*dataset` into a row-major matrix of rows x encoder.width() floats.
// A row the encoder refuses is an error "FILE:LINE: reason", or, with `skip_bad_rows`, is
// removed from dataset->rows and listed in dataset->skipped. Fails when no row is left.
StatusOr<std::vector<float>> EncodeDataset(const MetadataEncoder& encoder, Dataset* dataset,
                                           bool skip_bad_rows);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_DATA_METADATA_ENCODER_H_
