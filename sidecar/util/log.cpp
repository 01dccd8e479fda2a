#include "util/log.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>

namespace comet {
namespace {
std::atomic<int> g_min_level{static_cast<int>(LogLevel::kInfo)};
const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}
}  // namespace

void set_log_level(LogLevel level) { g_min_level.store(static_cast<int>(level)); }

bool log_enabled(LogLevel level) {
  return static_cast<int>(level) >= g_min_level.load(std::memory_order_relaxed);
}

void log_line(LogLevel level, const char* tag, const char* fmt, ...) {
  char text[1024];
  va_list args;
  va_start(args, fmt);
  vsnprintf(text, sizeof text, fmt, args);
  va_end(args);
  // One fprintf per line keeps lines from different workers whole.
  fprintf(stderr, "%s %s: %s\n", level_name(level), tag, text);
}

}  // namespace comet
