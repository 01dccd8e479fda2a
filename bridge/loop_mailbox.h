#pragma once
// Tasks posted from any thread, run in order on one event loop (woken by an eventfd,
// once per batch). Destroying the mailbox drops what was not run yet.

#include <event2/event.h>

#include <functional>
#include <mutex>
#include <vector>

namespace comet {

class LoopMailbox {
 public:
  explicit LoopMailbox(event_base* base);
  ~LoopMailbox();
  LoopMailbox(const LoopMailbox&) = delete;
  LoopMailbox& operator=(const LoopMailbox&) = delete;

  /** Callable from any thread. */
  void post(std::function<void()> task);

 private:
  static void on_wake(evutil_socket_t fd, short, void* arg);

  int wake_fd_ = -1;
  event* wake_event_ = nullptr;
  std::mutex mutex_;
  std::vector<std::function<void()>> tasks_;
  std::vector<std::function<void()>> batch_;
};

}  // namespace comet
