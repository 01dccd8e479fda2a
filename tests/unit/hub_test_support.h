#pragma once
// Shared by the hub test files: a recording fake subscriber and message builders.

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "hub/hub.h"
#include "wire/message_builder.h"

namespace comet {
namespace hub_test {

constexpr int64_t kAgeMs = 60 * 1000;

// Callback lines in order; printable so a failed CHECK shows both sides.
struct Log : std::vector<std::string> {
  using std::vector<std::string>::vector;
};

inline std::ostream& operator<<(std::ostream& os, const Log& log) {
  os << '{';
  for (size_t i = 0; i < log.size(); ++i) os << (i ? ", " : "") << '"' << log[i] << '"';
  return os << '}';
}

// Records every callback as one line ("a:3" for message 3 of channel a, "reset a
// history-expired E.2" for a reset and the position it left), so a test compares the
// whole sequence, order included, in one CHECK.
class FakeSubscriber : public Subscriber {
 public:
  void on_message(Subscription& sub, const MessagePtr& m) override {
    log.push_back(m->id == 0 ? m->channel + ":-" + m->data
                             : m->channel + ":" + std::to_string(m->id));
    // The hub promises the position is advanced before the call (id-less ones leave it).
    if (m->id != 0 && (sub.position.id != m->id || sub.position.epoch != m->epoch))
      position_mismatches++;
    if (sub.channel == nullptr || sub.channel->name() != m->channel) position_mismatches++;
  }
  void on_reset(Subscription& sub, ResetReason reason) override {
    log.push_back("reset " + sub.channel->name() + " " + reset_reason_name(reason) + " " +
                  sub.position.epoch + "." + std::to_string(sub.position.id));
  }

  bool can_take_more() override { return accepting; }

  Log take() {
    Log out;
    out.swap(log);
    return out;
  }

  Log log;
  int position_mismatches = 0;
  bool accepting = true;  // what can_take_more answers
};

// A subscriber with its one subscription, as a connection would own them.
struct Client {
  FakeSubscriber fake;
  Subscription sub;
  Client() { sub.owner = &fake; }
  ~Client() { CHECK(fake.position_mismatches == 0); }
};

inline MessagePtr msg(const std::string& channel, const std::string& epoch, uint64_t id,
                      int64_t published_ms = monotonic_ms(), const std::string& data = "") {
  return make_message(channel, epoch, id, id == 0 ? 0 : id - 1, "", data, published_ms);
}

inline void publish_range(Hub& hub, const std::string& channel, const std::string& epoch,
                          uint64_t first, uint64_t last, int64_t published_ms = monotonic_ms()) {
  for (uint64_t id = first; id <= last; ++id) hub.publish(msg(channel, epoch, id, published_ms));
}

inline Hub make_hub(size_t history_size = 100, int64_t history_age_ms = kAgeMs) {
  return Hub(HubLimits{history_size, history_age_ms});
}

inline std::string pos(const Subscription& sub) {
  return sub.position.epoch + "." + std::to_string(sub.position.id);
}

}  // namespace hub_test
}  // namespace comet
