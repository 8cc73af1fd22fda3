// A site's dataset as the readers return it: one row per image with its raw metadata values,
// its label and the group (patient or lesion) that splitting must keep together, plus the
// rows that were skipped and why. Images are not opened here; a reader only checks that
// each image file exists. Metadata stays raw text until a MetadataEncoder turns it into
// numbers with the federation's shared schema.
//
// Thread-compatible: plain values.
#ifndef DERMFED_CLIENT_DATA_DATASET_H_
#define DERMFED_CLIENT_DATA_DATASET_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "client/data/csv_reader.h"
#include "common/status.h"

namespace dermfed::client {

struct DatasetRow {
  std::string image_path;  // dataset folder joined with the file's place below it
  // Raw values aligned with Dataset::metadata_columns; "" where the file left it empty.
  std::vector<std::string> metadata;
  int label = -1;           // index into Dataset::class_names
  std::string group_id;     // patient (PAD-UFES-20), lesion (ISIC-2019) or manifest column
  std::string row_id;       // image id, unique within the dataset
  int64_t source_line = 0;  // line of Dataset::source_file the row came from
};

// A row left out under ReadOptions::skip_bad_rows, or by EncodeDataset.
struct SkippedRow {
  std::string file;
  int64_t line = 0;  // 1-based physical line where the record starts
  std::string reason;
};

struct Dataset {
  std::string format;                         // "pad-ufes-20", "isic-2019" or "generic"
  std::string source_file;                    // the CSV the rows and their lines come from
  std::vector<std::string> class_names;       // label index -> name
  std::vector<std::string> metadata_columns;  // names of DatasetRow::metadata's entries
  std::vector<DatasetRow> rows;
  std::vector<SkippedRow> skipped;

  // Rows per class, indexed by label.
  std::vector<int64_t> ClassCounts() const;
  // Rows per class among `rows[i]` for i in `indices`.
  std::vector<int64_t> ClassCounts(const std::vector<int>& indices) const;
  int64_t NumGroups() const;
  // Index of a metadata column, or -1.
  int MetadataColumn(std::string_view name) const;
  // "N rows skipped:" and one "FILE:LINE: reason" line each, at most `max_lines` of them.
  std::string SkippedReport(size_t max_lines = 20) const;
};

struct ReadOptions {
  // false: the first bad row (malformed CSV, wrong field count, unknown label, missing
  // image, ...) is an error naming its file and line. true: it is skipped and listed in
  // Dataset::skipped. Problems with a whole file (missing, no header, missing column) and
  // an empty result are errors either way.
  bool skip_bad_rows = false;
  CsvOptions csv;
};

// Reads one on-disk dataset format. Implementations keep no state between calls.
//
// Thread-safe.
class DatasetReader {
 public:
  virtual ~DatasetReader() = default;
  // Reads the dataset at `path` (a folder; for the generic format, a folder or a manifest).
  virtual StatusOr<Dataset> Read(const std::string& path) const = 0;
};

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_DATA_DATASET_H_
