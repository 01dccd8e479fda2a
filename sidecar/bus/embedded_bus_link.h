#pragma once
// One worker's link to the embedded bus: the worker's inbox (messages posted from any
// thread, delivered to its hub on its own loop) and the worker's way to publish.

#include <event2/event.h>

#include <mutex>
#include <vector>

#include "bus/embedded_bus.h"
#include "hub/hub.h"
#include "util/loop_wakeup.h"

namespace comet {

class EmbeddedBusLink final : public Bus, public Inbox {
 public:
  /** Attaches itself to `bus`; lives on `base` and feeds `hub` (it must outlive neither). */
  EmbeddedBusLink(EmbeddedBus& bus, event_base* base, Hub& hub);
  ~EmbeddedBusLink() override;
  EmbeddedBusLink(const EmbeddedBusLink&) = delete;
  EmbeddedBusLink& operator=(const EmbeddedBusLink&) = delete;

  /**
   * Publishes and delivers to this worker's own subscribers before calling `done`
   * (the other workers get it through their inbox): no wake-up and loop turn for the
   * common case of publisher and subscribers on one worker.
   */
  void publish(std::string_view channel, std::string_view event, std::string_view data,
               PublishDone done) override;
  /** Seeds the hub with the channel's head when this worker does not know it yet. */
  void prepare_subscribe(std::string_view channel) override;

  /** Inbox: queues a message for this worker's hub. Callable from any thread. */
  void post(const MessagePtr& message) override;

 private:
  void drain_inbox();

  EmbeddedBus& bus_;
  Hub& hub_;
  std::mutex inbox_mutex_;
  std::vector<MessagePtr> inbox_;
  std::vector<MessagePtr> inbox_batch_;  // swapped with inbox_ so neither reallocates
  LoopWakeup wakeup_;                    // last: it calls drain_inbox()
};

}  // namespace comet
