#include "util/loop_wakeup.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <utility>

namespace comet {

LoopWakeup::LoopWakeup(event_base* base, std::function<void()> on_wake)
    : on_wake_(std::move(on_wake)) {
  fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  event_ = event_new(base, fd_, EV_READ | EV_PERSIST, on_readable, this);
  event_add(event_, nullptr);
}

LoopWakeup::~LoopWakeup() {
  event_free(event_);
  close(fd_);
}

void LoopWakeup::wake() {
  // Only fails with EAGAIN when the counter is at its maximum: the loop is woken anyway.
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(fd_, &one, sizeof one);
}

void LoopWakeup::on_readable(evutil_socket_t fd, short, void* arg) {
  // Reading resets the counter: every wake() so far is answered by this one call.
  uint64_t count;
  [[maybe_unused]] ssize_t n = read(fd, &count, sizeof count);
  static_cast<LoopWakeup*>(arg)->on_wake_();
}

}  // namespace comet
