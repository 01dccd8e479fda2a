#pragma once
// The webhook sender's queue and schedule, without I/O or threads (the sender locks
// around it): events wait in a bounded FIFO, are taken in batches of up to
// kMaxBatchEvents once the oldest has waited kBatchDelayMs (at once when a batch is
// full), and one batch at a time is in flight; a failed batch keeps its id and body and
// is due again after webhook_backoff_ms(failures), ahead of everything queued behind it.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "presence/presence_events.h"

namespace comet {

/** One request's worth of events. */
struct WebhookBatch {
  std::string id;    // X-Comet-Webhook-Id: the same on every attempt
  std::string body;  // the same on every attempt
  size_t events = 0;
  int failures = 0;  // attempts that failed so far
};

class WebhookOutbox {
 public:
  static constexpr size_t kMaxBatchEvents = 100;
  static constexpr int64_t kBatchDelayMs = 250;

  /** At most `capacity` (>= 1) events queued, besides the batch in flight. */
  explicit WebhookOutbox(size_t capacity);

  /**
   * Queues `event` at `now_ms` (monotonic). When the queue is full the oldest queued
   * event is dropped (never one of the batch in flight); returns how many were dropped.
   */
  size_t push(PresenceEvent event, int64_t now_ms);

  /**
   * The batch to send now, or nullptr when none is due at `now_ms` (nothing queued, the
   * batch still gathering, one in flight, or a retry not due yet). The pointer stays
   * valid until delivered() or failed().
   */
  const WebhookBatch* take_due(int64_t now_ms);

  /** When take_due next returns a batch (monotonic ms), or nullopt: nothing to do until
   * a push or an answer. */
  std::optional<int64_t> due_ms() const;

  /** The batch in flight was answered 2xx; returns how many events it carried. */
  size_t delivered();

  /** The batch in flight failed at `now_ms`; it is due again after the backoff. */
  void failed(int64_t now_ms);

  /**
   * Stopping: from now on queued events are due at once, without waiting kBatchDelayMs
   * for others to join them (a retry still waits for its backoff).
   */
  void send_at_once() { at_once_ = true; }

  /** Drops everything (shutting down); returns how many events were dropped. */
  size_t drop_all();

  bool sending() const { return sending_; }
  /** Events queued plus those in the batch in flight (or waiting for its retry). */
  size_t size() const { return queue_.size() + (batch_ ? batch_->events : 0); }

 private:
  struct Queued {
    PresenceEvent event;
    int64_t queued_ms;
  };

  size_t capacity_;
  std::deque<Queued> queue_;
  std::optional<WebhookBatch> batch_;  // in flight or waiting for its retry
  bool sending_ = false;               // a request for batch_ is on its way
  int64_t retry_ms_ = 0;               // when batch_ is due again (monotonic)
  bool at_once_ = false;               // send_at_once() was called
};

}  // namespace comet
