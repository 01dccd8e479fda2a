#pragma once
// Tagged, levelled logging to stderr. Thread-safe (one fprintf per line).
// Per the project style: a vanished client is debug, a hit limit is a warning,
// losing Redis is an error.

namespace comet {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

/** Sets the minimum level printed; callable before worker threads start. */
void set_log_level(LogLevel level);

/** True when `level` would be printed (lets callers skip building arguments). */
bool log_enabled(LogLevel level);

/** Prints "LEVEL tag: message" when `level` is enabled. Never throws. */
void log_line(LogLevel level, const char* tag, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));

}  // namespace comet

#define COMET_LOG(level, tag, ...)                                               \
  do {                                                                           \
    if (::comet::log_enabled(level)) ::comet::log_line(level, tag, __VA_ARGS__); \
  } while (0)
#define LOG_DEBUG(tag, ...) COMET_LOG(::comet::LogLevel::kDebug, tag, __VA_ARGS__)
#define LOG_INFO(tag, ...) COMET_LOG(::comet::LogLevel::kInfo, tag, __VA_ARGS__)
#define LOG_WARN(tag, ...) COMET_LOG(::comet::LogLevel::kWarn, tag, __VA_ARGS__)
#define LOG_ERROR(tag, ...) COMET_LOG(::comet::LogLevel::kError, tag, __VA_ARGS__)
