#include "common/log.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace dermfed {

void LogLine(LogLevel level, const std::string& component, const std::string& message) {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t t = system_clock::to_time_t(now);
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
  const char* name = level == LogLevel::kInfo ? "INFO " : level == LogLevel::kWarning ? "WARN " : "ERROR";
  std::string line = absl::StrFormat("%s.%03dZ %s %s: %s\n", stamp, static_cast<int>(ms), name,
                                     component, message);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace dermfed
