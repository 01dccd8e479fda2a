#pragma once
// What the presence registry tells the app about (docs/protocol.md, "Events for the
// app"): the webhook sender implements PresenceEventSink and registers it once per
// process. The registry produces each event exactly once per transition.

#include <cstdint>
#include <string>

namespace comet {

struct PresenceEvent {
  enum Kind { kChannelOccupied, kChannelVacated, kMemberAdded, kMemberRemoved } kind;
  std::string channel;
  std::string user;       // "" for channel events
  std::string info_json;  // the member's info object ("{}" when none); "" for channel events
  int64_t time_ms;        // wall clock, ms since 1970
};

/** "channel_occupied", "channel_vacated", "member_added", "member_removed". */
const char* presence_event_kind_name(PresenceEvent::Kind kind);

class PresenceEventSink {
 public:
  virtual ~PresenceEventSink() = default;
  /**
   * One event. Called from whichever thread made the transition (a worker's; with
   * --redis, the presence thread that ran the Redis script), one call at a time and in
   * the order of the transitions (under the registry's lock): copy what is
   * needed and return quickly (queue the event and wake your own loop); never block on
   * I/O here, and never call the presence registry from inside.
   */
  virtual void on_presence_event(const PresenceEvent& event) = 0;
};

/**
 * Registers the process's sink (nullptr = none). Call before the workers start (or
 * after they stop): the pointer is read without a lock. Not owned: it must outlive them.
 */
void set_presence_event_sink(PresenceEventSink* sink);

/** The registered sink, or nullptr. */
PresenceEventSink* presence_event_sink();

}  // namespace comet
