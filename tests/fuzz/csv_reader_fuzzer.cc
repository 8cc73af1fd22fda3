// Raw bytes through the RFC 4180 CsvReader (client/data/csv_reader.h) that every dataset
// reader uses, from memory, reading on after recoverable errors as ForEachCsvRow does with
// skip_bad_rows; the first record becomes a CsvHeader. The last input byte picks the
// delimiter and whether the memory limits are the defaults or tiny ones (so the limit paths
// are reached with small inputs).
#include <cstddef>
#include <cstdint>
#include <string>

#include "client/data/csv_reader.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dermfed;
  using client::CsvOptions;
  CsvOptions options;
  if (size > 0) {
    const uint8_t mode = data[size - 1];
    options.delimiter = ",;\t|"[mode & 3];
    if (mode & 4) {
      options.max_field_bytes = 16;
      options.max_record_bytes = 64;
      options.max_fields = 8;
      options.max_records = 16;
    }
  }
  auto reader =
      client::CsvReader::FromString("fuzz.csv", std::string(fuzz::AsView(data, size)), options);
  client::CsvRecord record;
  int64_t last_index = 0, last_line = 0;
  bool have_header = false;
  for (int guard = 0; guard < 100000; ++guard) {
    StatusOr<bool> next = reader->Next(&record);
    if (!next.ok()) {
      FUZZ_CHECK(next.status().message().find("fuzz.csv:") == 0,
                 "error does not start with FILE:LINE: " + next.status().ToString());
      FUZZ_CHECK(reader->error_line() >= 1, "error without a line");
      if (!reader->can_continue()) {
        // A fatal error repeats.
        FUZZ_CHECK(!reader->Next(&record).ok(), "a fatal error did not repeat");
        break;
      }
      continue;
    }
    if (!*next) break;
    FUZZ_CHECK(record.index > last_index, "record index did not increase");
    FUZZ_CHECK(record.line > last_line, "record line did not increase");
    last_index = record.index;
    last_line = record.line;
    FUZZ_CHECK(!record.fields.empty(), "record without fields");
    FUZZ_CHECK(record.fields.size() <= options.max_fields, "more fields than max_fields");
    size_t bytes = 0;
    for (const std::string& f : record.fields) {
      FUZZ_CHECK(f.size() <= options.max_field_bytes, "field above max_field_bytes");
      bytes += f.size();
    }
    FUZZ_CHECK(bytes <= options.max_record_bytes, "record above max_record_bytes");
    FUZZ_CHECK(record.index <= options.max_records, "more records than max_records");
    if (!have_header) {
      have_header = true;
      auto header = client::CsvHeader::FromRecord(record, "fuzz.csv");
      if (header.ok()) {
        for (size_t i = 0; i < header->size(); ++i) {
          FUZZ_CHECK(header->Find(header->names()[i]) == static_cast<int>(i),
                     "header column '" + header->names()[i] + "' not found where it is");
        }
        header->RequireAll({"patient_id", "img_id", "image"}).IgnoreError();
      }
    }
  }
  return 0;
}
