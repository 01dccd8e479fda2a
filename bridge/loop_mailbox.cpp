#include "bridge/loop_mailbox.h"

namespace comet {

LoopMailbox::LoopMailbox(event_base* base) : wakeup_(base, [this] { run_tasks(); }) {}

void LoopMailbox::post(std::function<void()> task) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    was_empty = tasks_.empty();
    tasks_.push_back(std::move(task));
  }
  // One wake-up per batch: later posts find the queue non-empty and skip the syscall.
  if (was_empty) wakeup_.wake();
}

void LoopMailbox::run_tasks() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    batch_.swap(tasks_);
  }
  for (auto& task : batch_) task();
  batch_.clear();
}

}  // namespace comet
