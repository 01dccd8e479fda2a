#pragma once
// The delay before a Redis connection's next attempt: 100 ms doubling to 5 s, each
// jittered to 50-100% so that many workers and sidecars do not reconnect in lockstep
// after a Redis restart.

#include <event2/event.h>

#include <algorithm>
#include <cstdint>
#include <random>

namespace comet {

/** Arms `timer` for attempt number `attempts` (0 = the first retry) and counts it. */
inline void arm_reconnect_backoff(event* timer, int& attempts) {
  static thread_local std::mt19937 rng{std::random_device{}()};
  const int64_t cap = std::min<int64_t>(5000, 100LL << std::min(attempts, 6));
  const int64_t delay = std::uniform_int_distribution<int64_t>(cap / 2, cap)(rng);
  ++attempts;
  timeval tv{static_cast<time_t>(delay / 1000), static_cast<suseconds_t>((delay % 1000) * 1000)};
  evtimer_add(timer, &tv);
}

}  // namespace comet
