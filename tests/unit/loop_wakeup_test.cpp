// LoopWakeup (util/loop_wakeup.cpp): wake() from any thread runs the callback on the
// loop, once per batch of wake() calls, and never without one.

#include "util/loop_wakeup.h"

#include <doctest/doctest.h>
#include <event2/event.h>

#include <atomic>
#include <thread>

namespace comet {
namespace {

struct Loop {
  Loop() : base(event_base_new()) {}
  ~Loop() { event_base_free(base); }
  event_base* base;
};

/** Runs whatever is ready on `base` now, without waiting. */
void run_ready(event_base* base) { event_base_loop(base, EVLOOP_NONBLOCK); }

}  // namespace

TEST_CASE("loop wakeup: nothing runs until wake()") {
  Loop loop;
  int calls = 0;
  LoopWakeup wakeup(loop.base, [&] { ++calls; });
  run_ready(loop.base);
  CHECK(calls == 0);
  wakeup.wake();
  run_ready(loop.base);
  CHECK(calls == 1);
  run_ready(loop.base);
  CHECK(calls == 1);  // the count was read: no second call for the same wake-up
}

TEST_CASE("loop wakeup: several wake() calls before the loop runs make one call") {
  Loop loop;
  int calls = 0;
  LoopWakeup wakeup(loop.base, [&] { ++calls; });
  for (int i = 0; i < 5; ++i) wakeup.wake();
  run_ready(loop.base);
  run_ready(loop.base);
  CHECK(calls == 1);
  wakeup.wake();
  run_ready(loop.base);
  CHECK(calls == 2);
}

TEST_CASE("loop wakeup: a wake() from another thread ends the loop's wait") {
  Loop loop;
  std::atomic<std::thread::id> ran_on{};
  LoopWakeup wakeup(loop.base, [&] { ran_on = std::this_thread::get_id(); });
  std::thread other([&] { wakeup.wake(); });
  // Blocks until an event is active: only the wake-up can end it.
  event_base_loop(loop.base, EVLOOP_ONCE);
  other.join();
  CHECK(ran_on.load() == std::this_thread::get_id());
}

TEST_CASE("loop wakeup: a wake() from inside the callback is not lost") {
  // The counter is read before the callback runs, so a post made while draining (a task
  // that queues another) wakes the loop again instead of waiting for the next post.
  Loop loop;
  int calls = 0;
  LoopWakeup* self = nullptr;
  LoopWakeup wakeup(loop.base, [&] {
    if (++calls == 1) self->wake();
  });
  self = &wakeup;
  wakeup.wake();
  run_ready(loop.base);
  run_ready(loop.base);
  CHECK(calls == 2);
  run_ready(loop.base);
  CHECK(calls == 2);
}

}  // namespace comet
