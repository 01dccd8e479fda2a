#include "presence/presence_link.h"

#include "util/clock.h"

namespace comet {

PresenceLink::PresenceLink(PresenceRegistry& registry, event_base* base, Hub& hub)
    : registry_(registry), hub_(hub), wakeup_(base, [this] { drain(); }) {
  sweep_event_ = event_new(base, -1, EV_PERSIST, on_sweep, this);
  const timeval tv{0, static_cast<suseconds_t>(kSweepIntervalMs * 1000)};
  event_add(sweep_event_, &tv);
  registry_.attach(this);
}

PresenceLink::~PresenceLink() {
  registry_.detach(this);
  event_free(sweep_event_);
}

void PresenceLink::post(const MessagePtr& notice) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    was_empty = inbox_.empty() && tasks_.empty();
    inbox_.push_back(notice);
  }
  // One wake-up per batch, as for the embedded bus's inboxes.
  if (was_empty) wakeup_.wake();
}

void PresenceLink::post_task(std::function<void()> task) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    was_empty = inbox_.empty() && tasks_.empty();
    tasks_.push_back(std::move(task));
  }
  if (was_empty) wakeup_.wake();
}

void PresenceLink::on_sweep(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<PresenceLink*>(arg);
  self->registry_.sweep(monotonic_ms());
}

void PresenceLink::drain() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    batch_.swap(inbox_);
    task_batch_.swap(tasks_);
  }
  // Only channels this worker has subscribers in: publishing to an unknown channel
  // would make the hub create (and later sweep) an empty one.
  for (const MessagePtr& notice : batch_) {
    const Channel* ch = hub_.find(notice->channel);
    if (ch != nullptr && ch->subscriber_count() != 0) hub_.publish(notice);
  }
  batch_.clear();
  for (auto& task : task_batch_) task();
  task_batch_.clear();
}

}  // namespace comet
