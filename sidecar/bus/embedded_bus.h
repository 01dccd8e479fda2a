#pragma once
// In-process bus for a sidecar without Redis: assigns per-channel ids and epochs and
// hands each message to every worker's inbox. Thread-safe. Each worker talks to it
// through its EmbeddedBusLink (bus/embedded_bus_link.h).

#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bus/bus.h"
#include "hub/cursor.h"
#include "hub/message.h"

namespace comet {

/** Something that takes messages from any thread and processes them on its own loop. */
class Inbox {
 public:
  virtual ~Inbox() = default;
  /** Queues `message` and wakes the owner's loop. Callable from any thread. */
  virtual void post(const MessagePtr& message) = 0;
};

class EmbeddedBus final : public BusProvider {
 public:
  EmbeddedBus() = default;
  EmbeddedBus(const EmbeddedBus&) = delete;
  EmbeddedBus& operator=(const EmbeddedBus&) = delete;

  /** Registers an inbox; call before publishing starts. The bus does not own it. */
  void attach(Inbox* inbox);
  /** Unregisters an inbox (a worker going away); no post reaches it after this returns. */
  void detach(Inbox* inbox);

  /**
   * Assigns the next id in `channel` (creating its epoch on first use), builds the
   * message and posts it to every inbox. Ids are handed out and posted under one lock,
   * so every inbox sees a channel's messages in id order.
   */
  PublishResult publish(std::string_view channel, std::string_view event, std::string_view data);

  /**
   * The channel's current head (epoch and last id). Every message up to it has already
   * been posted to every inbox when this returns. False when the channel never had a message.
   */
  bool head(std::string_view channel, Position& out) const;

  /** BusProvider: a link that attaches the worker's inbox to this bus. */
  std::unique_ptr<Bus> connect_worker(event_base* base, Hub& hub) override;
  const char* name() const override { return "embedded"; }

 private:
  struct Sequence {
    std::string epoch;
    uint64_t last_id = 0;
  };
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Sequence> sequences_;
  std::vector<Inbox*> inboxes_;
};

/** A fresh random epoch token: 12 characters of [0-9a-z]. */
std::string new_epoch();

}  // namespace comet
