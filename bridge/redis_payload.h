#pragma once
// The formats messages take in Redis (see docs/protocol.md, "Redis"):
//  * pub/sub payload on comet:{<channel>}: "comet/1 " + JSON {id, prev, epoch, event, data, ts}
//    as published by bridge/lua/publish.lua; any other payload is a bare message
//    (delivered live, no id);
//  * history.lua's reply: {epoch, head, {{id, data, event, prev, ts}, ...}}.

#include <string>
#include <string_view>
#include <vector>

#include "hub/message.h"

struct redisReply;

namespace comet {

/** Prefix of Redis names: comet:{<channel>} (hash tag keeps a channel's keys on one cluster slot).
 */
std::string redis_pubsub_name(std::string_view channel);
/** The channel in a pub/sub name, or "" when it is not one of ours. */
std::string channel_from_pubsub_name(std::string_view name);

/**
 * Builds the message for one pub/sub payload received on `channel`. Bare payloads become
 * id-less messages. Returns nullptr (with `error`) for a malformed comet/1 payload or
 * data that is not valid UTF-8. `wall_now_ms` / `mono_now_ms` convert the publish time
 * to the monotonic clock used for history age.
 */
MessagePtr parse_pubsub_payload(std::string_view channel, std::string_view payload,
                                int64_t wall_now_ms, int64_t mono_now_ms, std::string& error);

/** What history.lua returned. */
struct HistoryReply {
  std::string epoch;
  uint64_t head = 0;
  std::vector<MessagePtr> entries;  // oldest first
};

/** Parses a history.lua reply; false (with `error`) when its shape is wrong. */
bool parse_history_reply(std::string_view channel, const redisReply* reply, int64_t wall_now_ms,
                         int64_t mono_now_ms, HistoryReply& out, std::string& error);

/** Wall-clock milliseconds since the Unix epoch. */
int64_t wall_clock_ms();

}  // namespace comet
