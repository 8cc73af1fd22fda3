// Internal to the readers: walks the data rows of a CSV file with a header, applying
// ReadOptions::skip_bad_rows the same way for every format.
//
// Thread-safe: a free function.
#ifndef DERMFED_CLIENT_DATA_CSV_TABLE_H_
#define DERMFED_CLIENT_DATA_CSV_TABLE_H_

#include <functional>
#include <string>
#include <vector>

#include "client/data/csv_reader.h"
#include "client/data/dataset.h"
#include "common/status.h"

namespace dermfed::client {

// Called for each data row whose field count matches the header. A non-OK return rejects
// the row; its message is the reason, without file or line (ForEachCsvRow adds them).
using CsvRowFunction = std::function<Status(const CsvHeader& header, const CsvRecord& row)>;

// Opens `path`, reads its header, requires `required_columns`, then calls `on_row` for every
// data row. A malformed row (CSV syntax, wrong field count, or rejected by `on_row`) is an
// InvalidArgument error "PATH:LINE: reason", or, with options.skip_bad_rows, appended to
// `*skipped` and passed over. A missing file, a missing header or column, and a CSV error
// the reader cannot recover from are errors either way.
Status ForEachCsvRow(const std::string& path, const ReadOptions& options,
                     const std::vector<std::string>& required_columns,
                     std::vector<SkippedRow>* skipped, const CsvRowFunction& on_row);

// Fails with FailedPrecondition "SOURCE: no usable rows" (and the skipped rows' report) when
// `dataset` has no rows.
Status CheckNotEmpty(const Dataset& dataset);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_DATA_CSV_TABLE_H_
