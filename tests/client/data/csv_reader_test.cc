#include "client/data/csv_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/client/data/test_files.h"

namespace dermfed::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// All records of `text`, failing the test on any error.
std::vector<CsvRecord> ReadAll(const std::string& text, const CsvOptions& options = {}) {
  auto reader = CsvReader::FromString("test.csv", text, options);
  std::vector<CsvRecord> records;
  CsvRecord record;
  while (true) {
    StatusOr<bool> next = reader->Next(&record);
    EXPECT_TRUE(next.ok()) << next.status();
    if (!next.ok() || !*next) break;
    records.push_back(record);
  }
  return records;
}

// The first error reading `text`.
Status FirstError(const std::string& text, const CsvOptions& options = {}) {
  auto reader = CsvReader::FromString("test.csv", text, options);
  CsvRecord record;
  while (true) {
    StatusOr<bool> next = reader->Next(&record);
    if (!next.ok()) return next.status();
    if (!*next) return OkStatus();
  }
}

TEST(CsvReaderTest, SplitsPlainFields) {
  auto records = ReadAll("a,b,c\n1,2,3\n");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_THAT(records[0].fields, ElementsAre("a", "b", "c"));
  EXPECT_THAT(records[1].fields, ElementsAre("1", "2", "3"));
  EXPECT_EQ(records[1].line, 2);
  EXPECT_EQ(records[1].index, 2);
}

TEST(CsvReaderTest, KeepsEmptyFields) {
  auto records = ReadAll(",,x,\n");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_THAT(records[0].fields, ElementsAre("", "", "x", ""));
}

TEST(CsvReaderTest, UnquotesFieldsWithDelimitersQuotesAndLineBreaks) {
  auto records = ReadAll("\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"\"\nnext,row,x,y\n");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_THAT(records[0].fields, ElementsAre("a,b", "say \"hi\"", "two\nlines", ""));
  // The quoted line break moved the next record to line 3.
  EXPECT_EQ(records[1].line, 3);
}

TEST(CsvReaderTest, KeepsCrlfInsideQuotesAndCountsItAsOneLine) {
  auto records = ReadAll("\"a\r\nb\",c\r\nd,e\r\n");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_THAT(records[0].fields, ElementsAre("a\r\nb", "c"));
  EXPECT_EQ(records[1].line, 3);
}

TEST(CsvReaderTest, AcceptsCrlfLoneCrAndMissingFinalNewline) {
  auto records = ReadAll("a,b\r\nc,d\re,f");
  ASSERT_EQ(records.size(), 3u);
  EXPECT_THAT(records[0].fields, ElementsAre("a", "b"));
  EXPECT_THAT(records[1].fields, ElementsAre("c", "d"));
  EXPECT_THAT(records[2].fields, ElementsAre("e", "f"));
  EXPECT_EQ(records[2].line, 3);
}

TEST(CsvReaderTest, StripsByteOrderMark) {
  auto records = ReadAll("\xEF\xBB\xBFimage,label\r\nx,1\r\n");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].fields[0], "image");
}

TEST(CsvReaderTest, SkipsBlankLinesButCountsThem) {
  auto records = ReadAll("\n\na\r\n\r\nb\n\n");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].line, 3);
  EXPECT_EQ(records[1].line, 5);
  EXPECT_EQ(records[1].index, 2);
}

TEST(CsvReaderTest, EmptyInputHasNoRecords) {
  EXPECT_TRUE(ReadAll("").empty());
  EXPECT_TRUE(ReadAll("\xEF\xBB\xBF").empty());
}

TEST(CsvReaderTest, UnterminatedQuoteIsFatalAndNamesWhereItOpened) {
  auto reader = CsvReader::FromString("meta.csv", "a,b\nc,\"never closed\nmore\n");
  CsvRecord record;
  ASSERT_TRUE(*reader->Next(&record));
  StatusOr<bool> next = reader->Next(&record);
  ASSERT_FALSE(next.ok());
  EXPECT_THAT(next.status().message(), HasSubstr("meta.csv:2:"));
  EXPECT_THAT(next.status().message(), HasSubstr("never closed"));
  EXPECT_FALSE(reader->can_continue());
  EXPECT_FALSE(reader->Next(&record).ok()) << "a fatal error must repeat";
}

TEST(CsvReaderTest, StrayQuoteIsRecoverableAtTheNextLine) {
  auto reader = CsvReader::FromString("m.csv", "a,b\nx,y\"z\nc,d\n");
  CsvRecord record;
  ASSERT_TRUE(*reader->Next(&record));
  StatusOr<bool> bad = reader->Next(&record);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("m.csv:2:"));
  EXPECT_EQ(reader->error_line(), 2);
  EXPECT_THAT(reader->error_reason(), HasSubstr("inside unquoted field 2"));
  ASSERT_TRUE(reader->can_continue());
  StatusOr<bool> next = reader->Next(&record);
  ASSERT_TRUE(next.ok() && *next) << next.status();
  EXPECT_THAT(record.fields, ElementsAre("c", "d"));
  EXPECT_EQ(record.line, 3);
}

TEST(CsvReaderTest, TextAfterClosingQuoteIsAnError) {
  Status status = FirstError("\"a\"b,c\n");
  EXPECT_THAT(status.message(), HasSubstr("after the closing quote"));
  EXPECT_THAT(status.message(), HasSubstr("test.csv:1:"));
}

TEST(CsvReaderTest, NulByteIsAnError) {
  EXPECT_THAT(FirstError(std::string("a,b\0"
                                     "c\n",
                                     6))
                  .message(),
              HasSubstr("NUL"));
  EXPECT_THAT(FirstError(std::string("\"b\0\"\n", 5)).message(), HasSubstr("NUL"));
}

TEST(CsvReaderTest, EnforcesFieldRecordFieldCountAndRecordLimits) {
  CsvOptions options;
  options.max_field_bytes = 4;
  EXPECT_THAT(FirstError("abcd,e\nabcde,f\n", options).message(),
              HasSubstr("test.csv:2: field 1 is longer than 4 bytes"));
  EXPECT_THAT(FirstError("\"abcdef\"\n", options).message(), HasSubstr("longer than 4"));

  options = CsvOptions();
  options.max_record_bytes = 5;
  EXPECT_THAT(FirstError("ab,cd,ef\n", options).message(), HasSubstr("record is longer"));

  options = CsvOptions();
  options.max_fields = 3;
  EXPECT_THAT(FirstError("a,b,c\na,b,c,d\n", options).message(),
              HasSubstr("test.csv:2: more than 3 fields"));

  options = CsvOptions();
  options.max_records = 2;
  EXPECT_THAT(FirstError("a\nb\nc\n", options).message(), HasSubstr("more than 2 records"));
}

TEST(CsvReaderTest, OversizedFieldSkipsOnlyItsLine) {
  CsvOptions options;
  options.max_field_bytes = 3;
  auto reader = CsvReader::FromString("t.csv", "toolong,x\nok,y\n", options);
  CsvRecord record;
  EXPECT_FALSE(reader->Next(&record).ok());
  ASSERT_TRUE(reader->can_continue());
  ASSERT_TRUE(*reader->Next(&record));
  EXPECT_THAT(record.fields, ElementsAre("ok", "y"));
}

TEST(CsvReaderTest, OpenNamesAMissingFile) {
  testing::TempDir dir;
  auto reader = CsvReader::Open(dir.Join("absent.csv"));
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(reader.status().message(), HasSubstr("absent.csv"));
}

TEST(CsvReaderTest, ReadsAFileLargerThanOneBuffer) {
  testing::TempDir dir;
  std::string text = "id,value\n";
  for (int i = 0; i < 20000; ++i) text += std::to_string(i) + ",\"v," + std::to_string(i) + "\"\n";
  std::string path = dir.Write("big.csv", text);
  auto reader = CsvReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status();
  CsvRecord record;
  int count = 0;
  while (true) {
    StatusOr<bool> next = (*reader)->Next(&record);
    ASSERT_TRUE(next.ok()) << next.status();
    if (!*next) break;
    ++count;
  }
  EXPECT_EQ(count, 20001);
  EXPECT_THAT(record.fields, ElementsAre("19999", "v,19999"));
  EXPECT_EQ(record.line, 20001);
}

// Untrusted bytes: whatever the input, reading ends, every record stays within the limits,
// and every error names the file and a line inside the input.
TEST(CsvReaderTest, SurvivesArbitraryBytes) {
  const char alphabet[] = {',', '"', '\n', '\r', 'a', 'b', '\0', '\xEF', '\xBB', '\xBF', ' '};
  uint64_t state = 99;
  auto next = [&state](uint64_t n) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % n;
  };
  CsvOptions options;
  options.max_field_bytes = 8;
  options.max_fields = 6;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string text(next(120), ' ');
    for (char& c : text) c = alphabet[next(sizeof(alphabet))];
    auto reader = CsvReader::FromString("fuzz.csv", text, options);
    CsvRecord record;
    int64_t lines = 1;
    for (char c : text) lines += (c == '\n' || c == '\r');
    for (size_t calls = 0;; ++calls) {
      ASSERT_LE(calls, text.size() + 1) << "no progress on input #" << trial;
      StatusOr<bool> got = reader->Next(&record);
      if (got.ok()) {
        if (!*got) break;
        EXPECT_LE(record.fields.size(), options.max_fields);
        for (const std::string& field : record.fields) {
          EXPECT_LE(field.size(), options.max_field_bytes);
        }
        continue;
      }
      EXPECT_THAT(got.status().message(), HasSubstr("fuzz.csv:"));
      EXPECT_GE(reader->error_line(), 1);
      EXPECT_LE(reader->error_line(), lines);
      if (!reader->can_continue()) break;
    }
  }
}

TEST(CsvHeaderTest, FindsAndRequiresColumns) {
  CsvRecord record{{"image", "label", "age"}, 1, 1};
  auto header = CsvHeader::FromRecord(record, "m.csv");
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->Find("label"), 1);
  EXPECT_EQ(header->Find("sex"), -1);
  EXPECT_EQ(*header->Require("age"), 2);
  Status status = header->RequireAll({"image", "sex", "site"});
  EXPECT_THAT(status.message(), HasSubstr("m.csv:1: missing columns 'sex', 'site'"));
  EXPECT_THAT(status.message(), HasSubstr("image,label,age"));
}

TEST(CsvHeaderTest, RejectsRepeatedAndEmptyNames) {
  EXPECT_THAT(CsvHeader::FromRecord(CsvRecord{{"a", "b", "a"}, 1, 1}, "m.csv").status().message(),
              HasSubstr("'a' appears twice"));
  EXPECT_THAT(CsvHeader::FromRecord(CsvRecord{{"a", ""}, 1, 1}, "m.csv").status().message(),
              HasSubstr("column 2 has no name"));
}

}  // namespace
}  // namespace dermfed::client
