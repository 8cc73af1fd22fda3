#include "client/data/csv_table.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"

namespace dermfed::client {

Status ForEachCsvRow(const std::string& path, const ReadOptions& options,
                     const std::vector<std::string>& required_columns,
                     std::vector<SkippedRow>* skipped, const CsvRowFunction& on_row) {
  DF_ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> reader, CsvReader::Open(path, options.csv));
  CsvRecord record;
  DF_ASSIGN_OR_RETURN(bool has_header, reader->Next(&record));
  if (!has_header) {
    return InvalidArgumentError(absl::StrCat(path, ": file is empty (expected a header row)"));
  }
  DF_ASSIGN_OR_RETURN(CsvHeader header, CsvHeader::FromRecord(record, path));
  DF_RETURN_IF_ERROR(header.RequireAll(required_columns));

  auto reject = [&](int64_t line, const std::string& reason) -> Status {
    if (!options.skip_bad_rows) {
      return InvalidArgumentError(absl::StrCat(path, ":", line, ": ", reason));
    }
    skipped->push_back(SkippedRow{path, line, reason});
    return OkStatus();
  };
  while (true) {
    StatusOr<bool> next = reader->Next(&record);
    if (!next.ok()) {
      if (!options.skip_bad_rows || !reader->can_continue()) return next.status();
      skipped->push_back(SkippedRow{path, reader->error_line(), reader->error_reason()});
      continue;
    }
    if (!*next) return OkStatus();
    if (record.fields.size() != header.size()) {
      DF_RETURN_IF_ERROR(
          reject(record.line, absl::StrCat("row has ", record.fields.size(),
                                           " fields, the header has ", header.size())));
      continue;
    }
    if (Status status = on_row(header, record); !status.ok()) {
      DF_RETURN_IF_ERROR(reject(record.line, std::string(status.message())));
    }
  }
}

Status CheckNotEmpty(const Dataset& dataset) {
  if (!dataset.rows.empty()) return OkStatus();
  return FailedPreconditionError(
      absl::StrCat(dataset.source_file, ": no usable rows (", dataset.SkippedReport(), ")"));
}

}  // namespace dermfed::client
