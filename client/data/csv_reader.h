// An RFC 4180 CSV reader for untrusted files: quoted fields with embedded commas, quotes and
// line breaks; LF, CRLF or lone-CR line endings; a UTF-8 byte-order mark at the start; blank
// lines skipped. Every limit that bounds memory (field, record, field count, record count)
// is an option, and every error names the file and the 1-based line it happened on.
//
// Written here rather than taken from a package: the Debian-packaged C++ CSV parser
// (libfccp, fast-cpp-csv-parser) fixes the column count at compile time, reads line by
// line (no line breaks inside quoted fields) and reports errors by exception; libcsv is a
// C callback API without line tracking or size limits. The grammar is small enough to get
// right in one state machine that is tested byte by byte (tests/client/data/).
//
// Thread-compatible: one reader per thread.
#ifndef DERMFED_CLIENT_DATA_CSV_READER_H_
#define DERMFED_CLIENT_DATA_CSV_READER_H_

#include <cstddef>
#include <cstdint>
#include <istream>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/status.h"

namespace dermfed::client {

struct CsvOptions {
  char delimiter = ',';
  // Bounds on what one record may hold. Metadata fields are short; these are generous.
  size_t max_field_bytes = 64 * 1024;
  size_t max_record_bytes = 1024 * 1024;
  size_t max_fields = 1024;
  // Bound on the number of records (header included) read from one file.
  int64_t max_records = 10'000'000;
};

// One record as read. `line` is the 1-based physical line it starts on (a quoted line break
// makes a record span several lines); `index` counts records from 1 (the header, if the
// file has one, is index 1, the first data row index 2).
struct CsvRecord {
  std::vector<std::string> fields;
  int64_t line = 0;
  int64_t index = 0;
};

class CsvReader {
 public:
  // Opens `path` for reading; fails naming the path when it cannot be opened.
  static StatusOr<std::unique_ptr<CsvReader>> Open(const std::string& path,
                                                   const CsvOptions& options = {});
  // Reads from memory; `name` stands for the file in error messages.
  static std::unique_ptr<CsvReader> FromString(std::string name, std::string contents,
                                               const CsvOptions& options = {});

  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;
  ~CsvReader();

  // Reads the next record into `*record`. Returns false at the end of the input.
  // On a malformed record returns InvalidArgument naming the file and line. If
  // can_continue() is then true, the reader skipped to the next line and the following call
  // reads on from there; otherwise (an unterminated quote, an error inside a quoted field,
  // an I/O error, too many records) every later call returns the same error.
  StatusOr<bool> Next(CsvRecord* record);

  bool can_continue() const { return fatal_.ok(); }
  // The line and the reason (without the "FILE:LINE: " prefix) of the last error Next
  // returned, for callers that list skipped rows.
  int64_t error_line() const { return error_line_; }
  const std::string& error_reason() const { return error_reason_; }
  const std::string& name() const { return name_; }
  // Line the reader is on: the line of the next record, or of the end of input.
  int64_t line() const { return line_; }

 private:
  CsvReader(std::string name, std::unique_ptr<std::istream> in, const CsvOptions& options);

  // Byte-level input with one character of lookahead; kEof at the end.
  static constexpr int kEof = -1;
  int Get();
  int Peek();
  bool Refill();
  // Consumes a line break whose first byte `c` was already read (CRLF counts as one).
  void FinishLineBreak(int c);
  // Skips the rest of the current physical line after a recoverable error.
  void SkipRestOfLine();
  Status Error(int64_t line, absl::string_view what);
  Status Fatal(Status status);

  std::string name_;
  std::unique_ptr<std::istream> in_;
  CsvOptions options_;
  std::vector<char> buffer_;
  size_t pos_ = 0;
  size_t end_ = 0;
  bool eof_ = false;
  bool started_ = false;
  int64_t line_ = 1;
  int64_t records_ = 0;
  Status fatal_;
  int64_t error_line_ = 0;
  std::string error_reason_;
};

// The header record of a CSV file: column names and where each one is.
//
// Thread-safe after construction (const).
class CsvHeader {
 public:
  // Fails naming the file when a column name is empty or repeated.
  static StatusOr<CsvHeader> FromRecord(const CsvRecord& record, const std::string& file);

  // Index of `column`, or -1 when the file has no such column.
  int Find(std::string_view column) const;
  // Fails with "FILE: missing column 'C' (header at line L has: ...)" when absent.
  StatusOr<int> Require(std::string_view column) const;
  // Checks every column in `columns` at once, naming all that are missing.
  Status RequireAll(const std::vector<std::string>& columns) const;

  const std::vector<std::string>& names() const { return names_; }
  size_t size() const { return names_.size(); }

 private:
  std::string file_;
  int64_t line_ = 1;
  std::vector<std::string> names_;
  std::unordered_map<std::string, int> index_;
};

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_DATA_CSV_READER_H_
