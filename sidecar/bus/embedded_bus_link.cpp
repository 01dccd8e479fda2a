#include "bus/embedded_bus_link.h"

#include <sys/eventfd.h>
#include <unistd.h>

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
    : bus_(bus), hub_(hub) {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  wake_event_ = event_new(base, wake_fd_, EV_READ | EV_PERSIST, on_wake, this);
  event_add(wake_event_, nullptr);
  bus_.attach(this);
}

EmbeddedBusLink::~EmbeddedBusLink() {
  bus_.detach(this);
  event_free(wake_event_);
  close(wake_fd_);
}

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
  if (was_empty) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
  }
}

void EmbeddedBusLink::on_wake(evutil_socket_t fd, short, void* arg) {
  uint64_t count;
  [[maybe_unused]] ssize_t n = read(fd, &count, sizeof count);
  static_cast<EmbeddedBusLink*>(arg)->drain_inbox();
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
