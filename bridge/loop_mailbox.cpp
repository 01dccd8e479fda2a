#include "bridge/loop_mailbox.h"

#include <sys/eventfd.h>
#include <unistd.h>

namespace comet {

LoopMailbox::LoopMailbox(event_base* base) {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  wake_event_ = event_new(base, wake_fd_, EV_READ | EV_PERSIST, on_wake, this);
  event_add(wake_event_, nullptr);
}

LoopMailbox::~LoopMailbox() {
  event_free(wake_event_);
  close(wake_fd_);
}

void LoopMailbox::post(std::function<void()> task) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    was_empty = tasks_.empty();
    tasks_.push_back(std::move(task));
  }
  // One wake-up per batch: later posts find the queue non-empty and skip the syscall.
  if (was_empty) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
  }
}

void LoopMailbox::on_wake(evutil_socket_t fd, short, void* arg) {
  auto* self = static_cast<LoopMailbox*>(arg);
  uint64_t count;
  [[maybe_unused]] ssize_t n = read(fd, &count, sizeof count);
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    self->batch_.swap(self->tasks_);
  }
  for (auto& task : self->batch_) task();
  self->batch_.clear();
}

}  // namespace comet
