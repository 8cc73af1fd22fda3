#include "common/log.h"

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "common/log_format.h"

namespace dermfed {
namespace {

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) out += absl::StrFormat("\\u%04x", c);
        else out += static_cast<char>(c);
    }
  }
  return out;
}

bool AllDigits(const std::string& s) {
  if (s.empty()) return false;
  for (size_t i = (s[0] == '-' ? 1 : 0); i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return s != "-";
}

// The first value of field `key` ("key=value", value up to a space or ','), or "".
std::string Field(const std::string& message, const std::string& key) {
  const std::string pattern = key + "=";
  for (size_t at = message.find(pattern); at != std::string::npos;
       at = message.find(pattern, at + 1)) {
    if (at > 0 && !std::isspace(static_cast<unsigned char>(message[at - 1]))) continue;
    const size_t start = at + pattern.size();
    const size_t end = message.find_first_of(" ,;:()", start);
    return message.substr(start, end == std::string::npos ? std::string::npos : end - start);
  }
  return "";
}

}  // namespace

LogFormat LogFormatFromEnv() {
  static const LogFormat format = [] {
    const char* v = std::getenv("DERMFED_LOG_FORMAT");
    return v != nullptr && std::strcmp(v, "json") == 0 ? LogFormat::kJson : LogFormat::kText;
  }();
  return format;
}

std::string FormatLogLine(LogFormat format, LogLevel level, const std::string& component,
                          const std::string& message, std::chrono::system_clock::time_point when) {
  using namespace std::chrono;
  const std::time_t t = system_clock::to_time_t(when);
  const auto ms = duration_cast<milliseconds>(when.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
  if (format == LogFormat::kText) {
    const char* name =
        level == LogLevel::kInfo ? "INFO " : level == LogLevel::kWarning ? "WARN " : "ERROR";
    return absl::StrFormat("%s.%03dZ %s %s: %s\n", stamp, static_cast<int>(ms), name, component,
                           message);
  }
  const char* name =
      level == LogLevel::kInfo ? "info" : level == LogLevel::kWarning ? "warning" : "error";
  std::string line = absl::StrFormat(R"({"ts":"%s.%03dZ","level":"%s","component":"%s")", stamp,
                                     static_cast<int>(ms), name, JsonEscape(component));
  for (const char* key : {"site", "round", "version"}) {
    const std::string v = Field(message, key);
    if (v.empty()) continue;
    line += absl::StrFormat(R"(,"%s":)", key);
    line += (std::strcmp(key, "site") != 0 && AllDigits(v)) ? v : "\"" + JsonEscape(v) + "\"";
  }
  line += absl::StrFormat(R"(,"msg":"%s"})", JsonEscape(message));
  return line + "\n";
}

void LogLine(LogLevel level, const std::string& component, const std::string& message) {
  const std::string line = FormatLogLine(LogFormatFromEnv(), level, component, message,
                                         std::chrono::system_clock::now());
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace dermfed
