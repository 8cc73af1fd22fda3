// How common/log.h renders a line, exposed for tests. Two formats:
//   text (default): "2026-11-28T13:47:00.123Z INFO  coordinator: site=a round=3 ..."
//   json (DERMFED_LOG_FORMAT=json): one object per line, {"ts","level","component","msg"},
//     plus "site", "round" and "version" lifted from the message's key=value fields, so log
//     pipelines (journald, Loki, ELK) can filter by site, round and model version.
#ifndef DERMFED_COMMON_LOG_FORMAT_H_
#define DERMFED_COMMON_LOG_FORMAT_H_

#include <chrono>
#include <string>

#include "common/log.h"

namespace dermfed {

enum class LogFormat { kText, kJson };

// From $DERMFED_LOG_FORMAT ("json" or "text"; unset or anything else = text), read once.
LogFormat LogFormatFromEnv();

// The line (ending in '\n') for a message logged at `when`.
std::string FormatLogLine(LogFormat format, LogLevel level, const std::string& component,
                          const std::string& message, std::chrono::system_clock::time_point when);

}  // namespace dermfed

#endif  // DERMFED_COMMON_LOG_FORMAT_H_
