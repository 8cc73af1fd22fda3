#include "client/data/csv_reader.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace dermfed::client {
namespace {

constexpr size_t kBufferBytes = 64 * 1024;

}  // namespace

StatusOr<std::unique_ptr<CsvReader>> CsvReader::Open(const std::string& path,
                                                     const CsvOptions& options) {
  auto in = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!in->is_open()) {
    return NotFoundError(absl::StrCat(path, ": cannot open for reading"));
  }
  return std::unique_ptr<CsvReader>(new CsvReader(path, std::move(in), options));
}

std::unique_ptr<CsvReader> CsvReader::FromString(std::string name, std::string contents,
                                                 const CsvOptions& options) {
  auto in = std::make_unique<std::istringstream>(std::move(contents), std::ios::binary);
  return std::unique_ptr<CsvReader>(new CsvReader(std::move(name), std::move(in), options));
}

CsvReader::CsvReader(std::string name, std::unique_ptr<std::istream> in, const CsvOptions& options)
    : name_(std::move(name)), in_(std::move(in)), options_(options), buffer_(kBufferBytes) {}

CsvReader::~CsvReader() = default;

bool CsvReader::Refill() {
  if (eof_) return false;
  in_->read(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
  std::streamsize got = in_->gcount();
  if (in_->bad()) {
    eof_ = true;
    error_line_ = line_;
    error_reason_ = "read error";
    fatal_ = DataLossError(absl::StrCat(name_, ":", line_, ": read error"));
    return false;
  }
  pos_ = 0;
  end_ = static_cast<size_t>(got);
  if (got == 0) eof_ = true;
  return got > 0;
}

int CsvReader::Peek() {
  if (pos_ == end_ && !Refill()) return kEof;
  return static_cast<unsigned char>(buffer_[pos_]);
}

int CsvReader::Get() {
  int c = Peek();
  if (c != kEof) ++pos_;
  return c;
}

void CsvReader::FinishLineBreak(int c) {
  if (c == '\r' && Peek() == '\n') Get();
  ++line_;
}

void CsvReader::SkipRestOfLine() {
  for (int c = Get(); c != kEof; c = Get()) {
    if (c == '\n' || c == '\r') {
      FinishLineBreak(c);
      return;
    }
  }
}

Status CsvReader::Error(int64_t line, absl::string_view what) {
  error_line_ = line;
  error_reason_ = std::string(what);
  return InvalidArgumentError(absl::StrCat(name_, ":", line, ": ", what));
}

Status CsvReader::Fatal(Status status) {
  fatal_ = status;
  return status;
}

StatusOr<bool> CsvReader::Next(CsvRecord* record) {
  if (!fatal_.ok()) return fatal_;
  if (!started_) {
    started_ = true;
    // A UTF-8 byte-order mark (EF BB BF) is not part of the first column's name.
    if (Peek() != kEof && end_ - pos_ >= 3 &&
        std::string_view(&buffer_[pos_], 3) == "\xEF\xBB\xBF") {
      pos_ += 3;
    }
  }
  // Blank lines are not records.
  for (int c = Peek(); c == '\n' || c == '\r'; c = Peek()) FinishLineBreak(Get());
  if (Peek() == kEof) {
    if (!fatal_.ok()) return fatal_;
    return false;
  }
  if (records_ >= options_.max_records) {
    return Fatal(Error(line_, absl::StrCat("more than ", options_.max_records,
                                           " records (CsvOptions::max_records)")));
  }
  record->fields.clear();
  record->line = line_;
  record->index = ++records_;

  std::string field;
  size_t record_bytes = 0;
  bool in_quotes = false;
  bool was_quoted = false;     // the current field opened with a quote
  int64_t quote_line = line_;  // where the open quote is, for an unterminated one
  std::string problem;         // set by the helpers below when a limit is hit

  // A recoverable error: report it and resume at the next physical line.
  auto bad_row = [&](absl::string_view what) -> Status {
    Status status = Error(line_, what);
    SkipRestOfLine();
    return status;
  };
  auto end_field = [&]() -> bool {
    if (record->fields.size() >= options_.max_fields) {
      problem = absl::StrCat("more than ", options_.max_fields,
                             " fields in one record (CsvOptions::max_fields)");
      return false;
    }
    record->fields.push_back(std::move(field));
    field.clear();
    was_quoted = false;
    return true;
  };
  auto append = [&](char c) -> bool {
    if (field.size() >= options_.max_field_bytes) {
      problem = absl::StrCat("field ", record->fields.size() + 1, " is longer than ",
                             options_.max_field_bytes, " bytes (CsvOptions::max_field_bytes)");
      return false;
    }
    if (++record_bytes > options_.max_record_bytes) {
      problem = absl::StrCat("record is longer than ", options_.max_record_bytes,
                             " bytes (CsvOptions::max_record_bytes)");
      return false;
    }
    field.push_back(c);
    return true;
  };

  while (true) {
    int c = Get();
    if (!fatal_.ok()) return fatal_;  // an I/O error while reading
    if (in_quotes) {
      // Errors inside a quoted field are fatal: the next line break may belong to the field,
      // so there is no safe place to resume.
      if (c == kEof) {
        return Fatal(Error(quote_line, "quoted field is never closed (unmatched '\"')"));
      }
      if (c == '"') {
        if (Peek() == '"') {
          Get();
          if (!append('"')) return Fatal(Error(line_, problem));
        } else {
          in_quotes = false;
        }
        continue;
      }
      if (c == '\0') return Fatal(Error(line_, "NUL byte inside a quoted field"));
      if (!append(static_cast<char>(c))) return Fatal(Error(line_, problem));
      if (c == '\n' || (c == '\r' && Peek() != '\n')) ++line_;
      continue;
    }
    if (c == kEof || c == '\n' || c == '\r') {
      bool ended = end_field();
      Status status = ended ? OkStatus() : Error(line_, problem);
      if (c != kEof) FinishLineBreak(c);
      if (!ended) return status;  // already at the next line: nothing to skip
      return true;
    }
    if (c == options_.delimiter) {
      if (!end_field()) return bad_row(problem);
      continue;
    }
    if (was_quoted) {
      return bad_row(absl::StrCat("unexpected character after the closing quote of field ",
                                  record->fields.size() + 1,
                                  " (a quoted field ends at a delimiter or a line end)"));
    }
    if (c == '"') {
      if (!field.empty()) {
        return bad_row(absl::StrCat("'\"' inside unquoted field ", record->fields.size() + 1,
                                    " (quote the whole field and double the quote)"));
      }
      in_quotes = true;
      was_quoted = true;
      quote_line = line_;
      continue;
    }
    if (c == '\0') return bad_row(absl::StrCat("NUL byte in field ", record->fields.size() + 1));
    if (!append(static_cast<char>(c))) return bad_row(problem);
  }
}

StatusOr<CsvHeader> CsvHeader::FromRecord(const CsvRecord& record, const std::string& file) {
  CsvHeader header;
  header.file_ = file;
  header.line_ = record.line;
  header.names_ = record.fields;
  for (size_t i = 0; i < header.names_.size(); ++i) {
    const std::string& name = header.names_[i];
    if (name.empty()) {
      return InvalidArgumentError(
          absl::StrCat(file, ":", record.line, ": header column ", i + 1, " has no name"));
    }
    auto [it, inserted] = header.index_.emplace(name, static_cast<int>(i));
    if (!inserted) {
      return InvalidArgumentError(absl::StrCat(file, ":", record.line, ": header column '", name,
                                               "' appears twice (columns ", it->second + 1, " and ",
                                               i + 1, ")"));
    }
  }
  return header;
}

int CsvHeader::Find(std::string_view column) const {
  auto it = index_.find(std::string(column));
  return it == index_.end() ? -1 : it->second;
}

StatusOr<int> CsvHeader::Require(std::string_view column) const {
  int index = Find(column);
  if (index < 0) return RequireAll({std::string(column)});
  return index;
}

Status CsvHeader::RequireAll(const std::vector<std::string>& columns) const {
  std::vector<std::string> missing;
  for (const std::string& column : columns) {
    if (Find(column) < 0) missing.push_back(absl::StrCat("'", column, "'"));
  }
  if (missing.empty()) return OkStatus();
  return InvalidArgumentError(absl::StrCat(
      file_, ":", line_, ": missing column", missing.size() > 1 ? "s " : " ",
      absl::StrJoin(missing, ", "), " (the header has: ", absl::StrJoin(names_, ","), ")"));
}

}  // namespace dermfed::client
