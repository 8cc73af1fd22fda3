// Log lines for the daemons: "2026-11-28T13:47:00.123Z INFO  coordinator: round=3 ..." on
// stderr, one line per event, so that systemd/journald and CI logs stay readable. Lines that
// concern a site, round or model version carry them as key=value fields.
//
// Thread-safe: each line is written with one call.
#ifndef DERMFED_COMMON_LOG_H_
#define DERMFED_COMMON_LOG_H_

#include <string>

#include "absl/strings/str_format.h"

namespace dermfed {

enum class LogLevel { kInfo, kWarning, kError };

void LogLine(LogLevel level, const std::string& component, const std::string& message);

template <typename... Args>
void LogInfo(const std::string& component, const absl::FormatSpec<Args...>& format,
             const Args&... args) {
  LogLine(LogLevel::kInfo, component, absl::StrFormat(format, args...));
}
template <typename... Args>
void LogWarning(const std::string& component, const absl::FormatSpec<Args...>& format,
                const Args&... args) {
  LogLine(LogLevel::kWarning, component, absl::StrFormat(format, args...));
}
template <typename... Args>
void LogError(const std::string& component, const absl::FormatSpec<Args...>& format,
              const Args&... args) {
  LogLine(LogLevel::kError, component, absl::StrFormat(format, args...));
}

}  // namespace dermfed

#endif  // DERMFED_COMMON_LOG_H_
