// Process logs on stderr, one line each: "<RFC 3339 time> <level> <message>". Thread-safe (each
// line is one write(2)). Access logs are separate: they go to stdout (see proxy/access_log.h).
#ifndef OUTRIGGER_XDS_COMMON_LOG_H_
#define OUTRIGGER_XDS_COMMON_LOG_H_

#include <string_view>

#include "absl/strings/string_view.h"
#include "absl/strings/str_cat.h"

namespace outrigger {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetLogLevel(LogLevel level);
bool ParseLogLevel(absl::string_view text, LogLevel* level);
bool LogEnabled(LogLevel level);
void LogLine(LogLevel level, absl::string_view message);

template <typename... Args>
void LogInfo(const Args&... args) {
  if (LogEnabled(LogLevel::kInfo)) LogLine(LogLevel::kInfo, absl::StrCat(args...));
}
template <typename... Args>
void LogWarning(const Args&... args) {
  if (LogEnabled(LogLevel::kWarning)) LogLine(LogLevel::kWarning, absl::StrCat(args...));
}
template <typename... Args>
void LogError(const Args&... args) {
  LogLine(LogLevel::kError, absl::StrCat(args...));
}
template <typename... Args>
void LogDebug(const Args&... args) {
  if (LogEnabled(LogLevel::kDebug)) LogLine(LogLevel::kDebug, absl::StrCat(args...));
}

}  // namespace outrigger

#endif  // OUTRIGGER_XDS_COMMON_LOG_H_
