#pragma once
// Wakes one libevent loop from any thread: wake() writes 1 to an eventfd the loop
// watches; the loop reads the count (resetting it) and runs the callback once, however
// many wake() calls came in between. The queue the callback drains, and the rule of
// when to wake, belong to the caller (a mailbox, an inbox, the webhook outbox).

#include <event2/event.h>

#include <functional>

namespace comet {

class LoopWakeup {
 public:
  /**
   * Watches a new eventfd on `base` (which must outlive this); `on_wake` runs on that
   * loop's thread after one or more wake() calls.
   */
  LoopWakeup(event_base* base, std::function<void()> on_wake);
  /** Stops watching and closes the eventfd; a pending wake-up is dropped. Call on the
   * loop's thread, or once it no longer runs. */
  ~LoopWakeup();
  LoopWakeup(const LoopWakeup&) = delete;
  LoopWakeup& operator=(const LoopWakeup&) = delete;

  /** Callable from any thread, from inside `on_wake` too; never blocks (one syscall). */
  void wake();

 private:
  static void on_readable(evutil_socket_t fd, short, void* arg);

  std::function<void()> on_wake_;
  int fd_ = -1;
  event* event_ = nullptr;
};

}  // namespace comet
