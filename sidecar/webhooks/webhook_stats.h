#pragma once
// What the webhook sender did, for /metrics (comet_webhook_*). Written by the sender's
// thread and by whichever thread hands it events, read by any worker.

#include <atomic>
#include <cstdint>

namespace comet {

struct WebhookStats {
  std::atomic<uint64_t> events_sent{0};      // in a batch the endpoint answered 2xx
  std::atomic<uint64_t> events_dropped{0};   // pushed out of a full queue, or left at exit
  std::atomic<uint64_t> requests_ok{0};      // answered 2xx
  std::atomic<uint64_t> requests_failed{0};  // refused, timed out, or answered non-2xx
  std::atomic<uint64_t> queued{0};           // events waiting or in the batch in flight
};

}  // namespace comet
