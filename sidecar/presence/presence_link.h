#pragma once
// One worker's link to the process's PresenceRegistry: the inbox through which join
// and leave notices reach the worker's hub (delivered on its own loop, to the
// channel's local subscribers only, like bare messages), and the timer that ends grace
// periods (every worker runs it; the registry makes each leave happen once).

#include <event2/event.h>

#include <functional>
#include <mutex>
#include <vector>

#include "bus/embedded_bus.h"
#include "hub/hub.h"
#include "presence/presence_registry.h"
#include "util/loop_wakeup.h"

namespace comet {

class PresenceLink final : public Inbox {
 public:
  /** How often grace periods are checked. */
  static constexpr int64_t kSweepIntervalMs = 250;

  /** Attaches itself to `registry`; lives on `base`, feeds `hub` (it outlives neither). */
  PresenceLink(PresenceRegistry& registry, event_base* base, Hub& hub);
  ~PresenceLink() override;
  PresenceLink(const PresenceLink&) = delete;
  PresenceLink& operator=(const PresenceLink&) = delete;

  /** Inbox: queues a notice for this worker's hub. Callable from any thread. */
  void post(const MessagePtr& notice) override;
  /**
   * Runs `task` on this worker's loop, after the notices queued before it. Callable from
   * any thread; a task still queued when the link is destroyed never runs.
   */
  void post_task(std::function<void()> task);

 private:
  static void on_sweep(evutil_socket_t, short, void* arg);
  void drain();

  PresenceRegistry& registry_;
  Hub& hub_;
  event* sweep_event_ = nullptr;
  std::mutex mutex_;
  std::vector<MessagePtr> inbox_;
  std::vector<MessagePtr> batch_;
  std::vector<std::function<void()>> tasks_;
  std::vector<std::function<void()>> task_batch_;
  LoopWakeup wakeup_;  // last: it calls drain()
};

}  // namespace comet
