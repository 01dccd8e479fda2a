#pragma once
// Parsing of what every subscribing transport takes: channels and a cursor.

#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "http/query.h"
#include "http/request.h"
#include "hub/cursor.h"

namespace comet {

struct ChannelRequest {
  std::vector<std::string> channels;
  std::vector<std::optional<Position>> from;  // per channel; nullopt = start at the head
};

/**
 * Reads `ch=a,b` and the cursor (`cursor=` query parameter; for SSE the Last-Event-ID
 * header wins, because EventSource re-sends the original URL on reconnect). Without `ch`,
 * the cursor's channels are used. Returns "" or an error message for a 400 answer.
 */
std::string parse_channel_request(const http::Request& request, const http::QueryParams& query,
                                  const Config& config, bool honour_last_event_id,
                                  ChannelRequest& out);

/** JSONP callback names: dotted JavaScript identifiers, at most 64 bytes. */
bool is_valid_callback_name(std::string_view name);

}  // namespace comet
