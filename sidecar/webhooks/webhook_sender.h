#pragma once
// Sends presence events to the app's --webhook-url (docs/protocol.md, "Webhooks"):
// batched, signed, one request at a time, retried with backoff until answered 2xx.
// It runs its own thread and event loop, so neither a slow endpoint nor its DNS ever
// holds up a worker.

#include <memory>
#include <string>

#include "config/config.h"
#include "presence/presence_events.h"
#include "webhooks/webhook_stats.h"

namespace comet {

class WebhookSender final : public PresenceEventSink {
 public:
  /**
   * "" when the webhook settings are usable (or no --webhook-url is set), else why not:
   * main exits 2 with it. A URL without a secret is refused: an endpoint that cannot
   * verify what it receives would act on anyone's requests.
   */
  static std::string check_config(const Config& config);

  /** Starts the sender's thread. `config` passed check_config with a URL; `stats`
   * outlives the sender. */
  WebhookSender(const Config& config, WebhookStats& stats);
  /** Stops the thread; events not delivered by then are counted as dropped. */
  ~WebhookSender() override;
  WebhookSender(const WebhookSender&) = delete;
  WebhookSender& operator=(const WebhookSender&) = delete;

  /** Queues one event (copied). Callable from any thread; never blocks on I/O. */
  void on_presence_event(const PresenceEvent& event) override;

  /** How long a graceful stop waits for the endpoint (docs/protocol.md, "Webhooks"). */
  static constexpr int64_t kStopTimeoutMs = 5000;

  /**
   * A graceful stop: sends everything queued at once (no waiting for a batch to fill),
   * retrying with the usual backoff, and returns when the queue is empty, after
   * `timeout_ms`, or as soon as the next retry would come later than that, so a dead
   * endpoint cannot hold up the exit. Then the thread is stopped; what was not delivered
   * is dropped, counted as dropped and logged with its count. Blocks the caller; call it
   * once, after the last event (the sink unregistered).
   */
  void flush(int64_t timeout_ms);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace comet
