#pragma once
// What the two halves of PresenceRedis share (bridge/presence_redis.cpp: members,
// notices, lists; bridge/presence_sweep.cpp: the slots swept by due time): key names, the
// scripts, reply readers and one script call in flight. Internal to those two files.

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <charconv>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/cluster_slots.h"
#include "bridge/presence_redis.h"
#include "bridge/redis_reply.h"

namespace comet {
namespace presence_redis_detail {

constexpr const char* kSlotsKey = "comet:{presence}:slots";
constexpr const char* kAuditKey = "comet:{presence}:audit";  // same slot: one script
constexpr std::string_view kEventsPrefix = "comet:{";
constexpr std::string_view kEventsSuffix = "}:presence:events";

enum Script { kJoin = 0, kLeave = 1, kSweep = 2, kSlots = 3, kRead = 4 };
constexpr int kScripts = 5;
constexpr const char* kScriptNames[kScripts] = {"join", "leave", "sweep", "slots", "read"};

inline const char* script_text(int script) {
  static const char* const texts[kScripts] = {kPresenceJoinScript, kPresenceLeaveScript,
                                              kPresenceSweepScript, kPresenceSlotsScript,
                                              kPresenceReadScript};
  return texts[script];
}

inline std::string channel_key(const std::string& channel, std::string_view suffix) {
  return "comet:{" + channel + "}:presence" + std::string(suffix);
}

// 0 for anything but a decimal number that fits (no number Redis gives us is 0).
inline uint64_t parse_u64(std::string_view text) {
  uint64_t out = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() ? out : 0;
}

inline std::string events_channel(const std::string& channel) {
  return std::string(kEventsPrefix) + channel + std::string(kEventsSuffix);
}

// The channel of a notices channel name, "" for any other name.
inline std::string followed_channel(std::string_view name) {
  if (name.size() <= kEventsPrefix.size() + kEventsSuffix.size() ||
      name.substr(0, kEventsPrefix.size()) != kEventsPrefix ||
      name.substr(name.size() - kEventsSuffix.size()) != kEventsSuffix)
    return {};
  return std::string(
      name.substr(kEventsPrefix.size(), name.size() - kEventsPrefix.size() - kEventsSuffix.size()));
}

// Every key of a channel hashes to the slot of its {<channel>} tag.
inline int channel_slot(const std::string& channel) {
  return redis_key_slot(channel_key(channel, ""));
}

inline std::string due_index_key(int slot) {
  return "comet:presence:due:{" + slot_hash_tag(slot) + "}";
}

inline timeval ms_timeval(int64_t ms) {
  return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
}

inline int64_t integer_at(const redisReply* r, size_t i) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || i >= r->elements) return 0;
  return r->element[i]->type == REDIS_REPLY_INTEGER ? r->element[i]->integer : 0;
}

inline std::string text_at(const redisReply* r, size_t i) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || i >= r->elements) return {};
  return std::string(reply_text(r->element[i]));
}

inline bool is_noscript(const redisReply* r) {
  return r != nullptr && r->type == REDIS_REPLY_ERROR &&
         reply_or_error_text(r).substr(0, 8) == "NOSCRIPT";
}

}  // namespace presence_redis_detail

// One script call in flight: what its reply is about, and what to resend after NOSCRIPT.
struct PresenceRedis::Call {
  Call(PresenceRedis* self, int script, std::string channel = {}, std::string user = {},
       std::string info = {})
      : self(self),
        script(script),
        channel(std::move(channel)),
        user(std::move(user)),
        info(std::move(info)) {}

  PresenceRedis* self;
  int script;
  std::string channel;
  std::string user;
  std::string info;
  std::vector<std::string> keys;
  std::vector<std::string> argv;
  bool retried = false;
  int attempt = 0;  // a snapshot: how many were read again before it
  int slot = -1;    // a sweep: the slot it visits
  std::shared_ptr<SweepRound> round;
  std::function<void()> then;  // a touch: what waits for it (answered, failed or not sent)
};

}  // namespace comet
