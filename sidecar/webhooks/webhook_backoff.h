#pragma once
// How long a failed webhook batch waits before it is sent again.

#include <cstdint>

namespace comet {

constexpr int64_t kWebhookFirstRetryMs = 1000;
constexpr int64_t kWebhookMaxRetryMs = 60 * 1000;

/**
 * The wait after the `failures`-th failed attempt of a batch (1, 2, ...): 1 s, 2 s, 4 s,
 * ... doubling up to 60 s, then 60 s for as long as the endpoint keeps failing.
 */
constexpr int64_t webhook_backoff_ms(int failures) {
  int64_t wait = kWebhookFirstRetryMs;
  for (int i = 1; i < failures && wait < kWebhookMaxRetryMs; ++i) wait *= 2;
  return wait < kWebhookMaxRetryMs ? wait : kWebhookMaxRetryMs;
}

}  // namespace comet
