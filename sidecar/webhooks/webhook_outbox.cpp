#include "webhooks/webhook_outbox.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "util/clock.h"
#include "webhooks/webhook_backoff.h"
#include "webhooks/webhook_payload.h"

namespace comet {

WebhookOutbox::WebhookOutbox(size_t capacity) : capacity_(std::max<size_t>(1, capacity)) {}

size_t WebhookOutbox::push(PresenceEvent event, int64_t now_ms) {
  size_t dropped = 0;
  // The batch in flight is kept whole: the endpoint may already have it, and its id and
  // body must not change between attempts.
  while (queue_.size() >= capacity_) {
    queue_.pop_front();
    ++dropped;
  }
  queue_.push_back(Queued{std::move(event), now_ms});
  return dropped;
}

std::optional<int64_t> WebhookOutbox::due_ms() const {
  if (sending_) return std::nullopt;
  if (batch_) return retry_ms_;
  if (queue_.empty()) return std::nullopt;
  if (at_once_ || queue_.size() >= kMaxBatchEvents) return queue_.front().queued_ms;
  return queue_.front().queued_ms + kBatchDelayMs;
}

const WebhookBatch* WebhookOutbox::take_due(int64_t now_ms) {
  const std::optional<int64_t> due = due_ms();
  if (!due || *due > now_ms) return nullptr;
  if (!batch_) {
    const size_t count = std::min(queue_.size(), kMaxBatchEvents);
    std::vector<PresenceEvent> events;
    events.reserve(count);
    for (size_t i = 0; i < count; ++i) {
      events.push_back(std::move(queue_.front().event));
      queue_.pop_front();
    }
    WebhookBatch batch;
    batch.id = new_webhook_batch_id();
    batch.body = webhook_batch_body(wall_clock_ms(), events);
    batch.events = count;
    batch_ = std::move(batch);
  }
  sending_ = true;
  return &*batch_;
}

size_t WebhookOutbox::delivered() {
  const size_t events = batch_ ? batch_->events : 0;
  batch_.reset();
  sending_ = false;
  return events;
}

void WebhookOutbox::failed(int64_t now_ms) {
  sending_ = false;
  if (!batch_) return;
  ++batch_->failures;
  retry_ms_ = now_ms + webhook_backoff_ms(batch_->failures);
}

size_t WebhookOutbox::drop_all() {
  const size_t dropped = size();
  queue_.clear();
  batch_.reset();
  sending_ = false;
  return dropped;
}

}  // namespace comet
