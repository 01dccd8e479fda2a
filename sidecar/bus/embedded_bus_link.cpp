#include "bus/embedded_bus_link.h"

namespace comet {
namespace {

// Set while a link publishes on its own thread: its own copy of the message is
// delivered right after, without an eventfd wake-up and a loop turn.
thread_local EmbeddedBusLink* t_publishing_link = nullptr;

}  // namespace

std::unique_ptr<Bus> EmbeddedBus::connect_worker(event_base* base, Hub& hub) {
  return std::make_unique<EmbeddedBusLink>(*this, base, hub);
}

EmbeddedBusLink::EmbeddedBusLink(EmbeddedBus& bus, event_base* base, Hub& hub)
    : bus_(bus), hub_(hub), wakeup_(base, [this] { drain_inbox(); }) {
  bus_.attach(this);
}

EmbeddedBusLink::~EmbeddedBusLink() { bus_.detach(this); }

void EmbeddedBusLink::publish(std::string_view channel, std::string_view event,
                              std::string_view data, PublishDone done) {
  t_publishing_link = this;
  const PublishResult result = bus_.publish(channel, event, data);
  t_publishing_link = nullptr;
  // Everything queued before our message (from other workers) goes first: the inbox
  // keeps the bus's order.
  drain_inbox();
  done(result);
}

void EmbeddedBusLink::prepare_subscribe(std::string_view channel) {
  const Channel* known = hub_.find(channel);
  if (known != nullptr && !known->epoch().empty()) return;
  Position head;
  if (!bus_.head(channel, head)) return;
  // Every message up to `head` is already in our inbox: process them first so the
  // hub's view matches the bus, then seed the head if the channel is still unknown
  // (its messages came and aged out before this worker forgot it).
  drain_inbox();
  hub_.adopt_head(channel, head);
}

void EmbeddedBusLink::post(const MessagePtr& message) {
  if (t_publishing_link == this) {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    inbox_.push_back(message);  // publish() drains it before returning
    return;
  }
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    was_empty = inbox_.empty();
    inbox_.push_back(message);
  }
  // One wake-up per batch: later posts find the queue non-empty and skip the syscall.
  if (was_empty) wakeup_.wake();
}

void EmbeddedBusLink::drain_inbox() {
  {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    inbox_batch_.swap(inbox_);
  }
  for (const MessagePtr& m : inbox_batch_) hub_.publish(m);
  inbox_batch_.clear();
}

}  // namespace comet
