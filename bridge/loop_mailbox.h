#pragma once
// Tasks posted from any thread, run in order on one event loop (woken by an eventfd,
// once per batch). Destroying the mailbox drops what was not run yet.

#include <event2/event.h>

#include <functional>
#include <mutex>
#include <vector>

#include "util/loop_wakeup.h"

namespace comet {

class LoopMailbox {
 public:
  explicit LoopMailbox(event_base* base);
  LoopMailbox(const LoopMailbox&) = delete;
  LoopMailbox& operator=(const LoopMailbox&) = delete;

  /** Callable from any thread. */
  void post(std::function<void()> task);

 private:
  void run_tasks();

  std::mutex mutex_;
  std::vector<std::function<void()>> tasks_;
  std::vector<std::function<void()>> batch_;
  LoopWakeup wakeup_;  // last: it calls run_tasks(), which uses the members above
};

}  // namespace comet
