#pragma once
// Process-wide counters, read by /healthz and /metrics from any thread.

#include <atomic>
#include <cstdint>

#include "server/session_kind.h"
#include "webhooks/webhook_stats.h"

namespace comet {

struct Counters {
  std::atomic<int64_t> connections{0};
  std::atomic<int64_t> subscriptions{0};
  std::atomic<uint64_t> published{0};
  std::atomic<uint64_t> slow_readers_cut{0};
  std::atomic<uint64_t> auth_refused{0};        // private-channel subscriptions refused
  std::atomic<uint64_t> memory_trims{0};        // malloc_trim calls after memory was freed
  std::atomic<uint64_t> output_budget_cuts{0};  // readers cut for the process-wide budget
  std::atomic<uint64_t> unsent_bytes{0};        // all workers' unsent output, last counted
  std::atomic<int64_t> sessions[kSessionKindCount] = {};  // by SessionKind
  WebhookStats webhooks;                                  // --webhook-url deliveries
};

}  // namespace comet
