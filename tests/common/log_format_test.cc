// The log line formats: text for people, JSON (DERMFED_LOG_FORMAT=json) for log pipelines,
// with site, round and model version lifted into fields.
#include "common/log_format.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace dermfed {
namespace {

const auto kWhen = std::chrono::system_clock::from_time_t(1795867620) + std::chrono::milliseconds(123);

TEST(LogFormatTest, TextLineHasTimeLevelComponentAndMessage) {
  EXPECT_EQ(FormatLogLine(LogFormat::kText, LogLevel::kWarning, "coordinator", "site=a round=3 late",
                          kWhen),
            "2026-11-28T12:07:00.123Z WARN  coordinator: site=a round=3 late\n");
}

TEST(LogFormatTest, JsonLineLiftsSiteRoundAndVersion) {
  const std::string line = FormatLogLine(
      LogFormat::kJson, LogLevel::kInfo, "coordinator",
      "site=hospital-7 round=12 version=11 update folded (2/3, n=40, loss=0.5)", kWhen);
  ASSERT_EQ(line.back(), '\n');
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["ts"], "2026-11-28T12:07:00.123Z");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["component"], "coordinator");
  EXPECT_EQ(j["site"], "hospital-7");
  EXPECT_EQ(j["round"], 12);
  EXPECT_EQ(j["version"], 11);
  EXPECT_EQ(j["msg"], "site=hospital-7 round=12 version=11 update folded (2/3, n=40, loss=0.5)");
}

TEST(LogFormatTest, JsonLineWithoutFieldsAndWithQuotesStaysValid) {
  const std::string line = FormatLogLine(LogFormat::kJson, LogLevel::kError, "tls",
                                         "bad \"file\"\n\tC:\\x \x01", kWhen);
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["level"], "error");
  EXPECT_FALSE(j.contains("site"));
  EXPECT_FALSE(j.contains("round"));
  EXPECT_EQ(j["msg"], "bad \"file\"\n\tC:\\x \x01");
}

TEST(LogFormatTest, FieldsMustStartAWord) {
  // "preround=5" is not the round; a non-numeric round stays a string.
  const auto j = nlohmann::json::parse(FormatLogLine(LogFormat::kJson, LogLevel::kInfo, "c",
                                                     "preround=5 round=next", kWhen));
  EXPECT_EQ(j["round"], "next");
}

}  // namespace
}  // namespace dermfed
