#pragma once
// Wall-clock time, for what is compared with times from outside the process (token
// exp/nbf, the app's ttl). Intervals inside the process use monotonic_ms (hub/message.h).

#include <chrono>
#include <cstdint>

namespace comet {

inline int64_t wall_clock_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace comet
